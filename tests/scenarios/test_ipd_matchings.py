"""Matchings of the IPD's `matches_per_agent`: a complete graph too large to list is matched without its pairs."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.graph import complete_edges
from scenarios.ipd import complete_matchings, greedy_matchings


@given(n=st.integers(2, 400), k=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=150, deadline=None)
def test_complete_matchings_never_reuse_a_pair_and_give_each_agent_at_most_k(n, k, seed):
    pairs = complete_matchings(n, k, np.random.default_rng(seed))
    assert (pairs[:, 0] < pairs[:, 1]).all() and pairs.min(initial=0) >= 0 and pairs.max(initial=0) < n
    keys = pairs[:, 0] * n + pairs[:, 1]
    assert len(np.unique(keys)) == len(keys)  # no pair plays twice
    matches = np.bincount(pairs.reshape(-1), minlength=n)
    assert matches.max(initial=0) <= k


def test_complete_matchings_of_a_large_even_population_give_everyone_k_matches():
    n, k = 20_000, 3
    matches = np.bincount(complete_matchings(n, k, np.random.default_rng(1)).reshape(-1), minlength=n)
    assert (matches == k).all()


@given(n=st.integers(2, 60), k=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=100, deadline=None)
def test_greedy_matchings_are_matchings_of_unused_edges(n, k, seed):
    pairs = greedy_matchings(complete_edges(n), n, k, np.random.default_rng(seed))
    assert len(np.unique(pairs, axis=0)) == len(pairs)
    assert np.bincount(pairs.reshape(-1), minlength=n).max(initial=0) <= k
