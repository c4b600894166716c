"""Random graph generators that give networkx's graphs, draw for draw, as edge arrays.

networkx builds a dict-of-dicts Graph edge by edge; at a million agents that and its conversion to an
edge array take most of a run's set-up. The functions here replay the same draws from the same
`random.Random(seed)` stream (as networkx's `py_random_state` makes it from an integer seed) into
plain integer structures, so a seed gives exactly the graph it gave before.
"""

from __future__ import annotations

import math
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


def erdos_renyi_edges(n: int, p: float, seed: int) -> np.ndarray:
    """The (m, 2) edges of `networkx.fast_gnp_random_graph(n, p, seed=seed)`: G(n, p) (Erdős & Rényi
    1959; Gilbert 1959) by geometric skips over the pairs (v, w), w < v, in order (Batagelj & Brandes
    2005). Each skip reads one `random()` whatever happened before, so all skips are drawn at once and
    their running sum places every edge; no loop over pairs or edges."""
    if p <= 0 or n < 2:
        return np.empty((0, 2), dtype=np.int64)
    if p >= 1:  # networkx gives the complete graph
        u, v = np.triu_indices(n, k=1)
        return np.stack([u, v], axis=1).astype(np.int64)
    log_q = math.log(1.0 - p)
    pairs = n * (n - 1) // 2
    if log_q == 0.0:  # p below float resolution: networkx divides by zero; no pair is ever drawn
        return np.empty((0, 2), dtype=np.int64)
    bits = python_random_bits(seed)
    found, last, expected = [], -1, p * pairs
    # Skips are clipped at pairs + 1 (past the end either way), so a batch's running sum stays in int64.
    most = max(1, (1 << 62) // (pairs + 1))
    while last < pairs:
        count = int(min(max(1.02 * expected + 64, 64), 1 << 22, most))
        r = python_randoms(bits, count)
        skip = _geometric_skips(r, log_q)
        position = last + np.cumsum(np.minimum(skip, pairs) + 1)
        found.append(position[position < pairs])
        last = int(position[-1])
        expected = max(expected - len(found[-1]), 64.0)
    position = np.concatenate(found)
    v = np.floor((1 + np.sqrt(1 + 8 * position.astype(np.float64))) / 2).astype(np.int64)
    v -= v * (v - 1) // 2 > position  # the float root can be one off near a row's start
    v += (v + 1) * v // 2 <= position
    return np.stack([v, position - v * (v - 1) // 2], axis=1)


def _geometric_skips(r: np.ndarray, log_q: float) -> np.ndarray:
    """int(log(1 - r) / log_q) as networkx computes it with `math.log`. numpy's log may differ from the
    C library's in the last bit, which matters only where the quotient is within rounding of an
    integer: those few are recomputed with `math.log`."""
    quotient = np.log(1.0 - r) / log_q
    skip = np.floor(quotient)
    close = np.flatnonzero(np.abs(quotient - np.round(quotient)) <= 1e-9 * np.maximum(quotient, 1.0))
    skip[close] = [int(math.log(1.0 - x) / log_q) for x in r[close].tolist()]
    return skip.astype(np.int64)


def python_random_bits(seed: int) -> np.random.MT19937:
    """numpy's Mersenne Twister in the state of `random.Random(seed)` (as networkx's `py_random_state`
    makes it from an integer seed): its raw words are the ones `random.Random` would read next."""
    state = random.Random(seed).getstate()[1]
    bits = np.random.MT19937()
    key = np.array(state[:624], dtype=np.uint32)
    bits.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": state[624]}}
    return bits


def python_randoms(bits: np.random.MT19937, count: int) -> np.ndarray:
    """The next `count` values of `random.Random.random()`: two words each, (a >> 5) * 2**26 + (b >> 6)
    over 2**53, exactly."""
    words = bits.random_raw(2 * count).reshape(count, 2)
    return ((words[:, 0] >> 5) * 67108864 + (words[:, 1] >> 6)) / 9007199254740992.0
