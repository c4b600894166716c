"""networkx's Barabási–Albert graph, draw for draw, as an edge array without a loop over nodes.

`networkx.barabasi_albert_graph` grows a graph by preferential attachment (Barabási & Albert 1999,
"Emergence of scaling in random networks", Science 286, 509–512): from a star on m + 1 nodes, each new
node links to m distinct nodes picked with probability proportional to degree. It does that one node at
a time in Python, drawing from a list holding every node once per edge end, and builds a dict-of-dicts
Graph on the way; at a million agents that is most of a run's set-up. `barabasi_albert_edges` replays
the same draws from the same `random.Random(seed)` stream, so a seed gives exactly the graph it gave
before, but takes the stream's words in bulk and settles whole windows of new nodes with numpy.

How networkx draws. `seq` starts as [0] * m + [1..m]. Step t (new node s = m + 1 + t) finds m targets
by `random.choice(seq)` until m distinct values are in a set, then appends the set in its iteration
order and m copies of s, so len(seq) = L_t = 2m(t + 1) during step t, and row t + 1 of seq read as
(n - m, 2m) is [targets of step t, s * m]. `choice` reads 32-bit words until word >> (32 - k) < L_t,
k = L_t.bit_length(): word w is kept iff w < T_t = L_t << (32 - k).

How the replay goes, by windows of steps within one k:
- Which words are kept: T_t grows with t, so marking the words below T_t0 and then, until nothing
  changes, the words below the threshold of the step their kept predecessors put them in, only ever
  adds words and stops at networkx's choice (a prefix that agrees with its own re-marking is exact).
- What they pick: a kept word is a position in seq. Positions before the window are known; a copy of
  a window's new node is known arithmetically; a target slot of a window step is known once that step's
  picks are, so picks are settled in rounds, each step's targets ordered as CPython's set orders them
  (`_set_order`: small ints hash to themselves, then CPython's probing and resizing, all rows at once;
  a round of a few steps uses real sets).
- A step whose first m picks repeat a node draws again in networkx, which shifts every later step's
  words: the window is cut there, that step is replayed one word at a time (`_step`), and the next
  window starts after it. Such steps are common only early (few, heavy nodes), where the windows
  shrink and steps are taken one at a time; later they are rare and windows grow.
Small graphs, and ones whose seq would outgrow one 32-bit word, take networkx's loop on plain lists.
"""

from __future__ import annotations

import random

import numpy as np

from agents.generators import python_random_bits

_LINEAR_PROBES = 9  # CPython's setobject.c: slots checked after the first before perturbing
_PERTURB_SHIFT = 5
_SET_MINSIZE = 8
_MIN_WINDOW, _MAX_WINDOW = 64, 1 << 16  # steps settled at once (shorter ones are taken one at a time)
_FEW_ROWS = 64  # steps whose targets are put in set order with real sets rather than numpy
_DRAW = 1 << 22  # words drawn from numpy's MT19937 at a time
_FIXED_POINT_ROUNDS = 64  # re-markings of kept words before the window is cut at the first change


def barabasi_albert_edges(n: int, m: int, seed: int, *, _vectorised: bool | None = None) -> np.ndarray:
    """The (m + m * (n - m - 1), 2) edges of `networkx.barabasi_albert_graph(n, m, seed=seed)` for
    1 <= m < n: the star (0, 1..m), then (s, target) for each new node s = m + 1..n - 1.

    The window replay is taken unless the plain loop is quicker (small graphs); `_vectorised` forces one
    or the other (the loop is kept where seq would outgrow 32-bit draws)."""
    if not 1 <= m < n:
        raise ValueError(f"Barabási–Albert needs 1 <= m < n, got m={m}, n={n}")
    if _vectorised is None:
        _vectorised = n >= 50_000
    if not _vectorised or 2 * m * n >= 2**32:
        return _attach_in_a_loop(n, m, seed)
    return _Attachment(n, m, seed).edges()


