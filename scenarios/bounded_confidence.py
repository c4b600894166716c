"""Bounded-confidence opinion dynamics (Deffuant–Weisbuch, Hegselmann–Krause) as pure numpy functions.

Positions are an (n, d) float array: n agents, d independent dimensions (e.g. ten Schwartz values).
`eps` is each agent's confidence bound (n,): agent i hears j on a dimension only when their positions
there are close enough *for i*, so heterogeneous bounds give asymmetric influence. `movable` (n,)
marks agents that update at all (stubborn agents keep their positions but still pull others).

Everything works on a SocialGraph's CSR arrays; there is no Python loop over agents or edges.
Deffuant is asynchronous pairwise. Which pairs meet is the `pairing` rule:
- `matching`: a random *matching* is updated at once (pairs in a matching share no agent, so updating
  them together equals updating them one after another); on a heterogeneous graph this makes a hub
  meet about as often as a leaf (one partner per matching).
- `edge`: a sequence of uniformly random edges (hubs meet in proportion to their degree);
- `node`: a sequence of (uniformly random agent, uniformly random neighbour of it), as ndlib and most
  papers draw them (a hub meets about as often as anyone, so less per edge).
The sequences are exact sequential Deffuant: `sequential_layers` cuts a sequence into layers of
disjoint pairs that keep every agent's meetings in their drawn order, and each layer is one
vectorised update.

Clusters: `count_clusters` is the value-space rule (sorted positions split at gaps > `gap`), exact on a
complete graph only; `graph_clusters` is the topology-aware rule for any graph (connected components
of the graph keeping only edges whose ends agree within a tolerance), the one that counts two distant
groups holding the same opinion on a sparse graph as two clusters.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np

from agents.graph import SocialGraph

T = TypeVar("T")


@dataclass(frozen=True)
class PairUpdate:
    """One Deffuant matching: the pairs, who heard whom (per dimension), positions before and after."""

    u: np.ndarray  # (m,) first agent of each pair
    v: np.ndarray  # (m,) second agent
    u_heard_v: np.ndarray  # (m, d) bool
    v_heard_u: np.ndarray  # (m, d) bool
    before_u: np.ndarray  # (m, d)
    before_v: np.ndarray  # (m, d)
    after_u: np.ndarray  # (m, d)
    after_v: np.ndarray  # (m, d)


def random_matching(graph: SocialGraph, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint random pairs of neighbours (u, v).

    Complete graph: a uniformly random perfect matching (⌊n/2⌋ pairs, from one permutation).
    Other graphs: draw n edges uniformly with replacement and keep each edge that is the first draw
    touching both of its endpoints ("first claim"). The kept edges are the draws a sequential
    Deffuant process would make, minus those that would reuse an agent already met this round; on a
    regular graph about n/4 pairs survive. An agent meets at most one partner per matching.
    """
    n = graph.n
    if n < 2 or graph.n_edges == 0:
        empty = np.empty(0, np.int64)
        return empty, empty
    if graph.is_complete:
        order = rng.permutation(n)
        half = n // 2
        return order[:half], order[half : 2 * half]
    # take(axis=0) and 1-d columns: numpy's fancy indexing of rows of an (edges, 2) array is ~30x slower
    draws = graph.edges.take(rng.integers(0, len(graph.edges), size=n), axis=0)
    u, v = draws[:, 0].copy(), draws[:, 1].copy()
    order = np.int32 if n < 2**31 else np.int64  # draw numbers: 32 bits halve the scattered traffic
    k = np.arange(len(draws), dtype=order)
    first_draw = np.full(n, len(draws), order)  # the earliest draw touching each agent
    np.minimum.at(first_draw, u, k)
    np.minimum.at(first_draw, v, k)
    keep = (first_draw[u] == k) & (first_draw[v] == k)
    return u[keep], v[keep]


Pairing = Literal["matching", "edge", "node"]
PAIRINGS: tuple[Pairing, ...] = ("matching", "edge", "node")


