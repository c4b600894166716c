"""The stochastic block model gives networkx's graph edge for edge, from the same seed."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents import block_model, generators
from agents.block_model import block_model_edges
from agents.graph import SocialGraph


def networkx_graph(sizes: list[int], p_in: float, p_out: float, seed: int) -> SocialGraph:
    probs = [[p_in if i == j else p_out for j in range(len(sizes))] for i in range(len(sizes))]
    graph = nx.stochastic_block_model(sizes, probs, seed=seed)
    edges = np.array(list(graph.edges()), dtype=np.int64).reshape(-1, 2)
    return SocialGraph.from_edges(sum(sizes), edges)


def assert_networkx_graph(sizes: list[int], p_in: float, p_out: float, seed: int) -> SocialGraph:
    ours = SocialGraph.from_edges(sum(sizes), block_model_edges(sizes, p_in, p_out, seed))
    theirs = networkx_graph(sizes, p_in, p_out, seed)
    assert np.array_equal(ours.edges, theirs.edges)
    assert np.array_equal(ours.indptr, theirs.indptr) and np.array_equal(ours.indices, theirs.indices)
    return ours


probabilities = st.sampled_from([0.0, 1.0, 0.5, 0.01, 0.999]) | st.floats(0, 1)


@st.composite
def block_model_args(draw: st.DrawFn) -> tuple[list[int], float, float, int]:
    sizes = draw(st.lists(st.integers(1, 90), min_size=1, max_size=6))
    return sizes, draw(probabilities), draw(probabilities), draw(st.integers(0, 2**63))


@settings(max_examples=300, deadline=None)
@given(args=block_model_args())
def test_the_block_model_is_networkx_draw_for_draw(args: tuple[list[int], float, float, int]) -> None:
    """Blocks of any sizes and offsets (a set of the ids some ranges hold iterates out of numerical
    order), probabilities 0 and 1 (which change how many draws networkx takes), and several blocks,
    so that each block pair must leave the stream exactly where networkx leaves it."""
    sizes, p_in, p_out, seed = args
    tiny_in, tiny_out = below_resolution(p_in), below_resolution(p_out) and len(sizes) > 1
    if tiny_in or tiny_out:  # networkx divides by zero; such a probability gives no edge
        ours = SocialGraph.from_edges(sum(sizes), block_model_edges(sizes, p_in, p_out, seed))
        blocks = np.repeat(np.arange(len(sizes)), sizes)
        inside = blocks[ours.edges[:, 0]] == blocks[ours.edges[:, 1]]
        assert not (tiny_in and inside.any()) and not (tiny_out and (~inside).any())
        return
    assert_networkx_graph(sizes, p_in, p_out, seed)


def below_resolution(p: float) -> bool:
    return 0 < p < 1 and math.log(1 - p) == 0.0


def test_blocks_that_iterate_out_of_numerical_order() -> None:
    """set(range(300, 600)) iterates from 512: pairs are drawn in that order, not by node number."""
    assert list(block_model._set_order(300, 600)[:2]) == [512, 513]
    assert_networkx_graph([300, 300, 37], 0.3, 0.05, 3)


def test_draws_come_a_chunk_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks end mid-row inside a block and mid-way through the skips across blocks."""
    monkeypatch.setattr(block_model, "_DRAWS", 97)
    monkeypatch.setattr(generators, "_CHUNK", 97)
    assert_networkx_graph([150, 120, 80], 0.2, 0.03, 4)
    assert_networkx_graph([40, 300], 0.9, 0.4, 5)


def test_a_larger_block_model_is_networkx_too() -> None:
    ours = assert_networkx_graph([1_000, 1_000, 1_001], 0.01, 0.0005, 6)
    assert ours.n_edges > 15_000