def _star_and_targets(n: int, m: int, targets: np.ndarray) -> np.ndarray:
    """Edges from the star and each step's m targets (rows of `targets`)."""
    out = np.empty((m + targets.size, 2), dtype=np.int64)
    out[:m, 0], out[:m, 1] = 0, np.arange(1, m + 1)
    out[m:, 0] = np.repeat(np.arange(m + 1, n, dtype=np.int64), m)
    out[m:, 1] = targets.reshape(-1)
    return out


def _attach_in_a_loop(n: int, m: int, seed: int) -> np.ndarray:
    """networkx's loop itself, on plain lists and sets."""
    choice = random.Random(seed).choice
    seq = [0] * m + list(range(1, m + 1))
    targets = np.empty((n - m - 1, m), dtype=np.int64)
    for t, source in enumerate(range(m + 1, n)):
        chosen: set[int] = set()
        while len(chosen) < m:
            chosen.add(choice(seq))
        picked = list(chosen)  # the set's iteration order, as networkx extends seq with it
        targets[t] = picked
        seq.extend(picked)
        seq.extend([source] * m)
    return _star_and_targets(n, m, targets)


def _set_order(values: np.ndarray) -> np.ndarray:
    """Each row's values (distinct non-negative ints) in the iteration order of a CPython set they were
    added to left to right. The set starts with 8 slots and, once fill * 5 >= mask * 3 after an add,
    moves to the least power of two above 4 * used (2 * used past 50,000), putting its entries back in
    slot order; so each table holds the previous table's entries in its order, then the adds after."""
    m = values.shape[1]
    order = values[:, :0].astype(np.int64)
    size, used, resized = _SET_MINSIZE, 0, True
    while used < m or resized:
        more = min(used + 1, m)  # the add after which this table is left (or the last)
        while more < m and more * 5 < (size - 1) * 3:
            more += 1
        order = _table_order(np.concatenate([order, values[:, used:more].astype(np.int64)], axis=1), size)
        used, resized = more, more * 5 >= (size - 1) * 3
        if resized:
            least = used * 2 if used > 50_000 else used * 4
            size = _SET_MINSIZE
            while size <= least:
                size <<= 1
    return order


