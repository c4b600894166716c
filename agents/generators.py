"""Random graph generators that give networkx's graphs, draw for draw, as edge arrays.

networkx builds a dict-of-dicts Graph edge by edge; at a million agents that and its conversion to an
edge array take most of a run's set-up. The functions here replay the same draws from the same
`random.Random(seed)` stream (as networkx's `py_random_state` makes it from an integer seed) into
plain integer structures, so a seed gives exactly the graph it gave before.

Neither generator steps through the draws one edge at a time: each copies the Mersenne Twister state
of `random.Random(seed)` into numpy's MT19937 (`python_random_bits`) and takes the stream's 32-bit
words in bulk. `erdos_renyi_edges` reads one `random()` per edge, so all its skips are drawn at once.
`watts_strogatz_edges` works out with array operations where each rewiring falls in the stream; only
the rare rewiring whose first draw hits the node itself or an existing edge (networkx then draws
again) is settled one at a time, and dense small graphs, where most rewirings are like that, take the
plain loop.
"""

from __future__ import annotations

import itertools
import math
import random

import numpy as np

_CHUNK = 1 << 20  # words drawn from numpy's MT19937 at a time (random_raw returns uint64)
_MIN_WINDOW, _MAX_WINDOW = 16, 1 << 17  # rewirings checked for a clash at once
_ROWS_UP_TO = 16  # k // 2 up to which earlier rounds' added edges are looked up by round, not hashed


