"""Two ways to count opinion clusters in a final state, written independently of socsim's analysis code.

- `value_clusters`: the value-space rule used for complete graphs: sort the opinions, split wherever two
  neighbours in the sorted order are more than `gap` apart, count the groups holding at least
  `min_share` of the agents.
- `graph_clusters`: the topology-aware rule for any graph: connected components of the graph keeping
  only edges whose two ends agree within `tolerance`, counting components holding at least `min_share`
  of the agents. On a sparse graph two distant groups at the same opinion are two clusters, which the
  value-space rule cannot see. On a complete graph both rules agree (single linkage at the same gap).
"""

from __future__ import annotations

from itertools import pairwise

from tests.reference.graphs import Graph

GAP = 0.01
MIN_SHARE = 0.01


def _count_large(sizes: list[int], n: int, min_share: float) -> int:
    return sum(1 for s in sizes if s >= min_share * n)


def value_clusters(x: list[float], gap: float = GAP, min_share: float = MIN_SHARE) -> int:
    if not x:
        return 0
    ordered = sorted(x)
    sizes = [1]
    for before, after in pairwise(ordered):
        if after - before > gap:
            sizes.append(1)
        else:
            sizes[-1] += 1
    return _count_large(sizes, len(x), min_share)


def graph_clusters(x: list[float], graph: Graph, tolerance: float = GAP, min_share: float = MIN_SHARE) -> int:
    """Connected components (depth-first search) over edges whose ends differ by at most `tolerance`."""
    seen = [False] * graph.n
    sizes = []
    for start in range(graph.n):
        if seen[start]:
            continue
        seen[start] = True
        stack, size = [start], 0
        while stack:
            i = stack.pop()
            size += 1
            for j in graph.neighbours[i]:
                if not seen[j] and abs(x[i] - x[j]) <= tolerance:
                    seen[j] = True
                    stack.append(j)
        sizes.append(size)
    return _count_large(sizes, graph.n, min_share)