def random_pairs(
    graph: SocialGraph, count: int, pairing: Pairing, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A sequence of `count` meetings (u, v) drawn one after another, in draw order (agents may repeat).

    `edge`: a uniformly random edge each time; `node`: a uniformly random agent, then a uniformly random
    neighbour of it (a drawn agent without neighbours meets nobody: the draw is dropped). On a complete
    graph both are a uniformly random pair of distinct agents.
    """
    n = graph.n
    if n < 2 or graph.n_edges == 0 or count <= 0:
        empty = np.empty(0, np.int64)
        return empty, empty
    if graph.complete:
        u = rng.integers(0, n, count)
        v = rng.integers(0, n - 1, count)
        return u, v + (v >= u)
    if pairing == "edge":
        drawn = graph.edges.take(rng.integers(0, len(graph.edges), count), axis=0)
        return drawn[:, 0].copy(), drawn[:, 1].copy()
    if pairing != "node":
        raise ValueError(f"pairing must be edge or node here, got {pairing!r}")
    u = rng.integers(0, n, count)
    degree = graph.degree[u]
    pick = np.floor(rng.random(count) * degree).astype(np.int64)
    has = degree > 0
    u, pick = u[has], pick[has]
    return u, graph.indices[graph.indptr[u] + pick]


def sequential_layers(u: np.ndarray, v: np.ndarray) -> list[np.ndarray]:
    """Split a sequence of meetings into layers of disjoint pairs (indices into the sequence) such that
    applying the layers in order equals applying the meetings one after another.

    A meeting's layer is one more than the latest layer of any earlier meeting of either of its
    agents, so every agent's meetings stay in drawn order, and no two meetings of a layer share an
    agent. Computed by relaxation over the sequence (as many passes as the longest chain of meetings
    linked by shared agents), with no Python loop over meetings.
    """
    m = len(u)
    if m == 0:
        return []
    ends = np.concatenate([u, v])
    draw = np.concatenate([np.arange(m), np.arange(m)])
    order = np.lexsort((draw, ends))  # by agent, then draw order
    previous = np.full(2 * m, -1, np.int64)
    same = ends[order[1:]] == ends[order[:-1]]
    previous[order[1:][same]] = draw[order[:-1][same]]
    before_u, before_v = previous[:m], previous[m:]
    layer = np.zeros(m, np.int64)
    while True:
        lu = np.where(before_u >= 0, layer[np.maximum(before_u, 0)], -1)
        lv = np.where(before_v >= 0, layer[np.maximum(before_v, 0)], -1)
        new = np.maximum(lu, lv) + 1
        if np.array_equal(new, layer):
            break
        layer = new
    by_layer = np.argsort(layer, kind="stable")
    return np.split(by_layer, np.cumsum(np.bincount(layer))[:-1])


def deffuant_move(
    x: np.ndarray, other: np.ndarray, eps: np.ndarray, mu: float, movable: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The Deffuant rule from one side: x moves mu of the way towards `other` where |other - x| < eps
    (and the agent is movable). Returns (new positions, heard)."""
    diff = other - x
    heard = np.abs(diff) < eps
    moves = heard if movable is None else heard & movable
    return x + mu * diff * moves, heard


def deffuant_pairs(
    x: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    eps: np.ndarray,
    mu: float,
    movable: np.ndarray | None = None,
) -> PairUpdate:
    """Apply the Deffuant rule to disjoint pairs (u, v) in place on x and say what happened.

    For each pair and dimension with |x_v - x_u| < eps_u, u moves mu of the way towards v (and v
    towards u when also < eps_v); both moves use the positions from before the meeting.
    """
    before_u, before_v = x.take(u, axis=0), x.take(v, axis=0)
    # `deffuant_move` from both sides with one difference: v's difference is -diff, so v's move is
    # exactly -(u's step) (IEEE negation and subtraction are exact), the same numbers to the bit
    diff = before_v - before_u
    dist = np.abs(diff)
    u_heard_v, v_heard_u = dist < eps.take(u)[:, None], dist < eps.take(v)[:, None]
    moves_u = u_heard_v if movable is None else u_heard_v & movable.take(u)[:, None]
    moves_v = v_heard_u if movable is None else v_heard_u & movable.take(v)[:, None]
    step = mu * diff
    after_u = before_u + step * moves_u
    after_v = before_v - step * moves_v
    set_rows(x, u, after_u)
    set_rows(x, v, after_v)
    return PairUpdate(u, v, u_heard_v, v_heard_u, before_u, before_v, after_u, after_v)


def set_rows(x: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    """x[rows] = values, for a C-ordered 2-d x as one write per row (numpy's row-wise fancy assignment
    of a 2-d array costs several times as much)."""
    if x.ndim != 2 or not x.flags.c_contiguous or x.shape[1] == 0:
        x[rows] = values
        return
    row = np.dtype((np.void, x.dtype.itemsize * x.shape[1]))
    x.view(row).reshape(len(x))[rows] = np.ascontiguousarray(values, dtype=x.dtype).view(row).reshape(len(values))


def meetings(
    graph: SocialGraph, rng: np.random.Generator, matchings: int, pairing: Pairing
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The disjoint pairs of a step, drawn lazily in order: `matchings` random matchings, or under
    `edge`/`node` ⌊n/2⌋ meetings drawn in sequence per matching, one layer of disjoint pairs at a time."""
    for _ in range(matchings):
        if pairing == "matching":
            yield random_matching(graph, rng)
            continue
        u, v = random_pairs(graph, graph.n // 2, pairing, rng)
        for layer in sequential_layers(u, v):
            yield u[layer], v[layer]


PAIRS_PER_BLOCK = 1 << 12  # pairs updated at a time: a block's work arrays stay in the CPU's cache
DRAW_AHEAD_FROM = 100_000  # agents: from here a matching takes long enough to draw the next one meanwhile


def drawn_ahead(items: Iterator[T]) -> Iterator[T]:
    """`items`, each drawn on a worker thread while the caller works on the one before. The draws do not
    depend on the positions, so they happen in the same order on the same generator, only sooner; numpy
    releases the GIL in the large array operations on both sides, so a second core does the drawing."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="socsim-draws") as pool:
        ahead = pool.submit(next, items, None)
        while (item := ahead.result()) is not None:
            ahead = pool.submit(next, items, None)
            yield item


def deffuant_step(
    x: np.ndarray,
    graph: SocialGraph,
    eps: np.ndarray,
    mu: float,
    rng: np.random.Generator,
    matchings: int = 1,
    movable: np.ndarray | None = None,
    pairing: Pairing = "matching",
) -> list[PairUpdate]:
    """`matchings` rounds applied one after another, in place on x: a random matching each, or under
    `edge`/`node` ⌊n/2⌋ meetings drawn in sequence each (one PairUpdate per layer of disjoint pairs)."""
    return [deffuant_pairs(x, u, v, eps, mu, movable) for u, v in meetings(graph, rng, matchings, pairing)]


def deffuant_advance(
    x: np.ndarray,
    pairs: Iterator[tuple[np.ndarray, np.ndarray]],
    eps: np.ndarray,
    mu: float,
    movable: np.ndarray | None = None,
) -> int:
    """`deffuant_pairs` over `meetings(...)` when nobody asks what happened: the same positions to the
    bit, returning only how many pairs met. Nothing of a matching is kept past it: pairs are updated a
    block at a time in the same small buffers (fresh arrays of a million agents' matching would fault
    ~20 MB of pages in each, and blocks stay in the CPU's cache); a bound shared by every agent is
    compared once; large runs draw the next matching on a thread meanwhile."""
    shared = float(eps[0]) if len(eps) and bool((eps == eps[0]).all()) else None
    work = _Buffers(min(len(x) // 2, PAIRS_PER_BLOCK), x.shape[1], x.dtype)
    met = 0
    for u, v in pairs if len(x) < DRAW_AHEAD_FROM else drawn_ahead(pairs):
        for lo in range(0, len(u), PAIRS_PER_BLOCK):  # disjoint pairs: blocks are independent
            block = slice(lo, lo + PAIRS_PER_BLOCK)
            _deffuant_in_place(x, u[block], v[block], eps, shared, mu, movable, work)
        met += len(u)
    return met


class _Buffers:
    """Work arrays for up to `pairs` pairs of `d` dimensions, allocated once and sliced per matching."""

    def __init__(self, pairs: int, d: int, dtype: np.dtype) -> None:
        self.floats = [np.empty((pairs, d), dtype) for _ in range(4)]
        self.flags = [np.empty((pairs, d), bool) for _ in range(2)]

    def take(self, m: int) -> tuple[np.ndarray, ...]:
        return *(f[:m] for f in self.floats), *(f[:m] for f in self.flags)


def _deffuant_in_place(
    x: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    eps: np.ndarray,
    shared: float | None,
    mu: float,
    movable: np.ndarray | None,
    work: _Buffers,
) -> None:
    """`deffuant_pairs`' arithmetic, operation for operation (so the same bits), in `work`'s buffers."""
    a, b, step, dist, moves_u, moves_v = work.take(len(u))
    np.take(x, u, axis=0, out=a, mode="clip")  # ids are valid: "clip" skips the buffer "raise" needs
    np.take(x, v, axis=0, out=b, mode="clip")
    np.subtract(b, a, out=step)  # diff
    np.abs(step, out=dist)
    np.less(dist, shared if shared is not None else eps.take(u)[:, None], out=moves_u)
    if movable is not None:
        moves_u &= movable.take(u)[:, None]
    step *= mu
    if shared is not None and movable is None:  # both ends hear (and move) alike
        step *= moves_u
        a += step
        b -= step
    else:
        np.less(dist, shared if shared is not None else eps.take(v)[:, None], out=moves_v)
        if movable is not None:
            moves_v &= movable.take(v)[:, None]
        np.multiply(step, moves_u, out=dist)
        a += dist
        step *= moves_v
        b -= step
    set_rows(x, u, a)
    set_rows(x, v, b)


def directed_edges(graph: SocialGraph) -> tuple[np.ndarray, np.ndarray]:
    """(listener, speaker) for every directed edge, in CSR order."""
    return graph.directed()


def hk_step(
    x: np.ndarray,
    graph: SocialGraph,
    eps: np.ndarray,
    movable: np.ndarray | None = None,
) -> np.ndarray:
    """One synchronous Hegselmann–Krause update; returns the new positions.

    x_i(t+1) = mean of x_j(t) over i and its neighbours j with |x_j(t) - x_i(t)| <= eps_i.
    Complete graphs use the exact sorted-window form (O(n log n) instead of O(n^2)).
    """
    new = _hk_complete(x, eps) if graph.is_complete else _hk_sparse(x, graph, eps)
    if movable is not None:
        new = np.where(movable[:, None], new, x)
    return new


def _hk_sparse(x: np.ndarray, graph: SocialGraph, eps: np.ndarray) -> np.ndarray:
    """Sums over each agent's CSR row with np.add.reduceat (rows are contiguous, listener-sorted)."""
    degree = graph.degree
    has = degree > 0
    starts = graph.indptr[:-1][has]  # reduceat needs non-empty rows; isolated agents keep their position
    eps_edge = np.repeat(eps, degree)
    new = x.copy()
    for j in range(x.shape[1]):  # a handful of dimensions, each vectorised over all edges
        col = x[:, j]
        diff = col[graph.indices] - np.repeat(col, degree)
        heard = np.abs(diff) <= eps_edge
        pull = np.add.reduceat(np.where(heard, diff, 0.0), starts)
        count = np.add.reduceat(heard, starts, dtype=np.int64)
        new[has, j] = col[has] + pull / (1.0 + count)
    return new


def _hk_complete(x: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """On a complete graph i's confidence set is a contiguous window of the sorted positions, so the
    mean is a difference of prefix sums over [x_i - eps_i, x_i + eps_i] (self included)."""
    new = np.empty_like(x)
    for j in range(x.shape[1]):
        order = np.argsort(x[:, j], kind="stable")
        xs = x[order, j]
        es = eps[order]
        prefix = np.concatenate([[0.0], np.cumsum(xs)])
        lo = _window_start(xs, es, strict=False)
        hi = _window_end(xs, es, strict=False)
        new[order, j] = (prefix[hi] - prefix[lo]) / (hi - lo)
    return new


def _within(gap: np.ndarray, eps: np.ndarray, strict: bool) -> np.ndarray:
    return gap < eps if strict else gap <= eps


def _window_start(xs: np.ndarray, es: np.ndarray, strict: bool) -> np.ndarray:
    """For sorted xs: the first index k with xs_i - xs_k within eps_i, for every i.

    A vectorised bisection on the very subtraction the sparse rule uses (not searchsorted on
    xs - eps, whose rounding can disagree with it at the bound), so both forms hear the same agents."""
    low = np.zeros(len(xs), np.int64)
    high = np.arange(len(xs))  # k = i always qualifies
    while (active := low < high).any():
        mid = (low + high) // 2
        ok = _within(xs - xs[mid], es, strict)
        high = np.where(active & ok, mid, high)
        low = np.where(active & ~ok, mid + 1, low)
    return low


def _window_end(xs: np.ndarray, es: np.ndarray, strict: bool) -> np.ndarray:
    """For sorted xs: one past the last index k with xs_k - xs_i within eps_i, for every i."""
    low = np.arange(len(xs))  # k = i always qualifies
    high = np.full(len(xs), len(xs) - 1, np.int64)
    while (active := low < high).any():
        mid = (low + high + 1) // 2
        ok = _within(xs[mid] - xs, es, strict)
        low = np.where(active & ok, mid, low)
        high = np.where(active & ~ok, mid - 1, high)
    return low + 1


def interacting_spread(
    x: np.ndarray,
    graph: SocialGraph,
    eps: np.ndarray,
    strict: bool,
    movable: np.ndarray | None = None,
) -> float:
    """Largest disagreement between a movable agent and a neighbour it still hears (per dimension).

    Below a small tolerance nothing can change any more: every pair either agrees or is out of
    confidence. This is the early-stopping test; `strict` matches Deffuant's "< eps" against
    Hegselmann–Krause's "<= eps". (`SpreadCheck` answers the same question incrementally.)
    """
    return SpreadCheck(graph, eps, strict, movable).spread(x)


class SpreadCheck:
    """The early-stopping test, cheap enough to run every step: is the interacting spread (see
    `interacting_spread`) below `tolerance`?

    The exact spread is a pass over every edge and dimension. Most steps of a run are far from
    convergence, and to know that, one pair still heard more than `tolerance` apart is enough: each
    full pass keeps up to `witnesses` such (edge, dimension) pairs, spread over the graph, and a later
    step looks at those first. While one of them still witnesses, the run has not converged (exactly
    as the full pass would say), and `spread` is the largest witnessed distance, a lower bound; once
    none does, the full pass runs again. So the stopping step and everything the run records are those
    of a full check every step; only the progress line's spread may be a lower bound in between.

    A pass goes over undirected edges once: an edge (a, b) is heard when its distance is within the
    larger bound of its movable ends (a movable agent hearing the other at distance d is the same d
    either way), in chunks of edges so that memory stays flat at a million agents.
    """

    CHUNK = 1 << 18  # edges per block of a full pass

    def __init__(
        self, graph: SocialGraph, eps: np.ndarray, strict: bool, movable: np.ndarray | None = None,
        witnesses: int = 64,
    ) -> None:  # fmt: skip
        self.graph, self.eps, self.strict, self.movable = graph, eps, strict, movable
        self.reach = eps if movable is None else np.where(movable, eps, -np.inf)  # a stubborn agent hears nobody
        self.n_witnesses = witnesses
        self.a = self.b = self.dim = self.bound = np.empty(0)
        if not graph.complete and graph.n_edges:
            self.a, self.b = graph.edges[:, 0], graph.edges[:, 1]
            self.edge_reach = np.maximum(self.reach[self.a], self.reach[self.b])

    def _heard(self, dist: np.ndarray, bound: np.ndarray) -> np.ndarray:
        return dist < bound if self.strict else dist <= bound

    def converged(self, x: np.ndarray, tolerance: float) -> tuple[bool, float]:
        """(spread < tolerance, the spread or, when a witness answered, a lower bound of it)."""
        if len(self.dim):
            dist = np.abs(x[self.a_w, self.dim] - x[self.b_w, self.dim])
            still = self._heard(dist, self.bound) & (dist >= tolerance)
            if still.any():
                return False, float(dist[still].max())
        spread = self.spread(x, tolerance)
        return spread < tolerance, spread

    def spread(self, x: np.ndarray, tolerance: float | None = None) -> float:
        """The exact spread (a full pass); with `tolerance`, keep witnesses for `converged`."""
        self.dim = np.empty(0, np.int64)
        if self.graph.n < 2 or self.graph.n_edges == 0:
            return 0.0
        if self.graph.complete:
            return self._complete(x, tolerance)
        worst, found = 0.0, []
        for lo in range(0, len(self.a), self.CHUNK):
            window = slice(lo, lo + self.CHUNK)
            a, b, bound = self.a[window], self.b[window], self.edge_reach[window]
            dist = x.take(a, axis=0)  # (edges, dimensions); take: row gathers by fancy index cost more
            dist -= x.take(b, axis=0)
            np.abs(dist, out=dist)
            heard = dist
            heard *= self._heard(dist, bound[:, None])  # 0 where not heard (distances are finite)
            worst = max(worst, float(heard.max()))
            if tolerance is not None and self._short(found):
                hits = np.flatnonzero(heard.ravel() >= tolerance)
                if len(hits):
                    edge, dim = np.divmod(self._spaced(hits), x.shape[1])
                    found.append((a[edge], b[edge], dim, bound[edge]))
        self._keep(found)
        return worst

    def _complete(self, x: np.ndarray, tolerance: float | None) -> float:
        """Everyone hears everyone within their bound: per dimension, each agent's farthest heard
        partner is at an end of its window in the sorted positions."""
        worst, found = 0.0, []
        movable = self.movable
        for j in range(x.shape[1]):
            order = np.argsort(x[:, j], kind="stable")
            xs, es = x[order, j], self.eps[order]
            lo = _window_start(xs, es, self.strict)
            hi = _window_end(xs, es, self.strict)
            up, down = xs[hi - 1] - xs, xs - xs[lo]
            reach = np.maximum(up, down)
            if movable is not None:
                keep = movable[order]
                reach, up, lo, hi, agents = reach[keep], up[keep], lo[keep], hi[keep], order[keep]
            else:
                agents = order
            if len(reach):
                worst = max(worst, float(reach.max()))
            if tolerance is not None and self._short(found):
                hits = np.flatnonzero(reach >= tolerance)
                if len(hits):
                    hits = self._spaced(hits)
                    partner = order[np.where(up[hits] >= reach[hits], hi[hits] - 1, lo[hits])]
                    i = agents[hits]
                    found.append((i, partner, np.full(len(hits), j), np.maximum(self.reach[i], self.reach[partner])))
        self._keep(found)
        return worst

    def _short(self, found: list) -> bool:
        return sum(len(f[0]) for f in found) < self.n_witnesses

    def _spaced(self, hits: np.ndarray) -> np.ndarray:
        """Up to `witnesses` of these, evenly spread (deterministic: no random stream is touched)."""
        if len(hits) <= self.n_witnesses:
            return hits
        return hits[np.linspace(0, len(hits) - 1, self.n_witnesses).astype(np.int64)]

    def _keep(self, found: list) -> None:
        if found:
            self.a_w, self.b_w, self.dim, self.bound = (np.concatenate(part) for part in zip(*found, strict=True))
        else:
            self.dim = np.empty(0, np.int64)


def components(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The connected component of every node of an undirected graph on 0..n-1 with edges (u, v), as the
    smallest node id in it. Vectorised hook-and-compress: each pass hooks the root of one end of every
    edge still joining two trees onto the smaller root, then compresses every path to its root."""
    parent = np.arange(n)
    u, v = np.asarray(u, np.int64), np.asarray(v, np.int64)
    while len(u):
        pu, pv = parent[u], parent[v]
        apart = pu != pv
        if not apart.any():
            break
        u, v, pu, pv = u[apart], v[apart], pu[apart], pv[apart]
        np.minimum.at(parent, np.maximum(pu, pv), np.minimum(pu, pv))  # roots only point to smaller roots
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    return parent


def graph_cluster_sizes(values: np.ndarray, graph: SocialGraph, tolerance: float = 0.01) -> np.ndarray:
    """Sizes of the opinion clusters of a 1-D position array on `graph`: connected components of the
    graph keeping only the edges whose two ends are at most `tolerance` apart. On a complete graph
    that is exactly the value-space rule (`cluster_sizes` with gap = tolerance), computed that way."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if graph.complete:
        return cluster_sizes(values, tolerance)
    if len(values) == 0:
        return np.empty(0, np.int64)
    a, b = graph.edges[:, 0], graph.edges[:, 1]
    agree = np.abs(values[a] - values[b]) <= tolerance
    labels = components(len(values), a[agree], b[agree])
    sizes = np.bincount(labels, minlength=len(values))
    return sizes[sizes > 0]


@dataclass(frozen=True)
class Clusters:
    """One dimension's opinion groups: `clusters` holding at least min_share of the agents, `groups` of
    any size, and the share of agents in the largest. Consensus: the largest holds all but min_share."""

    clusters: int
    groups: int
    largest_share: float


def summarise_clusters(sizes: np.ndarray, min_share: float = 0.01) -> Clusters:
    n = int(np.sum(sizes))
    if n == 0:
        return Clusters(0, 0, 0.0)
    return Clusters(int((sizes >= min_share * n).sum()), int(np.count_nonzero(sizes)), float(np.max(sizes)) / n)


def graph_clusters(
    values: np.ndarray, graph: SocialGraph, tolerance: float = 0.01, min_share: float = 0.01
) -> Clusters:
    """Topology-aware clusters of one dimension (see `graph_cluster_sizes`)."""
    return summarise_clusters(graph_cluster_sizes(values, graph, tolerance), min_share)


def cluster_sizes(values: np.ndarray, gap: float = 0.01) -> np.ndarray:
    """Sizes of the groups of a 1-D position array, split wherever sorted neighbours are > gap apart."""
    values = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if len(values) == 0:
        return np.empty(0, np.int64)
    group = np.concatenate([[0], np.cumsum(np.diff(values) > gap)])
    return np.bincount(group)


def count_clusters(values: np.ndarray, gap: float = 0.01, min_share: float = 0.01) -> int:
    """Number of groups holding at least `min_share` of the agents (1% by default, as in the
    literature's cluster counts for N = 1000)."""
    sizes = cluster_sizes(values, gap)
    n = sizes.sum()
    return int((sizes >= min_share * n).sum()) if n else 0
