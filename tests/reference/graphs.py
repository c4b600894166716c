"""Plain-Python graphs for the reference implementations: neighbour lists, no numpy, no networkx.

The small-world graph follows Watts & Strogatz (1998), "Collective dynamics of 'small-world' networks",
Nature 393, 440–442: a ring where each vertex is joined to its k/2 nearest neighbours on each side,
then, lap by lap (nearest neighbours first, going round the ring clockwise), each lattice edge has its
far end moved with probability p to a vertex chosen uniformly at random, never making a self-loop
or a duplicate edge.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Graph:
    """Undirected graph over vertices 0..n-1: each edge once as (u, v) with u < v, plus neighbour lists."""

    n: int
    edges: tuple[tuple[int, int], ...]
    neighbours: tuple[tuple[int, ...], ...]

    @property
    def complete(self) -> bool:
        return len(self.edges) == self.n * (self.n - 1) // 2


def from_edges(n: int, edges: list[tuple[int, int]] | set[tuple[int, int]]) -> Graph:
    normal = sorted({(min(u, v), max(u, v)) for u, v in edges})
    adjacent: list[list[int]] = [[] for _ in range(n)]
    for u, v in normal:
        if u == v:
            raise ValueError(f"self-loop at vertex {u}")
        adjacent[u].append(v)
        adjacent[v].append(u)
    return Graph(n, tuple(normal), tuple(tuple(sorted(a)) for a in adjacent))


def complete_graph(n: int) -> Graph:
    return from_edges(n, [(u, v) for u in range(n) for v in range(u + 1, n)])


def watts_strogatz(n: int, k: int, p: float, rng: random.Random) -> Graph:
    """Ring lattice of even degree k, each lattice edge rewired with probability p (see the module note)."""
    if k % 2 or not 0 < k < n:
        raise ValueError(f"need an even k in (0, n), got k={k}, n={n}")
    adjacent: list[set[int]] = [set() for _ in range(n)]
    for i in range(n):
        for j in range(1, k // 2 + 1):
            adjacent[i].add((i + j) % n)
            adjacent[(i + j) % n].add(i)
    for j in range(1, k // 2 + 1):
        for i in range(n):
            far = (i + j) % n
            if far not in adjacent[i] or rng.random() >= p:
                continue
            if len(adjacent[i]) >= n - 1:
                continue  # joined to everyone already: nowhere new to go
            new = rng.randrange(n)
            while new == i or new in adjacent[i]:
                new = rng.randrange(n)
            adjacent[i].discard(far)
            adjacent[far].discard(i)
            adjacent[i].add(new)
            adjacent[new].add(i)
    return from_edges(n, [(u, v) for u in range(n) for v in adjacent[u] if u < v])
