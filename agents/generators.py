"""Random graph generators that give networkx's graphs, draw for draw, as edge arrays.

networkx builds a dict-of-dicts Graph edge by edge; at a million agents that and its conversion to an
edge array take most of a run's set-up. The functions here replay the same draws from the same
`random.Random(seed)` stream (as networkx's `py_random_state` makes it from an integer seed) into
plain integer structures, so a seed gives exactly the graph it gave before.
"""

from __future__ import annotations

import random

import numpy as np


def watts_strogatz_edges(n: int, k: int, p: float, seed: int) -> np.ndarray:
    """The (m, 2) edges of `networkx.watts_strogatz_graph(n, k, p, seed=seed)` (Watts & Strogatz 1998):
    a ring where each node links to its k // 2 nearest neighbours on each side, then every lattice edge
    (u, u + j), j = 1..k // 2 in that order, u in node order, is rewired with probability p to (u, w), w
    uniform, never a self-loop or a duplicate; a node linked to everyone keeps its edge. 0 < k < n."""
    rng = random.Random(seed)
    nodes = range(n)  # random.choice indexes a sequence with one _randbelow(len) draw: a range draws as a list
    half = k // 2
    ring = np.arange(n, dtype=np.int64)
    lattice = [edge_keys(ring, (ring + j) % n, n) for j in range(1, half + 1)]
    edges = set(np.concatenate([ring[:0], *lattice]).tolist())
    degree = [2 * half] * n
    draw, choice = rng.random, rng.choice
    for j in range(1, half + 1):
        for u in nodes:
            if draw() >= p:
                continue
            v = (u + j) % n
            w = choice(nodes)
            while w == u or (min(u, w) * n + max(u, w)) in edges:
                w = choice(nodes)
                if degree[u] >= n - 1:
                    break  # u is linked to everyone: its edge stays
            else:
                edges.remove(min(u, v) * n + max(u, v))
                edges.add(min(u, w) * n + max(u, w))
                degree[v] -= 1
                degree[w] += 1
    keys = np.fromiter(edges, dtype=np.int64, count=len(edges))
    return np.stack([keys // n, keys % n], axis=1)


def edge_keys(u: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    """One integer per undirected edge (min * n + max): unique on it is far cheaper than on rows."""
    return np.minimum(u, v) * n + np.maximum(u, v)