def watts_strogatz_edges(n: int, k: int, p: float, seed: int, *, _vectorised: bool | None = None) -> np.ndarray:
    """The (m, 2) edges of `networkx.watts_strogatz_graph(n, k, p, seed=seed)` (Watts & Strogatz 1998):
    a ring where each node links to its k // 2 nearest neighbours on each side, then every lattice edge
    (u, u + j), j = 1..k // 2 in that order, u in node order, is rewired with probability p to (u, w), w
    uniform, never a self-loop or a duplicate; a node linked to everyone keeps its edge. 0 < k < n.

    Both ways below give exactly networkx's graph; the array replay is taken unless the loop is quicker
    (small or dense graphs). `_vectorised` forces one or the other."""
    half = k // 2
    if 2 * half >= n:  # outside 0 < k < n: as the loop always did
        return _rewire_in_a_loop(n, half, p, seed)
    if not p > 0:  # nothing is rewired, whatever the draws
        return _lattice(n, half)
    if _vectorised is None:
        _vectorised = _array_replay_pays(n, half, min(p, 1.0))
    if not _vectorised or n >= 2**31 or not 0 < n * half < 2**28:  # int32 nodes, edge and word numbers
        return _rewire_in_a_loop(n, half, p, seed)
    return _Rewiring(n, half, p, seed).edges()


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
    position = skip_positions(python_random_bits(seed), n * (n - 1) // 2, p, of_complement=True)
    v = np.floor((1 + np.sqrt(1 + 8 * position.astype(np.float64))) / 2).astype(np.int64)
    v -= v * (v - 1) // 2 > position  # the float root can be one off near a row's start
    v += (v + 1) * v // 2 <= position
    return np.stack([v, position - v * (v - 1) // 2], axis=1)


def skip_positions(bits: np.random.MT19937, pairs: int, p: float, *, of_complement: bool) -> np.ndarray:
    """The pairs among 0..pairs-1 that networkx's geometric skips pick (Batagelj & Brandes 2005): from
    position -1, each `random()` r skips floor(log(x) / log(1 - p)) pairs and picks the next, x = 1 - r
    (`fast_gnp_random_graph`, `of_complement`) or r (`stochastic_block_model`). Each skip reads one draw
    whatever happened before, so a batch of skips is drawn at once and their running sum places the
    picks; the stream is left just after the draw whose skip runs past the last pair, as networkx
    leaves it. 0 < p < 1; where p is below float resolution (log(1 - p) == 0), networkx divides by
    zero: no pair is picked, and the one draw it would divide is taken."""
    log_q = math.log(1.0 - p)
    if log_q == 0.0:
        python_randoms(bits, 1)
        return np.empty(0, dtype=np.int64)
    found, last, expected = [], -1, p * pairs
    most = max(1, (1 << 62) // (pairs + 1))  # skips are clipped at pairs + 1: a batch's sum stays in int64
    while True:
        count = int(min(max(1.02 * expected + 64, 64), _CHUNK, most))
        state = bits.state
        r = python_randoms(bits, count)
        skip = floor_log_ratio(1.0 - r if of_complement else r, log_q)
        position = last + np.cumsum(np.minimum(skip, pairs) + 1)  # clipped: past the end either way
        past = int(np.searchsorted(position, pairs))  # the first position that is not a pair
        if past < count:
            found.append(position[:past])
            bits.state = state  # give back the draws after that one
            python_randoms(bits, past + 1)
            return np.concatenate(found)
        found.append(position)
        last = int(position[-1])
        expected = max(expected - count, 64.0)


def floor_log_ratio(x: np.ndarray, log_q: float) -> np.ndarray:
    """floor(log(x) / log_q) for 0 < x <= 1 and log_q < 0, as networkx computes a geometric skip with
    `math.log`. numpy's log may differ from the C library's in the last bit, which matters only where
    the quotient is within rounding of an integer: those few are recomputed with `math.log`."""
    quotient = np.log(x) / log_q
    skip = np.floor(quotient)
    close = np.flatnonzero(np.abs(quotient - np.round(quotient)) <= 1e-9 * np.maximum(quotient, 1.0))
    skip[close] = [math.floor(math.log(y) / log_q) for y in x[close].tolist()]
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


def _array_replay_pays(n: int, half: int, p: float) -> bool:
    """The loop takes about 0.3 us an edge and 1.5 us a rewiring; the array replay a millisecond or
    so, and some 250 us for each rewiring whose first draw clashes: about (2 * half + 1) / n of them,
    up to twice that as rewired edges pile up."""
    clashes = (2 * half + 1) / n * p * (1 + p)
    return n * half >= 10_000 and clashes * 250 <= 0.3 + 1.5 * p


def _lattice(n: int, half: int) -> np.ndarray:
    """The ring lattice: (u, u + j) for j = 1..half."""
    u = np.tile(np.arange(n, dtype=np.int64), half)
    return np.stack([u, (u + np.repeat(np.arange(1, half + 1), n)) % n], axis=1)


def _rewire_in_a_loop(n: int, half: int, p: float, seed: int) -> np.ndarray:
    """networkx's loop itself, on an integer edge set."""
    rng = random.Random(seed)
    nodes = range(n)  # random.choice indexes a sequence with one _randbelow(len) draw: a range draws as a list
    ring = np.arange(n, dtype=np.int64)
    lattice = [edge_keys(ring, (ring + j) % n, n) for j in range(1, half + 1)]
    edges = set(np.concatenate([ring[:0], *lattice]).tolist())
    degree = [2 * half] * n
    draw, choice = rng.random, rng.choice
    for j in range(1, half + 1):
        for u in nodes:
            if not draw() < p:
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


class _NeedWords(Exception):
    """The replay reached the end of the drawn words; it resumes from (cursor, edge) with more."""

    def __init__(self, cursor: int, edge: int) -> None:
        self.cursor, self.edge = cursor, edge


class _Stream:
    """What networkx's loop does at each word of a stretch of `random.Random`'s output.

    CPython's `random()` reads two 32-bit words ((a >> 5) * 2**26 + (b >> 6)) / 2**53, and
    `choice(range(n))` reads one word at a time, keeping word >> (32 - n.bit_length()) once it is < n.
    Lattice edge number e (j = e // n + 1, u = e % n) reads a `random()` at some cursor c; a rewiring
    there (a "hit") takes its node w from the first kept word from c + 2 on, and the next edge reads at
    the word after it. So, until a draw clashes, edge after edge is a walk of the cursor through the
    words, and from a hit the walk goes to the next hit of the same parity as the word after its choice.
    The walks are followed from every hit at once with numpy, by blocks of hits: any walk enters a block
    at one of the few hits that walks from the blocks before jump to, and those are followed in lockstep.
    """

    def __init__(self, words: np.ndarray, n: int, p: float, shift: int) -> None:
        count = len(words)
        self.words, self.count, self.shift, self.limit = words, count, shift, n << shift
        self.hit = np.zeros(count + 2, dtype=bool)  # hit[c]: random() from words c, c + 1 is < p
        self.valid = np.ones(count + 1, dtype=bool)  # a choice keeps word c (and stops at the words' end)
        for at in range(0, count, _CHUNK):  # by pieces, so that no temporary is the stream's size
            stop = min(count, at + _CHUNK)
            _random_below(words[at : stop + 1], p, self.hit[at : min(stop, count - 1)])
            np.less(words[at:stop], self.limit, out=self.valid[at:stop])
        hits = self.hits = np.empty(int(np.count_nonzero(self.hit)) + 2, dtype=np.int32)  # the hits' words
        filled = 0
        for at in range(0, count, _CHUNK):
            piece = np.flatnonzero(self.hit[at : at + _CHUNK])
            hits[filled : filled + len(piece)] = piece + at
            filled += len(piece)
        hits[filled:] = count, count + 1  # one of each parity, to stop searches
        k = self.k = filled
        self.next = np.empty(k + 1, dtype=np.int32)  # the hit the walk goes on to (k: none in the words)
        bounds = np.searchsorted(hits[:k], np.arange(0, count + _CHUNK, _CHUNK, dtype=np.int32)).tolist()
        for first, last in itertools.pairwise(bounds):  # by pieces of the words
            if first < last:
                self._walk_on(first, last)
        self.next[k] = k
        self._follow_blocks()

    def _choices(self, first: np.ndarray | slice) -> np.ndarray:
        """The word after each hit's first choice (count + 1: not drawn yet)."""
        valid = self.valid
        after = self.hits[first] + 2
        again = np.flatnonzero(~valid[after])
        while len(again):  # runs of dropped words are short: half or more of the words are kept
            after[again] += 1
            again = again[~valid[after[again]]]
        after += 1
        return after

    def _walk_on(self, first: int, last: int) -> None:
        """Where the walk goes on to from hits first..last - 1: the first hit of the parity of the
        word after the hit's choice, from there on."""
        hits, k = self.hits, self.k
        after = self._choices(slice(first, last))
        low, high = int(after[0]), int(after[-1]) + 1
        before = np.zeros(high - low + 1, dtype=np.int32)  # hits from `low` on before each word
        np.cumsum(self.hit[low:high], out=before[1:])
        nxt = before[after - low]  # the first hit from there; half the time it has the other parity
        nxt += np.int32(np.searchsorted(hits, np.int32(low)))
        again = np.flatnonzero((hits[nxt] ^ after) & 1)
        while len(again):
            nxt[again] += 1
            again = again[((hits[nxt[again]] ^ after[again]) & 1) != 0]
        np.minimum(nxt, k, out=nxt)
        nxt[after > self.count] = k
        self.next[first:last] = nxt

    def draws(self, hits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The node each of these hits' first choice draws (-1: not drawn yet), and the edges from
        each to the next hit of its walk (to the words' end if none)."""
        after = self._choices(hits)
        w = (np.take(self.words, after - 1, mode="clip") >> self.shift).view(np.int32)
        step = ((self.hits[self.next[hits]] - after) >> 1) + 1
        undrawn = after > self.count
        if undrawn.any():
            w[undrawn], step[undrawn] = -1, 0
        return w, step

    def _follow_blocks(self) -> None:
        """Every walk through each block of hits from every hit it can be entered at, in lockstep:
        once to measure them, once to write them down one after another. A walk that comes to a hit
        another has been at stops there and `joins` it."""
        k, nxt = self.k, self.next
        jump = 1  # the longest step of a walk that does not end
        for at in range(0, k, _CHUNK):
            ahead = nxt[at : at + _CHUNK]
            steps = ahead - np.arange(at, at + len(ahead), dtype=np.int32)
            jump = max(jump, int(steps[ahead < k].max(initial=1)))
        size = self.block = max(64, 2 * jump + 2, int(2 * math.sqrt(k)))
        entries = [nxt[:0]]
        for at in range(0, k, _CHUNK):  # the hits a walk jumps to from a block before theirs
            ahead = nxt[at : at + _CHUNK]
            entries.append(ahead[(ahead // size != np.arange(at, at + len(ahead), dtype=np.int32) // size)])
        entries = np.unique(np.concatenate(entries))
        entries = entries[entries < k]
        self.entries, count = entries, len(entries)
        seen = np.zeros(k + 1, dtype=bool)  # hits a walk has been at
        seen[entries] = True
        length, last = np.ones(count, dtype=np.int32), entries.copy()
        joins = np.full(count, -1, dtype=np.int32)  # the hit where a walk meets another (-1: none)
        ids, at = np.arange(count), entries.copy()
        end = np.minimum((entries // size + 1) * size, k).astype(np.int32)
        taken = 1
        while len(ids):
            ahead = nxt[at]
            inside = ahead < end
            going = inside & ~seen[ahead]
            if not going.all():
                gone = ids[~going]
                length[gone], last[gone] = taken, at[~going]
                joins[gone] = np.where(inside[~going], ahead[~going], -1)
                ids, at, end = ids[going], ahead[going], end[going]
            else:
                at = ahead
            seen[at] = True
            taken += 1
            if taken % 32 == 0 and len(at) > 1:  # walks that came to a hit at the same time go on as one
                twin = np.ones(len(at), dtype=bool)
                twin[np.unique(at, return_index=True)[1]] = False
                if twin.any():
                    gone, ahead = ids[twin], nxt[at[twin]]
                    length[gone], last[gone] = taken, at[twin]
                    joins[gone] = np.where(ahead < end[twin], ahead, -1)
                    ids, at, end = ids[~twin], at[~twin], end[~twin]
        self.start = np.zeros(count + 1, dtype=np.int32)
        np.cumsum(length, out=self.start[1:])
        walk = self.walk = np.empty(int(self.start[-1]), dtype=np.int32)  # the walks, one after another
        order = np.argsort(length)[::-1]
        longest = length[order]
        alive = np.searchsorted(-longest, -np.arange(int(longest[0]) if count else 0), side="left")
        here, there = entries[order], self.start[order]
        for steps, going in enumerate(alive.tolist()):
            here, there = here[:going], there[:going]
            walk[there + steps] = here
            here = nxt[here]
        ahead = nxt[last]  # where each walk leaves its block: an entry of the next one, or the end
        self.then = np.where(ahead < k, np.searchsorted(entries, ahead), -1)  # -2 - hit: joins at hit
        self.then = np.where(joins >= 0, -2 - joins, self.then)

    def locate(self, hit: int) -> int:
        """Where in `walk` a walk of hit's block goes through it, or -1."""
        block = hit // self.block
        lo, hi = np.searchsorted(self.entries, np.array([block, block + 1], dtype=np.int32) * self.block)
        first, last = int(self.start[lo]), int(self.start[hi])
        found = np.flatnonzero(self.walk[first:last] == hit)
        return first + int(found[0]) if len(found) else -1

    def first_hit(self, cursor: int) -> int:
        """The first hit at or after `cursor` of its parity, as a hit number (k if none is drawn)."""
        span = 64
        while cursor < self.count - 1:
            found = np.flatnonzero(self.hit[cursor : cursor + 2 * span : 2])
            if len(found):
                return int(np.searchsorted(self.hits, np.int32(cursor + 2 * int(found[0]))))
            cursor, span = cursor + 2 * span, span * 2
        return self.k

    def choose(self, cursor: int) -> tuple[int, int]:
        """One `choice(range(n))` from `cursor`: the node and the word after it."""
        words, limit = self.words, self.limit
        while cursor < self.count:
            word = int(words[cursor])
            cursor += 1
            if word < limit:
                return word >> self.shift, cursor
        raise IndexError

    def after_choice(self, hit: int) -> int:
        """The word after a hit's first choice."""
        return self.choose(int(self.hits[hit]) + 2)[1]

    def edges_left(self, cursor: int) -> int:
        """How many more `random()` calls of the cursor's parity the words hold."""
        return max(0, (self.count - 2 - cursor) // 2 + 1)


class _Walk:
    """The hits the cursor's walk goes through from one hit on, handed out in windows."""

    def __init__(self, stream: _Stream, hit: int, edge: int) -> None:
        self.stream, self.edge = stream, edge  # the edge number of the next hit handed out
        lead, self.at = [], -1
        while hit < stream.k:  # until the walk meets one followed in lockstep
            self.at = stream.locate(hit)
            if self.at >= 0:
                break
            lead.append(hit)
            hit = int(stream.next[hit])
        self.lead = np.array(lead, dtype=np.int32)
        self.entry = self._entry()

    def _entry(self) -> int:
        return int(np.searchsorted(self.stream.start, np.int32(self.at), side="right")) - 1 if self.at >= 0 else -1

    def take(self, count: int) -> np.ndarray:
        """The next `count` hits or so (all of the lead, then down the walks)."""
        s = self.stream
        parts, got = [self.lead], len(self.lead)
        self.lead = self.lead[:0]
        while got < count and self.entry >= 0:
            stop = int(s.start[self.entry + 1])
            if stop - self.at > count - got:
                stop = self.at + count - got
                parts.append(s.walk[self.at : stop])
                self.at = stop
                break
            parts.append(s.walk[self.at : stop])
            got += stop - self.at
            then = int(s.then[self.entry])
            self.at = int(s.start[then]) if then >= 0 else -1 if then == -1 else s.locate(-2 - then)
            self.entry = self._entry()
        return np.concatenate(parts)

    @property
    def done(self) -> bool:
        return self.entry < 0 and not len(self.lead)


class _Rewiring:
    """networkx's rewiring loop replayed by windows of rewirings (see _Stream for how they are found).

    `rewired_to[e]` is the node lattice edge e was rewired to (-1: kept). Added edges are never removed
    (a lattice edge is removed only at its own turn), so the graph at any time is the lattice minus the
    rewired edges plus the (u, rewired_to) pairs, and a draw w for edge e = (u, u + j) clashes iff w == u,
    or {u, w} is a lattice edge still there, or an earlier rewiring added {u, w}: at u's own edges of
    earlier rounds, or at w's edges before e (for large k, earlier rounds' edges are hashed instead).
    A window of rewirings is checked as if none clashed; the first clash is redrawn as networkx does,
    and the walk restarts from the word after it. Where most first draws clash (dense graphs), windows
    would hold a rewiring or two, and rewirings are taken one at a time instead."""

    def __init__(self, n: int, half: int, p: float, seed: int) -> None:
        self.n, self.half, self.p, self.m = n, half, p, n * half
        self.shift = 32 - n.bit_length()
        self.bits = python_random_bits(seed)
        self.rewired_to = np.full(self.m, -1, dtype=np.int32)
        self.by_round = self.rewired_to.reshape(half, n)
        self.chosen = np.zeros(n, dtype=np.int64)  # rewirings to each node, but for the `unchosen` ones
        self.earlier = _KeySet() if half > _ROWS_UP_TO else None
        self.hashed = 0  # rounds whose added edges `earlier` holds
        self.unchosen: list[np.ndarray] = []
        self.uncounted = 0

    def draw(self, count: int) -> np.ndarray:
        """The stream's next `count` 32-bit words."""
        words = np.empty(count, dtype=np.uint32)
        for start in range(0, count, _CHUNK):
            stop = min(count, start + _CHUNK)
            words[start:stop] = self.bits.random_raw(stop - start)
        return words

    def words_needed(self) -> int:
        """Enough words, most likely: two a random(), 2**bits / n on average a choice, and some
        to spare for redraws; if they run out, more are drawn."""
        per_choice = (1 << self.n.bit_length()) / self.n
        rewirings = self.m * min(self.p, 1.0)
        clashes = rewirings * min(1.0, (2 * self.half + 1) / self.n)
        expected = 2 * self.m + (rewirings + 4 * clashes) * per_choice
        return int(1.002 * expected + 8 * math.sqrt(expected) + 1024)

    def edges(self) -> np.ndarray:
        """The rewired graph's edges: every lattice edge, or the one it was rewired to."""
        n = self.n
        words = self.draw(self.words_needed())
        cursor, edge = 0, 0
        while True:
            try:
                self.replay(_Stream(words, n, self.p, self.shift), cursor, edge)
                break
            except _NeedWords as short:
                cursor, edge = short.cursor, short.edge
                words = np.concatenate([words, self.draw(len(words) // 2 + 1024)])
        del words
        out = np.empty((self.half, n, 2), dtype=np.int64)
        nodes = np.arange(n)
        out[:, :, 0] = nodes
        for j, row in enumerate(self.by_round, start=1):
            target = out[j - 1, :, 1]
            target[: n - j], target[n - j :] = nodes[j:], nodes[:j]
            moved = np.flatnonzero(row >= 0)
            target[moved] = row[moved]
        return out.reshape(-1, 2)

    def replay(self, s: _Stream, cursor: int, edge: int) -> None:
        """Rewire from `cursor` (the word edge number `edge` reads) to the last edge."""
        window, seen, clashes = _MIN_WINDOW * 64, 0, 0
        while edge < self.m:
            if window <= _MIN_WINDOW:  # most draws clash: windows would hold a rewiring or two
                cursor, edge, crawled, clashed = self.crawl(s, cursor, edge, 4 * _MIN_WINDOW)
                seen, clashes = seen + crawled, clashes + clashed
                window = min(_MAX_WINDOW, max(_MIN_WINDOW, 2 * seen // (clashes + 1)))
                continue
            hit = s.first_hit(cursor)
            if hit == s.k:
                if edge + s.edges_left(cursor) < self.m:
                    raise _NeedWords(cursor, edge)
                return
            walk = _Walk(s, hit, edge + (int(s.hits[hit]) - cursor) // 2)
            while True:
                hits = walk.take(window)
                w, steps = s.draws(hits)
                numbers = np.cumsum(steps, dtype=np.int32)
                numbers += np.int32(walk.edge) - steps  # the edge number of each
                if len(hits):
                    walk.edge = int(numbers[-1]) + int(steps[-1])
                last = int(np.searchsorted(numbers, np.int32(self.m)))
                hits, numbers, w = hits[:last], numbers[:last], w[:last]
                undrawn = int(np.argmax(w < 0)) if len(w) and w.min() < 0 else len(w)
                clash = self.first_clash(numbers[:undrawn], w[:undrawn])
                seen, clashes = seen + clash, clashes + (clash < undrawn)
                window = min(_MAX_WINDOW, max(_MIN_WINDOW, 2 * seen // (clashes + 1)))
                self.record(w[:clash])
                if clash < undrawn:
                    edge = int(numbers[clash])
                    try:
                        cursor = self.redraw(s, int(hits[clash]), edge)
                    except IndexError:
                        raise _NeedWords(int(s.hits[hits[clash]]), edge) from None
                    edge += 1
                    break
                if undrawn < len(w):
                    raise _NeedWords(int(s.hits[hits[undrawn]]), int(numbers[undrawn]))
                if last < len(steps) or (walk.done and walk.edge >= self.m):
                    return
                if walk.done:  # the words end before the edges do
                    edge = int(numbers[-1]) + 1 if len(numbers) else edge
                    cursor = s.after_choice(int(hits[-1])) if len(hits) else cursor
                    raise _NeedWords(cursor, edge)

    def crawl(self, s: _Stream, cursor: int, edge: int, count: int) -> tuple[int, int, int, int]:
        """Up to `count` rewirings one at a time, from `cursor` at edge number `edge`; returns where
        it stopped, the rewirings that did not clash and those that did."""
        m, n, hits = self.m, self.n, s.hits
        hit, calm, clashed = s.first_hit(cursor), 0, 0
        while calm + clashed < count:
            if hit == s.k:
                if edge + s.edges_left(cursor) < m:
                    raise _NeedWords(cursor, edge)
                return cursor, m, calm, clashed
            edge += (int(hits[hit]) - cursor) >> 1
            if edge >= m:
                return cursor, m, calm, clashed
            try:
                w, cursor = s.choose(int(hits[hit]) + 2)
            except IndexError:
                raise _NeedWords(int(hits[hit]), edge) from None
            if self.linked(edge % n, w):
                try:
                    cursor = self.redraw(s, hit, edge)
                except IndexError:
                    raise _NeedWords(int(hits[hit]), edge) from None
                hit, clashed = s.first_hit(cursor), clashed + 1
            else:
                self.rewired_to[edge] = w
                self.record(np.array([w]))
                hit, calm = int(s.next[hit]), calm + 1
            edge += 1
        return cursor, edge, calm, clashed

    def first_clash(self, edges: np.ndarray, w: np.ndarray) -> int:
        """The first rewiring in the window whose first draw clashes, or the window's length; the
        rewirings before it are recorded."""
        self.rewired_to[edges] = w  # as if none clashed: a later one never counts for an earlier one
        start, n = 0, self.n
        while start < len(edges):  # round by round
            j = int(edges[start]) // n
            stop = start + int(np.searchsorted(edges[start:], np.int32((j + 1) * n)))
            clash = self.round_clashes(edges[start:stop], w[start:stop], j)
            if clash.any():
                start += int(np.argmax(clash))
                self.rewired_to[edges[start:]] = -1
                return start
            start = stop
        return start

    def round_clashes(self, edges: np.ndarray, w: np.ndarray, j: int) -> np.ndarray:
        """Which of these rewirings of round j + 1 clash with the graph as the ones before left it."""
        n, half, rewired_to, by_round = self.n, self.half, self.rewired_to, self.by_round
        u = edges - np.int32(j * n)
        gap = w - u
        clash = gap == 0
        size = np.abs(gap)
        near = np.flatnonzero(((size <= half) | (size >= n - half)) & (size > 0))
        if len(near):  # {u, w} is a lattice edge: there unless rewired already
            gap, nu, nw = gap[near] % n, u[near], w[near]
            number = np.where(gap <= half, (gap - 1) * n + nu, (n - gap - 1) * n + nw)
            clash[near] |= (number >= edges[near]) | (rewired_to[number] < 0)
        if self.earlier is not None:  # edges added in earlier rounds
            while self.hashed < j:
                row = by_round[self.hashed]
                moved = np.flatnonzero(row >= 0)
                self.earlier.add(edge_keys(moved, row[moved].astype(np.int64), n))
                self.hashed += 1
            if j:
                clash |= self.earlier.contains(edge_keys(u.astype(np.int64), w.astype(np.int64), n))
        elif len(u) >= 32 * j:  # u's own edges rewired to w, and w's to u, in earlier rounds
            for row in by_round[:j]:
                clash |= np.take(row, u) == w
                clash |= np.take(row, w) == u
        else:
            clash |= (np.take(by_round[:j], u, axis=1) == w).any(axis=0)
            clash |= (np.take(by_round[:j], w, axis=1) == u).any(axis=0)
        clash |= (w < u) & (np.take(by_round[j], w) == u)  # w's edge of this round, before u's
        return clash

    def redraw(self, s: _Stream, hit: int, edge: int) -> int:
        """networkx's redraws after a clash at lattice edge `edge`; returns the word after the last."""
        u = edge % self.n
        full = self.full(u)
        cursor = s.after_choice(hit)
        while True:
            w, cursor = s.choose(cursor)
            if full:
                return cursor  # u is linked to everyone: its edge stays
            if not self.linked(u, w):
                self.rewired_to[edge] = w
                self.record(np.array([w]))
                return cursor

    def linked(self, u: int, w: int) -> bool:
        """networkx's `w == u or G.has_edge(u, w)`, now."""
        if w == u:
            return True
        n, half, rewired_to = self.n, self.half, self.rewired_to
        gap = (w - u) % n
        if gap <= half and rewired_to[(gap - 1) * n + u] < 0:
            return True  # a lattice edge still there
        if gap >= n - half and rewired_to[(n - gap - 1) * n + w] < 0:
            return True
        return bool((self.by_round[:, u] == w).any() or (self.by_round[:, w] == u).any())

    def full(self, u: int) -> bool:
        """Whether u is linked to everyone. Its degree is its own lattice edges (kept, or rewired to a
        new edge at u), the lattice edges from behind still there, and the rewirings that chose u; the
        count of those is brought up to date only when it could make up the difference."""
        n, half = self.n, self.half
        behind = self.by_round[np.arange(half), (u - np.arange(1, half + 1)) % n]
        there = half + int((behind < 0).sum())
        if there + int(self.chosen[u]) + self.uncounted < n - 1:
            return False
        if self.uncounted:
            np.add.at(self.chosen, np.concatenate(self.unchosen), 1)
            self.unchosen, self.uncounted = [], 0
        return there + int(self.chosen[u]) >= n - 1

    def record(self, w: np.ndarray) -> None:
        """Rewirings to these nodes were made (their counts are added when needed)."""
        self.unchosen.append(w)
        self.uncounted += len(w)


class _KeySet:
    """Distinct int64 keys in an open-addressing table, added and looked up by arrays."""

    def __init__(self) -> None:
        self.table = np.full(1 << 10, -1, dtype=np.int64)  # -1: free; kept at most half full
        self.size = 0

    def _slots(self, keys: np.ndarray) -> np.ndarray:
        bits = len(self.table).bit_length() - 1
        mixed = keys.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing
        return (mixed >> np.uint64(64 - bits)).astype(np.int64)

    def add(self, keys: np.ndarray) -> None:
        """Keys not there yet, none twice."""
        if 2 * (self.size + len(keys)) > len(self.table):
            old = self.table[self.table >= 0]
            self.table = np.full(2 * len(self.table), -1, dtype=np.int64)
            self.size = 0
            self.add(old)
            return self.add(keys)
        self.size += len(keys)
        mask, table = len(self.table) - 1, self.table
        slots = self._slots(keys)
        while len(keys):  # each free slot goes to one of the keys that land on it
            free = np.flatnonzero(table[slots] == -1)
            table[slots[free]] = keys[free]
            placed = np.zeros(len(keys), dtype=bool)
            placed[free] = table[slots[free]] == keys[free]
            keys, slots = keys[~placed], (slots[~placed] + 1) & mask
        return None

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """Which of the keys are there."""
        found = np.zeros(len(keys), dtype=bool)
        mask, table = len(self.table) - 1, self.table
        slots, which = self._slots(keys), np.arange(len(keys))
        while len(which):
            there = table[slots]
            same = there == keys
            found[which[same]] = True
            going = (there != -1) & ~same
            which, keys, slots = which[going], keys[going], (slots[going] + 1) & mask
        return found


def _random_below(words: np.ndarray, p: float, out: np.ndarray) -> None:
    """random() < p for `random()` read at each word but the last, in integers: random() is
    x / 2**53 for x = (a >> 5) * 2**26 + (b >> 6), exactly, so it is < p iff x < ceil(p * 2**53)."""
    if p >= 1:
        out[:] = True
        return
    bound = math.ceil(p * 2.0**53)
    high, low = bound >> 26, bound & ((1 << 26) - 1)
    first = words[:-1]
    np.less(first, high << 5, out=out)
    tied = np.flatnonzero((first >> 5) == high)
    out[tied] = (words[tied + 1] >> 6) < low
