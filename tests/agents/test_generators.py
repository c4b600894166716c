"""The generators give networkx's graphs edge for edge, from the same seed."""

from __future__ import annotations

import math
import random

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents import generators
from agents.generators import erdos_renyi_edges, python_random_bits, python_randoms, watts_strogatz_edges
from agents.graph import SocialGraph


def networkx_edges(graph: nx.Graph) -> np.ndarray:
    return np.array(list(graph.edges()), dtype=np.int64).reshape(-1, 2)


def assert_networkx_graph(n: int, k: int, p: float, seed: int, vectorised: bool | None = None) -> None:
    ours = SocialGraph.from_edges(n, watts_strogatz_edges(n, k, p, seed, _vectorised=vectorised))
    theirs = SocialGraph.from_edges(n, networkx_edges(nx.watts_strogatz_graph(n, k, p, seed=seed)))
    assert np.array_equal(ours.edges, theirs.edges)
    assert np.array_equal(ours.indptr, theirs.indptr) and np.array_equal(ours.indices, theirs.indices)


@st.composite
def watts_strogatz_args(draw: st.DrawFn) -> tuple[int, int, float, int]:
    n = draw(st.integers(3, 120))
    k = draw(st.integers(1, n - 1))
    p = draw(st.sampled_from([0.0, 0.05, 0.3, 0.9, 1.0]) | st.floats(0, 1))
    return n, k, p, draw(st.integers(0, 2**63))


@settings(max_examples=300, deadline=None)
@given(args=watts_strogatz_args())
def test_watts_strogatz_is_networkx_draw_for_draw(args: tuple[int, int, float, int]) -> None:
    """Small n and k near n reach the rule that keeps the edge of a node linked to everyone."""
    n, k, p, seed = args
    ours = SocialGraph.from_edges(n, watts_strogatz_edges(n, k, p, seed))
    theirs = SocialGraph.from_edges(n, networkx_edges(nx.watts_strogatz_graph(n, k, p, seed=seed)))
    assert np.array_equal(ours.edges, theirs.edges)
    assert np.array_equal(ours.indptr, theirs.indptr) and np.array_equal(ours.indices, theirs.indices)


@settings(max_examples=300, deadline=None)
@given(args=watts_strogatz_args())
def test_the_array_replay_is_networkx_on_small_and_dense_graphs_too(args: tuple[int, int, float, int]) -> None:
    """The loop takes these graphs when left to choose; the array replay must give them all the same,
    through draws that clash at nearly every rewiring and nodes linked to everyone."""
    assert_networkx_graph(*args, vectorised=True)


@pytest.mark.parametrize(
    ("n", "k", "p", "seed"),
    [
        (60, 40, 0.95, 1),  # most first draws clash
        (31, 30, 1.0, 2),  # a complete lattice: every rewiring keeps its edge
        (90, 70, 0.6, 3),  # k // 2 past the rounds looked up one by one: earlier rounds' edges hashed
        (400, 24, 1.0, 4),  # clashes with edges added in earlier rounds
        (4095, 6, 1.0, 5),  # n = 2**12 - 1: nearly every choice word is kept, walks stay apart
        (4096, 6, 1.0, 6),  # n = 2**12: half the choice words are dropped
        (3000, 4, 1e-3, 7),  # few rewirings, far apart
    ],
)
def test_the_array_replay_through_clashes(n: int, k: int, p: float, seed: int) -> None:
    assert_networkx_graph(n, k, p, seed, vectorised=True)


def test_the_array_replay_draws_more_words_when_they_run_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generators._Rewiring, "words_needed", lambda self: 100)
    for n, k, p, seed in [(2000, 10, 0.5, 1), (150, 100, 0.9, 2), (1000, 4, 1.0, 3)]:
        assert_networkx_graph(n, k, p, seed, vectorised=True)


def test_a_large_rewired_ring_is_networkx_too() -> None:
    ours = SocialGraph.from_edges(20_000, watts_strogatz_edges(20_000, 6, 0.1, 7))
    theirs = SocialGraph.from_edges(20_000, networkx_edges(nx.watts_strogatz_graph(20_000, 6, 0.1, seed=7)))
    assert len(ours.edges) == 60_000 and np.array_equal(ours.edges, theirs.edges)


def test_a_larger_ring_rewired_through_clashes_is_networkx() -> None:
    assert_networkx_graph(50_000, 10, 0.3, 8)


@st.composite
def erdos_renyi_args(draw: st.DrawFn) -> tuple[int, float, int]:
    n = draw(st.integers(0, 400))
    p = draw(st.sampled_from([0.0, 1.0, 0.5, 1e-4, 0.999]) | st.floats(0, 1) | st.floats(0, 0.02))
    return n, p, draw(st.integers(0, 2**63))


@settings(max_examples=300, deadline=None)
@given(args=erdos_renyi_args())
def test_erdos_renyi_is_networkx_draw_for_draw(args: tuple[int, float, int]) -> None:
    n, p, seed = args
    ours = SocialGraph.from_edges(n, erdos_renyi_edges(n, p, seed))
    if 0 < p < 1 and math.log(1.0 - p) == 0.0:  # networkx divides by zero; no pair can be drawn
        assert len(ours.edges) == 0
        return
    theirs = SocialGraph.from_edges(n, networkx_edges(nx.fast_gnp_random_graph(n, p, seed=seed)))
    assert np.array_equal(ours.edges, theirs.edges)


def test_a_large_sparse_erdos_renyi_graph_is_networkx_too() -> None:
    """Half a million edges: skips that the float root maps to the first pair of a row, and many draws."""
    ours = SocialGraph.from_edges(100_000, erdos_renyi_edges(100_000, 1e-4, 11))
    theirs = SocialGraph.from_edges(100_000, networkx_edges(nx.fast_gnp_random_graph(100_000, 1e-4, seed=11)))
    assert len(ours.edges) > 450_000 and np.array_equal(ours.edges, theirs.edges)


def test_python_randoms_are_random_random() -> None:
    expected = random.Random(2**40 + 3)
    assert python_randoms(python_random_bits(2**40 + 3), 1000).tolist() == [expected.random() for _ in range(1000)]
