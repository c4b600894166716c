"""Graph builders are seeded and compact; edge lists fail on the line that is wrong."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.graph import (
    BarabasiAlbert,
    Complete,
    EdgeList,
    EdgeListError,
    ErdosRenyi,
    SocialGraph,
    StochasticBlock,
    WattsStrogatz,
    build_graph,
    load_edge_list,
)

IDS = [f"p{i}" for i in range(6)]


@pytest.mark.parametrize(
    "config", [ErdosRenyi(p=0.2), WattsStrogatz(k=4, p=0.3), BarabasiAlbert(m=2), StochasticBlock(blocks=3)]
)
def test_random_graphs_depend_only_on_the_seed(config):
    a, b, c = (build_graph(config, 60, seed) for seed in (1, 1, 2))
    assert np.array_equal(a.edges, b.edges) and not np.array_equal(a.edges, c.edges)
    assert (a.edges[:, 0] < a.edges[:, 1]).all()


def test_csr_matches_edges():
    g = build_graph(WattsStrogatz(k=4, p=0.2), 30, 3)
    assert g.indptr[-1] == 2 * len(g.edges)
    for u, v in g.edges[:20]:
        assert v in g.neighbours(u) and u in g.neighbours(v)
    assert build_graph(Complete(), 5, 0).is_complete and g.degree.sum() == 2 * len(g.edges)


def test_from_edges_deduplicates_and_rejects_self_loops():
    g = SocialGraph.from_edges(3, np.array([[0, 1], [1, 0], [2, 1]]))
    assert g.edges.tolist() == [[0, 1], [1, 2]]
    with pytest.raises(ValueError, match="self-loop"):
        SocialGraph.from_edges(3, np.array([[1, 1]]))


@st.composite
def pairs_with_weights(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]], dict[tuple[int, int], float]]:
    """Pairs in any order and direction, repeated at will; one weight per undirected edge."""
    n = draw(st.integers(1, 40))
    node = st.integers(0, n - 1)
    pairs = draw(st.lists(st.tuples(node, node).filter(lambda e: e[0] != e[1]), max_size=150))
    edges = sorted({(min(e), max(e)) for e in pairs})
    return n, pairs, {e: draw(st.floats(-5, 5, allow_nan=False)) for e in edges}


@settings(max_examples=300, deadline=None)
@given(args=pairs_with_weights())
def test_csr_rows_list_each_nodes_neighbours_in_order_with_their_weights(args):
    n, pairs, weight = args
    given_weights = np.array([weight[(min(e), max(e))] for e in pairs]) if pairs else None
    g = SocialGraph.from_edges(n, np.array(pairs, dtype=np.int64).reshape(-1, 2), given_weights)
    assert g.edges.tolist() == [list(e) for e in weight]
    for node in range(n):
        expected = sorted({b for a, b in weight if a == node} | {a for a, b in weight if b == node})
        row = slice(g.indptr[node], g.indptr[node + 1])
        assert g.indices[row].tolist() == expected
        if pairs:
            assert g.arc_weights[row].tolist() == [weight[(min(node, m), max(node, m))] for m in expected]
    assert g.weights is None if not pairs else g.weights.tolist() == list(weight.values())


def test_edge_list_csv_with_header_and_comments(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("source,target\n# a comment\np0,p1\np1,p2\n\np0,p1\n")
    g = build_graph(EdgeList(path=str(path)), 6, 0, IDS)
    assert g.edges.tolist() == [[0, 1], [1, 2]] and g.weights is None


def test_edge_list_whitespace(tmp_path):
    path = tmp_path / "e.txt"
    path.write_text("p3 p4\np4\tp5\n")
    edges, weights = load_edge_list(path, IDS)
    assert edges.tolist() == [[3, 4], [4, 5]] and weights is None


def test_edge_weights_are_kept_per_edge_and_per_csr_entry(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("source,target,weight\np0,p1,0.5\np2,p1,2\np1,p0,0.5\n")
    g = build_graph(EdgeList(path=str(path)), 6, 0, IDS)
    assert g.edges.tolist() == [[0, 1], [1, 2]] and g.weights.tolist() == [0.5, 2.0]
    assert g.neighbours(1).tolist() == [0, 2] and g.arc_weights[g.indptr[1] : g.indptr[2]].tolist() == [0.5, 2.0]
    path.write_text("p0,p1,0.5\np1,p0,0.7\n")
    with pytest.raises(EdgeListError, match="appears twice with different weights"):
        build_graph(EdgeList(path=str(path)), 6, 0, IDS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p0,p1\np1,p9\n", "line 2: unknown node id 'p9'"),
        ("p0 p1\np2 p2\n", "line 2: self-loop on node 'p2'"),
        ("p0 p1\np2\n", "line 2: expected two node ids"),
        ("# nothing\n", "no edges"),
        ("p0,p1,0.5\np1,p2\n", "line 2: no weight, though other lines have one"),
        ("p0,p1,heavy\n", "line 1: weight 'heavy' is not a finite number"),
    ],
)
def test_edge_list_errors_name_the_line(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(EdgeListError, match=message):
        load_edge_list(path, IDS)


def test_a_binary_file_is_named_as_not_text(tmp_path):
    path = tmp_path / "edges.bin"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(EdgeListError, match=r"edge list .*edges\.bin: not a text file"):
        load_edge_list(path, IDS)


def test_watts_strogatz_needs_an_even_k():
    with pytest.raises(ValueError, match="must be even"):
        WattsStrogatz(k=5)