def _table_order(keys: np.ndarray, size: int) -> np.ndarray:
    """Each row's keys in slot order once added left to right to an empty CPython set table of `size`
    slots. A key's hash is itself; it probes slot i = hash & mask, then i + 1..i + 9 if those are in
    the table, then i = 5i + 1 + perturb (perturb = hash, shifted right 5 bits each time), and takes
    the first slot that no earlier key holds. All keys probe at once: each slot goes to the earliest
    key that reaches it, and a later one there moves on (a slot once taken stays taken, by ever earlier
    keys, so what a key passed stays behind it)."""
    rows, count = keys.shape
    mask = size - 1
    key = keys.reshape(-1)
    rank = np.tile(np.arange(count, dtype=np.int64), rows)
    home = np.repeat(np.arange(0, rows * size, size, dtype=np.int64), count)
    start, perturb = key & mask, key.copy()
    step = np.zeros(len(key), dtype=np.int64)  # how far along the run of slots from `start`
    at = home + start
    holder = np.full(rows * size, count, dtype=np.int64)  # the rank of the key in each slot (count: free)
    np.minimum.at(holder, at, rank)
    moving = np.flatnonzero(holder[at] != rank)
    while len(moving):
        s, d = start[moving], step[moving]
        along = (s + _LINEAR_PROBES <= mask) & (d < _LINEAR_PROBES)
        d = np.where(along, d + 1, 0)
        jump = np.flatnonzero(~along)
        if len(jump):
            p = perturb[moving[jump]] >> _PERTURB_SHIFT
            perturb[moving[jump]] = p
            s[jump] = (s[jump] * 5 + 1 + p) & mask
        start[moving], step[moving] = s, d
        slot = home[moving] + s + d
        at[moving] = slot
        before = holder[slot]
        np.minimum.at(holder, slot, rank[moving])
        won = holder[slot] == rank[moving]
        ousted = won & (before < count)  # a later key held the slot: it moves on
        moving = np.concatenate([moving[~won], slot[ousted] // size * count + before[ousted]])
    table = np.full(rows * size, -1, dtype=np.int64)
    table[at] = key
    return table[table >= 0].reshape(rows, count)


def _ordered(rows: np.ndarray) -> np.ndarray:
    """`_set_order`, or for a few rows real sets, which are quicker than its numpy calls per column."""
    if len(rows) > _FEW_ROWS:
        return _set_order(rows)
    ordered = np.empty_like(rows)
    for r, picks in enumerate(rows.tolist()):
        chosen: set[int] = set()
        for node in picks:
            chosen.add(node)
        ordered[r] = list(chosen)
    return ordered


class _Attachment:
    """The replay's state: `seq` as networkx would have it (target slots of steps not settled: -1),
    and the word stream from `cursor` on."""

    def __init__(self, n: int, m: int, seed: int) -> None:
        self.n, self.m, self.steps = n, m, n - m - 1
        self.seq = np.empty(2 * m * (n - m), dtype=np.int32)
        rows = self.seq.reshape(n - m, 2 * m)
        rows[0, :m], rows[0, m:] = 0, np.arange(1, m + 1)
        rows[1:, :m] = -1
        rows[1:, m:] = np.arange(m + 1, n, dtype=np.int32)[:, None]
        self.targets = rows[1:, :m]
        self.bits = python_random_bits(seed)
        self.words = np.empty(0, dtype=np.uint32)
        self.base = 0  # the stream position of words[0]

    def take(self, cursor: int, count: int) -> np.ndarray:
        """The stream's words cursor..cursor + count - 1 (words before `cursor` are let go)."""
        stop = cursor + count - self.base
        if stop > len(self.words):
            kept = self.words[cursor - self.base :]
            more = max(count - len(kept), _DRAW)
            self.words = np.concatenate([kept, self.bits.random_raw(more).astype(np.uint32)])
            self.base = cursor
        start = cursor - self.base
        return self.words[start : start + count]

    def edges(self) -> np.ndarray:
        """Every step, by windows as long as twice the steps lately settled per step that picked a
        node twice; where that is short (early on: few nodes, heavy ones), one step at a time."""
        t, cursor = 0, 0
        seen, repeats = 0.0, 0.0  # steps settled and steps that drew a node twice, lately
        while t < self.steps:
            window = int(min(_MAX_WINDOW, 2 * (seen + _MIN_WINDOW) / (repeats + 1)))
            if window < _MIN_WINDOW:
                done, repeated = 0, 0
                while done < _MIN_WINDOW and t < self.steps:
                    cursor, again = self._step(t, cursor)
                    t, done, repeated = t + 1, done + 1, repeated + again
            else:
                done, cursor, repeated = self._window(t, cursor, window)
                t += done
                if repeated or not done:  # the step that cut the window, one word at a time
                    cursor, _ = self._step(t, cursor)
                    t, done = t + 1, done + 1
            seen, repeats = 0.75 * seen + done, 0.75 * repeats + repeated
        return _star_and_targets(self.n, self.m, self.targets)

    def _step(self, t: int, cursor: int) -> tuple[int, bool]:
        """Step t as networkx takes it, from word `cursor`; returns the word after its last draw and
        whether it drew a node twice."""
        m, seq = self.m, self.seq
        length = 2 * m * (t + 1)
        shift = 32 - length.bit_length()
        bound = length << shift
        chosen: set[int] = set()
        draws = 0
        while len(chosen) < m:
            for word in self.take(cursor, 4 * m + 8).tolist():
                cursor += 1
                if word < bound:
                    chosen.add(int(seq[word >> shift]))
                    draws += 1
                    if len(chosen) == m:
                        break
        self.targets[t] = list(chosen)
        return cursor, draws > m

    def _window(self, t0: int, cursor: int, window: int) -> tuple[int, int, int]:
        """Settles up to `window` steps from t0 (word `cursor`) as if none drew a node twice; stops
        before the first that does. Returns the steps settled, the word after them, and 1 if a step that
        draws a node twice stopped the window (that step is left to `_step`)."""
        m = self.m
        first = 2 * m * (t0 + 1)
        k = first.bit_length()
        shift = 32 - k
        last_of_k = -(-(1 << k) // (2 * m)) - 1  # the first step whose seq is 2**k long or more
        window = min(window, last_of_k - t0, self.steps - t0)
        if window <= 0:
            return 0, cursor, 0
        bound = (2 * m * np.arange(t0 + 1, t0 + window + 1, dtype=np.int64)) << shift
        count = int(window * m * (1 << k) / first * 1.02) + 8 * m + 64
        words = self.take(cursor, count).astype(np.int64)
        kept, exact = self._kept(words, bound)
        picked = np.flatnonzero(kept[:exact])
        steps = min(window, len(picked) // m)
        picked = picked[: steps * m]
        if not steps:
            return 0, cursor, 0
        positions = (words[picked] >> shift).reshape(steps, m)
        settled, repeated = self._settle(t0, positions)
        return settled, cursor + (int(picked[settled * m - 1]) + 1 if settled else 0), repeated

    def _kept(self, words: np.ndarray, bound: np.ndarray) -> tuple[np.ndarray, int]:
        """Which words `choice` keeps, and up to where that is exact. A word is kept iff it is below its
        step's bound, its step being set by the kept words before it (m to a step). From the first step's
        bound (too few kept), re-marking can only add words and stops at the truth; if it has not by
        the last round, the words up to the first one it changes are still exact."""
        last, m = len(bound) - 1, self.m
        kept = words < bound[0]
        for _ in range(_FIXED_POINT_ROUNDS):
            before = np.cumsum(kept) - kept
            again = words < bound[np.minimum(before // m, last)]
            if np.array_equal(again, kept):
                return kept, len(words)
            changed = int(np.argmax(again != kept))
            kept = again
        return kept, changed

    def _settle(self, t0: int, positions: np.ndarray) -> tuple[int, int]:
        """The picks at these seq positions (row r: step t0 + r), settled in rounds; writes each
        settled step's targets in set order into seq. Returns the steps before the first that picks a
        node twice and whether there is such a step; steps from it on are left unsettled."""
        steps, m = positions.shape
        seq = self.seq
        flat = positions.reshape(-1)
        values = seq[flat].astype(np.int64)
        open_ = np.flatnonzero(values < 0)  # picks of target slots of window steps not settled yet
        settled = np.zeros(steps, dtype=bool)
        limit = steps  # the first step that picks a node twice, once one is found
        while True:
            waiting = np.bincount(open_ // m, minlength=limit)[:limit]
            ready = np.flatnonzero((waiting == 0) & ~settled[:limit])
            if not len(ready):
                break
            rows = values.reshape(steps, m)[ready]
            ordered = np.sort(rows, axis=1)
            twice = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
            if twice.any():  # later steps' words are not what they were taken to be
                limit = int(ready[np.argmax(twice)])
                keep = ready < limit
                ready, rows = ready[keep], rows[keep]
                open_ = open_[open_ < limit * m]
            settled[ready] = True
            self.targets[t0 + ready] = _ordered(rows)
            if not len(open_):
                continue
            values[open_] = seq[flat[open_]]
            open_ = open_[values[open_] < 0]
        done = int(np.argmax(~settled[:limit])) if not settled[:limit].all() else limit
        self.targets[t0 + done : t0 + steps] = -1
        return done, int(done == limit < steps)
