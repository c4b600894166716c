"""The generators give networkx's graphs edge for edge, from the same seed."""

from __future__ import annotations

import networkx as nx
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.generators import watts_strogatz_edges
from agents.graph import SocialGraph


def networkx_edges(graph: nx.Graph) -> np.ndarray:
    return np.array(list(graph.edges()), dtype=np.int64).reshape(-1, 2)


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


def test_a_large_rewired_ring_is_networkx_too() -> None:
    ours = SocialGraph.from_edges(20_000, watts_strogatz_edges(20_000, 6, 0.1, 7))
    theirs = SocialGraph.from_edges(20_000, networkx_edges(nx.watts_strogatz_graph(20_000, 6, 0.1, seed=7)))
    assert len(ours.edges) == 60_000 and np.array_equal(ours.edges, theirs.edges)
