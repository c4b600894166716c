"""One root seed, many independent streams: every random number in a run is derived from here.

Streams are `SeedSequence(root, spawn_key=(stream, *keys))`, with stable integer ids for named
streams, so a stream's numbers depend only on (root seed, name, keys), never on how many shards ran
or in which order things were created.
"""

from __future__ import annotations

import zlib

import numpy as np

_MASK64 = (1 << 64) - 1


def stream_id(name: str) -> int:
    """Stable id of a named stream (crc32 of its name; Python's hash() is salted per process)."""
    return zlib.crc32(name.encode())


def seed_sequence(root: int, name: str, *keys: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(root, spawn_key=(stream_id(name), *(int(k) for k in keys)))


def rng(root: int, name: str, *keys: int) -> np.random.Generator:
    """A Generator for one named purpose (e.g. rng(seed, "graph"), rng(seed, "resolve", step))."""
    return np.random.default_rng(seed_sequence(root, name, *keys))


def int_seed(root: int, name: str, *keys: int, bits: int = 32) -> int:
    """A plain integer seed for libraries that want one (networkx generators)."""
    state = seed_sequence(root, name, *keys).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 32 | int(state[1])) & ((1 << bits) - 1))


def decision_seeds(root: int, step: int, n: int) -> np.ndarray:
    """n uint64 seeds for the decisions of one step, in the step's decision order.

    Drawn from a counter-based Philox keyed by (root, step): fast for millions of decisions, and
    the i-th seed is the same however the decisions are later split across shards."""
    key = seed_sequence(root, "decisions", step).generate_state(2, dtype=np.uint64)
    return np.random.Generator(np.random.Philox(key=key)).integers(0, _MASK64, size=n, dtype=np.uint64, endpoint=True)
