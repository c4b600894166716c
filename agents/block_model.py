"""The stochastic block model (Holland, Laskey & Leinhardt 1983) as networkx draws it, without its loops.

`networkx.stochastic_block_model(sizes, probs, seed=seed)` walks every pair inside a block in Python,
drawing one `random()` each, and adds edges to a dict-of-dicts Graph one at a time; a few thousand
agents take seconds. `block_model_edges` reads the same `random.Random(seed)` stream in bulk
(`generators.python_random_bits`), so a seed gives exactly the graph it gave before, edge for edge:

- the blocks are visited as networkx visits them: (0, 0), (0, 1), ..., (0, b-1), (1, 1), ...;
- a block's nodes come in the iteration order of the Python set networkx keeps them in (a set of
  ints is ordered by hash slot, which is not always numerical order), taken from a real set;
- inside a block, pair t of `itertools.combinations(block, 2)` is an edge when the t-th draw is below
  p_in, so the draws are compared to p_in a chunk at a time; afterwards networkx draws once more to
  start its skipping loop over an iterator already exhausted (when 0 < p_in < 1);
- across blocks, networkx skips floor(log(r) / log(1 - p_out)) pairs of the product between edges
  (Batagelj & Brandes 2005); all skips are drawn at once and their running sum places the edges,
  the draw that runs past the last pair included.

Inside a block the draws are still one per pair, as networkx's are: the graph of a seed stays the
same, and a block of L agents costs L(L - 1)/2 draws, done with array operations a chunk at a time.
"""

from __future__ import annotations

import numpy as np

from agents.generators import python_random_bits, python_randoms, skip_positions

_DRAWS = 1 << 21  # random() values drawn at a time (two 32-bit words each)


def block_model_edges(sizes: list[int], p_in: float, p_out: float, seed: int) -> np.ndarray:
    """The (m, 2) edges of `networkx.stochastic_block_model(sizes, probs, seed=seed)` with probs p_in
    on the diagonal and p_out off it (undirected, no self-loops, networkx's default sparse mode). Node
    ids run over the blocks in order: block 0 holds 0..sizes[0]-1, and so on."""
    bits = python_random_bits(seed)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    order = [_set_order(int(starts[i]), int(starts[i + 1])) for i in range(len(sizes))]
    found: list[np.ndarray] = []
    for i in range(len(sizes)):
        found.append(_inside(bits, order[i], p_in))
        found.extend(_across(bits, order[i], order[j], p_out) for j in range(i + 1, len(sizes)))
    return np.concatenate(found) if found else np.empty((0, 2), np.int64)


def _set_order(first: int, stop: int) -> np.ndarray:
    """The nodes first..stop-1 in the order networkx's `set(range(first, stop))` iterates them."""
    return np.fromiter(set(range(first, stop)), dtype=np.int64, count=stop - first)


def _inside(bits: np.random.MT19937, nodes: np.ndarray, p: float) -> np.ndarray:
    """A block's own edges: one draw per pair of `combinations(nodes, 2)`, an edge below p; then the
    draw networkx's skipping loop takes before it finds the pairs used up."""
    size = len(nodes)
    pairs = size * (size - 1) // 2
    row_start = np.arange(size, dtype=np.int64) * (2 * size - np.arange(size, dtype=np.int64) - 1) // 2
    found = []
    for first in range(0, pairs, _DRAWS):
        count = min(_DRAWS, pairs - first)
        hits = np.flatnonzero(python_randoms(bits, count) < p) + first
        x = np.searchsorted(row_start, hits, side="right") - 1
        found.append(np.stack([nodes[x], nodes[x + 1 + hits - row_start[x]]], axis=1))
    if 0 < p < 1:
        python_randoms(bits, 1)
    return np.concatenate(found) if found else np.empty((0, 2), np.int64)


def _across(bits: np.random.MT19937, rows: np.ndarray, columns: np.ndarray, p: float) -> np.ndarray:
    """The edges between two blocks: pairs of `itertools.product(rows, columns)` picked by geometric
    skips, exactly as many draws taken as networkx takes (the edges, and the one that runs past the
    end)."""
    pairs = len(rows) * len(columns)
    if p >= 1:
        position = np.arange(pairs, dtype=np.int64)
    elif p <= 0 or pairs == 0:
        return np.empty((0, 2), np.int64)
    else:
        position = skip_positions(bits, pairs, p, of_complement=False)
    return np.stack([rows[position // len(columns)], columns[position % len(columns)]], axis=1)
