"""One root seed, many independent streams: every random number in a run is derived from here.

Streams are `SeedSequence(root, spawn_key=(stream, *keys))`, with stable integer ids for named
streams, so a stream's numbers depend only on (root seed, name, keys), never on how many shards ran
or in which order things were created.
"""

from __future__ import annotations

import functools
import zlib

import numpy as np

_MASK64 = (1 << 64) - 1
_MASK32 = (1 << 32) - 1


def stream_id(name: str) -> int:
    """Stable id of a named stream (crc32 of its name; Python's hash() is salted per process)."""
    return zlib.crc32(name.encode())


def seed_sequence(root: int, name: str, *keys: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(root, spawn_key=(stream_id(name), *(int(k) for k in keys)))


def rng(root: int, name: str, *keys: int) -> np.random.Generator:
    """A Generator for one named purpose (e.g. rng(seed, "graph"), rng(seed, "resolve", step))."""
    return np.random.default_rng(seed_sequence(root, name, *keys))


class LazyGenerator:
    """`rng(root, name, *keys)`, created on first use: most steps of most scenarios never draw from their
    plan or resolve stream, and building a SeedSequence costs tens of microseconds a step. Draws are
    those of the Generator itself (same stream, same numbers)."""

    __slots__ = ("_args", "_rng")

    def __init__(self, root: int, name: str, *keys: int) -> None:
        self._args = (root, name, *keys)
        self._rng: np.random.Generator | None = None

    def __getattr__(self, attr: str):  # only called for what the slots do not hold: the Generator's API
        if self._rng is None:
            self._rng = rng(*self._args)
        return getattr(self._rng, attr)


def lazy_rng(root: int, name: str, *keys: int) -> np.random.Generator:
    """`rng(root, name, *keys)`, built when it is first drawn from (see LazyGenerator)."""
    return LazyGenerator(root, name, *keys)  # type: ignore[return-value]


def int_seed(root: int, name: str, *keys: int, bits: int = 32) -> int:
    """A plain integer seed for libraries that want one (networkx generators)."""
    state = seed_sequence(root, name, *keys).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 32 | int(state[1])) & ((1 << bits) - 1))


def decision_seeds(root: int, step: int, n: int) -> np.ndarray:
    """n uint64 seeds for the decisions of one step, in the step's decision order.

    Drawn from a counter-based Philox keyed by (root, step): fast for millions of decisions, and
    the i-th seed is the same however the decisions are later split across shards. The key is
    `seed_sequence(root, "decisions", step).generate_state(2, uint64)`, worked out for a block of
    steps at once (see `_sequence_states`): building a SeedSequence and a Philox every step cost more
    than a small step's whole decision."""
    key = _decision_key(root, step)
    bits = _PHILOX.bits
    with _PHILOX.lock:
        bits.state = {"bit_generator": "Philox", "state": {"counter": np.zeros(4, np.uint64), "key": key},
                      "buffer": np.zeros(4, np.uint64), "buffer_pos": 4, "has_uint32": 0, "uinteger": 0}  # fmt: skip
        return bits.random_raw(n)


class _Philox:
    """One Philox whose state is set per step (a fresh one would seed itself from the OS first)."""

    def __init__(self) -> None:
        import threading

        self.bits = np.random.Philox(key=np.zeros(2, np.uint64))
        self.lock = threading.Lock()


_PHILOX = _Philox()
_BLOCK = 256  # steps whose keys are derived together


def _decision_key(root: int, step: int) -> np.ndarray:
    if not (0 <= step < 2**32 and root >= 0):
        return seed_sequence(root, "decisions", step).generate_state(2, dtype=np.uint64)
    return _decision_keys(root, step // _BLOCK)[step % _BLOCK]


@functools.lru_cache(maxsize=16)
def _decision_keys(root: int, block: int) -> np.ndarray:
    steps = np.arange(block * _BLOCK, (block + 1) * _BLOCK, dtype=np.uint64)
    return _sequence_states(root, stream_id("decisions"), steps)


# numpy's SeedSequence (O'Neill's seed_seq alternative), vectorised over the last word of the spawn key
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R, _POOL = 0xCA01F9DD, 0x4973F715, 4


def _words(value: int) -> list[int]:
    """An int as SeedSequence reads it: 32-bit words, least significant first ([0] for 0)."""
    words = [value & _MASK32] if value == 0 else []
    while value > 0:
        words.append(value & _MASK32)
        value >>= 32
    return words


def _sequence_states(root: int, stream: int, last: np.ndarray) -> np.ndarray:
    """`SeedSequence(root, spawn_key=(stream, k)).generate_state(2, uint64)` for every k in `last`
    (each < 2**32), as a (len(last), 2) array: the same hashing, on uint32 arrays (which wrap)."""
    u32 = np.uint32
    run = _words(root)
    run += [0] * max(0, _POOL - len(run))  # padded, as a spawned sequence's entropy is
    fixed = [*run, *_words(stream)]
    entropy = [np.full(len(last), w, u32) for w in fixed] + [last.astype(u32)]
    hash_const = [_INIT_A]

    def hashmix(value: np.ndarray) -> np.ndarray:
        value = value ^ u32(hash_const[0])
        hash_const[0] = (hash_const[0] * _MULT_A) & _MASK32
        value = value * u32(hash_const[0])
        return value ^ (value >> u32(16))

    def mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        result = u32(_MIX_L) * x - u32(_MIX_R) * y
        return result ^ (result >> u32(16))

    with np.errstate(over="ignore"):
        pool = [hashmix(entropy[i]) for i in range(_POOL)]
        for i_src in range(_POOL):
            for i_dst in range(_POOL):
                if i_src != i_dst:
                    pool[i_dst] = mix(pool[i_dst], hashmix(pool[i_src]))
        for i_src in range(_POOL, len(entropy)):
            for i_dst in range(_POOL):
                pool[i_dst] = mix(pool[i_dst], hashmix(entropy[i_src]))
        state, const = [], _INIT_B
        for i in range(4):  # two uint64 words = four uint32 words, drawn cyclically from the pool
            value = pool[i % _POOL] ^ u32(const)
            const = (const * _MULT_B) & _MASK32
            value = value * u32(const)
            state.append(value ^ (value >> u32(16)))
    low = np.stack(state, axis=1).astype(np.uint64)
    return low[:, 0::2] | (low[:, 1::2] << np.uint64(32))
