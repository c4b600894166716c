"""Streams depend on (root seed, name, keys) only: not on order of creation or on sharding."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import seeding


def test_named_streams_are_stable_and_distinct():
    a = seeding.rng(1, "graph").random(4)
    assert np.array_equal(a, seeding.rng(1, "graph").random(4))
    assert not np.array_equal(a, seeding.rng(1, "personas").random(4))
    assert not np.array_equal(a, seeding.rng(2, "graph").random(4))
    assert seeding.int_seed(1, "graph") == seeding.int_seed(1, "graph") < 2**32


def test_decision_seeds_prefix_stable_and_per_step():
    whole = seeding.decision_seeds(3, 5, 1000)
    assert np.array_equal(whole[:10], seeding.decision_seeds(3, 5, 10))  # a step's i-th seed is fixed
    assert not np.array_equal(whole, seeding.decision_seeds(3, 6, 1000))
    assert len(np.unique(whole)) == 1000


@given(
    root=st.one_of(st.integers(0, 2**32), st.integers(0, 2**130)),
    step=st.one_of(st.integers(0, 600), st.integers(0, 2**32 - 1), st.integers(2**32, 2**40)),
    n=st.integers(0, 40),
)
@settings(max_examples=300, deadline=None)
def test_decision_seeds_are_numpys_seed_sequence_and_philox(root, step, n):
    """The block-wise derivation of a step's key equals numpy's SeedSequence + Philox, draw for draw."""
    key = seeding.seed_sequence(root, "decisions", step).generate_state(2, dtype=np.uint64)
    expected = np.random.Generator(np.random.Philox(key=key)).integers(
        0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True
    )
    assert np.array_equal(seeding.decision_seeds(root, step, n), expected)


def test_a_lazy_generator_draws_the_named_stream():
    lazy, eager = seeding.lazy_rng(4, "resolve", 9), seeding.rng(4, "resolve", 9)
    assert np.array_equal(lazy.random(5), eager.random(5))
    assert np.array_equal(lazy.integers(0, 10, 3), eager.integers(0, 10, 3))  # one stream, continued
