"""The Barabási–Albert replay gives networkx's graph edge for edge, from the same seed, whichever way
it goes: the plain loop, the windows, real sets or the numpy emulation of their order."""

from __future__ import annotations

from unittest import mock

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents import preferential_attachment as pa
from agents.graph import BarabasiAlbert, SocialGraph, build_graph
from agents.preferential_attachment import barabasi_albert_edges


def networkx_edges(n: int, m: int, seed: int) -> np.ndarray:
    graph = nx.barabasi_albert_graph(n, m, seed=seed)
    return SocialGraph.from_edges(n, np.array(list(graph.edges()), dtype=np.int64).reshape(-1, 2)).edges


def assert_networkx_graph(n: int, m: int, seed: int, vectorised: bool | None = None) -> None:
    edges = barabasi_albert_edges(n, m, seed, _vectorised=vectorised)
    assert edges.shape == (m * (n - m), 2) and edges.dtype == np.int64
    assert np.array_equal(SocialGraph.from_edges(n, edges).edges, networkx_edges(n, m, seed))


@st.composite
def barabasi_albert_args(draw: st.DrawFn) -> tuple[int, int, int]:
    """m from 1 to n - 1, with extra weight on small m (the usual case), m past 4 (sets of more than 8
    slots) and m close to n (nearly every step repeats a node)."""
    n = draw(st.integers(2, 300))
    m = draw(st.integers(1, n - 1) | st.integers(1, min(6, n - 1)) | st.integers(max(1, n - 4), n - 1))
    return n, m, draw(st.integers(0, 2**63))


def real_set_order(values: list[int]) -> list[int]:
    """What networkx's `_random_subset` hands back: a set the values were added to one by one."""
    chosen: set[int] = set()
    for value in values:
        chosen.add(value)
    return list(chosen)


@settings(max_examples=200, deadline=None)
@given(args=barabasi_albert_args())
def test_barabasi_albert_is_networkx_draw_for_draw(args: tuple[int, int, int]) -> None:
    assert_networkx_graph(*args)


@settings(max_examples=200, deadline=None)
@given(args=barabasi_albert_args(), numpy_order=st.booleans())
def test_the_window_replay_is_networkx_on_small_graphs_too(args: tuple[int, int, int], numpy_order: bool) -> None:
    """Small graphs take the loop when left to choose. Forced into windows here, with windows kept
    short of nothing (most of these steps repeat a node) and, half the time, every step's targets put
    in order by the numpy emulation of CPython's set rather than by real sets."""
    with mock.patch.object(pa, "_MIN_WINDOW", 1), mock.patch.object(pa, "_FEW_ROWS", -1 if numpy_order else 64):
        assert_networkx_graph(*args, vectorised=True)


@st.composite
def rows_of_distinct_values(draw: st.DrawFn) -> np.ndarray:
    """Rows of distinct non-negative ints, crowded into few slots or spread over many bits."""
    m = draw(st.integers(1, 90) | st.sampled_from([4, 5, 18, 19, 76, 77, 307]))
    top = draw(st.sampled_from([m, 2 * m, 8 * m, 2**31 - 1]))
    rows = draw(st.integers(1, 6))
    if top < 4096:
        return np.array([draw(st.permutations(range(top + 1)))[:m] for _ in range(rows)], dtype=np.int64)
    distinct = st.lists(st.integers(0, top), min_size=m, max_size=m, unique=True)
    return np.array([draw(distinct) for _ in range(rows)], dtype=np.int64)


@settings(max_examples=150, deadline=None)
@given(values=rows_of_distinct_values())
def test_set_order_is_cpythons(values: np.ndarray) -> None:
    expected = np.array([real_set_order(row) for row in values.tolist()], dtype=np.int64)
    assert np.array_equal(pa._set_order(values), expected)
    assert np.array_equal(pa._ordered(values), expected)


def test_set_order_past_fifty_thousand_entries() -> None:
    """CPython grows a set of more than 50,000 entries to twice, not four times, its size: that first
    happens at 78,643 entries."""
    values = np.random.default_rng(5).permutation(1 << 20)[: 78_643 + 7]
    assert pa._set_order(values[None, :])[0].tolist() == real_set_order(values.tolist())


@pytest.mark.parametrize(
    ("n", "m", "seed"),
    [
        (4000, 1, 11),  # len(seq) = 2(t + 1) is a power of two at every bit-length change
        (3000, 2, 2**63),
        (3000, 3, 12345),
        (2500, 4, 3),  # the most a set of 8 slots holds
        (1500, 5, 4),  # sets grow to 32 slots on the last add
        (900, 19, 5),  # ... to 128 slots
        (400, 77, 6),  # ... to 512 slots
        (300, 250, 7),  # nearly every pick repeats a node
    ],
)
def test_fixed_cases_through_the_windows(n: int, m: int, seed: int) -> None:
    assert_networkx_graph(n, m, seed, vectorised=True)
    assert_networkx_graph(n, m, seed, vectorised=False)


def test_the_windows_meet_repeats_and_words_kept_only_by_later_steps() -> None:
    """The cases the windows must get right do come up: windows cut by a step that picks a node twice,
    and words a window's first step would drop but the step they fall in keeps (so that keeping them
    took more than one marking), as well as windows that settle hundreds of steps."""
    seen = {"settled": 0, "cut": 0, "moved": 0}
    window, kept = pa._Attachment._window, pa._Attachment._kept

    def counting_window(self: pa._Attachment, *args: int) -> tuple[int, int, int]:
        settled, cursor, repeated = window(self, *args)
        seen["settled"] = max(seen["settled"], settled)
        seen["cut"] += repeated
        return settled, cursor, repeated

    def counting_kept(self: pa._Attachment, words: np.ndarray, bound: np.ndarray) -> tuple[np.ndarray, int]:
        marked, exact = kept(self, words, bound)
        seen["moved"] += bool((marked[:exact] != (words[:exact] < bound[0])).any())
        return marked, exact

    with (
        mock.patch.object(pa._Attachment, "_window", counting_window),
        mock.patch.object(pa._Attachment, "_kept", counting_kept),
    ):
        assert_networkx_graph(30_000, 3, 99, vectorised=True)
    assert seen["settled"] >= 1000 and seen["cut"] >= 10 and seen["moved"] >= 10


@pytest.mark.parametrize("rounds", [1, 2])
def test_markings_that_do_not_settle_cut_the_window(rounds: int) -> None:
    """With too few re-markings to reach the truth, a window keeps only the words up to the first one
    the last re-marking changed, and is still exact."""
    with mock.patch.object(pa, "_FIXED_POINT_ROUNDS", rounds):
        assert_networkx_graph(20_000, 3, 8, vectorised=True)
        assert_networkx_graph(5_000, 6, 9, vectorised=True)


def test_a_large_graph_is_networkx() -> None:
    assert_networkx_graph(100_000, 3, 2026)


def test_build_graph_gives_networkx_graph() -> None:
    graph = build_graph(BarabasiAlbert(m=3), 500, 17)
    assert np.array_equal(graph.edges, networkx_edges(500, 3, 17))


@pytest.mark.parametrize(("n", "m"), [(5, 0), (5, 5), (5, 7), (1, 1)])
def test_m_outside_one_to_n_is_refused(n: int, m: int) -> None:
    with pytest.raises(ValueError, match="1 <= m < n"):
        barabasi_albert_edges(n, m, 0)
