"""Bounded-confidence dynamics as pure functions: hand-computed updates, invariants, and the known
cluster counts of Deffuant et al. (2000) and Hegselmann & Krause (2002) (N = 1000, uniform initial
opinions, complete graph, clusters ≥ 1%; reference simulations)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.graph import SocialGraph
from scenarios import bounded_confidence as bc

N = 1000
SEEDS = range(5)


def complete(n: int) -> SocialGraph:
    return SocialGraph.from_edges(n, np.stack(np.triu_indices(n, 1), axis=1))


def ring(n: int, k: int = 1) -> SocialGraph:
    """Each node linked to its k nearest neighbours on each side."""
    i = np.arange(n)
    return SocialGraph.from_edges(n, np.concatenate([np.stack([i, (i + s) % n], axis=1) for s in range(1, k + 1)]))


@pytest.fixture(scope="module")
def k1000() -> SocialGraph:
    return complete(N)


def run_to_rest(model: str, eps: float, seed: int, graph: SocialGraph, limit: int = 5000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.random((graph.n, 1))
    e = np.full(graph.n, eps)
    for _ in range(limit):
        if model == "deffuant":
            bc.deffuant_step(x, graph, e, 0.5, rng, matchings=10)
        else:
            x = bc.hk_step(x, graph, e)
        if bc.interacting_spread(x, graph, e, strict=model == "deffuant") < 1e-3:
            return x[:, 0]
    raise AssertionError(f"{model} eps={eps} seed={seed} did not settle in {limit} steps")


# --- matchings ------------------------------------------------------------------------------------


@pytest.mark.parametrize("graph", [complete(11), ring(50, 2)], ids=["complete", "ring"])
def test_matching_pairs_are_disjoint_edges(graph: SocialGraph) -> None:
    rng = np.random.default_rng(3)
    edges = {tuple(e) for e in graph.edges.tolist()}
    for _ in range(20):
        u, v = bc.random_matching(graph, rng)
        ends = np.concatenate([u, v])
        assert len(np.unique(ends)) == len(ends), "an agent met two partners in one matching"
        assert all((min(a, b), max(a, b)) in edges for a, b in zip(u.tolist(), v.tolist(), strict=True))
        assert len(u) > 0


def test_complete_matching_pairs_everyone_but_one_when_odd() -> None:
    u, _ = bc.random_matching(complete(11), np.random.default_rng(0))
    assert len(u) == 5


def test_sparse_matching_covers_every_edge_over_time() -> None:
    graph = ring(12)
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(200):
        u, v = bc.random_matching(graph, rng)
        seen |= {(min(a, b), max(a, b)) for a, b in zip(u.tolist(), v.tolist(), strict=True)}
    assert seen == {tuple(e) for e in graph.edges.tolist()}


# --- Deffuant -------------------------------------------------------------------------------------


def test_deffuant_pair_rule_by_hand() -> None:
    x = np.array([[0.2, 0.0], [0.3, 0.9], [0.5, 0.5], [0.6, 0.55]])
    eps = np.array([0.2, 0.2, 0.2, 0.04])
    up = bc.deffuant_pairs(x, np.array([0, 2]), np.array([1, 3]), eps, mu=0.3)
    # pair (0, 1): dim 0 distance 0.1 < 0.2 -> both move 0.3 of the way; dim 1 distance 0.9 -> nothing
    assert x[0] == pytest.approx([0.23, 0.0]) and x[1] == pytest.approx([0.27, 0.9])
    # pair (2, 3): 2 (eps 0.2) hears 3 on both dimensions; 3 (eps 0.04) hears 2 on neither (0.1, 0.05 apart)
    assert x[2] == pytest.approx([0.53, 0.515])
    assert x[3] == pytest.approx([0.6, 0.55])
    assert up.u_heard_v.tolist() == [[True, False], [True, True]]
    assert up.v_heard_u.tolist() == [[True, False], [False, False]]


def test_deffuant_stubborn_agent_keeps_position_but_pulls() -> None:
    x = np.array([[0.4], [0.5]])
    bc.deffuant_pairs(x, np.array([0]), np.array([1]), np.full(2, 0.5), 0.5, movable=np.array([False, True]))
    assert x[:, 0].tolist() == [0.4, 0.45]


def test_deffuant_conserves_the_mean_with_a_common_bound() -> None:
    graph = ring(200, 3)
    rng = np.random.default_rng(7)
    x = rng.random((200, 3))
    total = x.sum(axis=0)
    bc.deffuant_step(x, graph, np.full(200, 0.3), 0.4, rng, matchings=50)
    assert x.sum(axis=0) == pytest.approx(total)
    assert ((x >= 0) & (x <= 1)).all()


# --- Hegselmann-Krause ----------------------------------------------------------------------------


def test_hk_sparse_by_hand() -> None:
    # path 0 - 1 - 2 - 3, and 4 on its own
    graph = SocialGraph.from_edges(5, np.array([[0, 1], [1, 2], [2, 3]]))
    x = np.array([[0.0], [0.1], [0.25], [0.9], [0.3]])
    new = bc.hk_step(x, graph, np.full(5, 0.15))
    # 0 hears 1; 1 hears 0 and 2 (0.15 <= eps); 2 hears 1 (3 is 0.65 away); 3 and 4 hear no one
    assert new[:, 0] == pytest.approx([0.05, (0.0 + 0.1 + 0.25) / 3, 0.175, 0.9, 0.3])
    # widest gap still heard after the step: 0 (0.05) and 1 (0.35 / 3)
    assert bc.interacting_spread(new, graph, np.full(5, 0.15), strict=False) == pytest.approx(0.35 / 3 - 0.05)


@pytest.mark.parametrize("heterogeneous", [False, True])
def test_hk_complete_window_equals_edge_rule(heterogeneous: bool) -> None:
    n = 300
    graph = complete(n)
    rng = np.random.default_rng(5)
    x = np.round(rng.random((n, 2)), 2)  # ties and exact-distance cases on purpose
    eps = rng.uniform(0.05, 0.3, n) if heterogeneous else np.full(n, 0.1)
    fast = bc.hk_step(x, graph, eps)
    slow = bc._hk_sparse(x, graph, eps)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)


def test_hk_stubborn_agents_do_not_move() -> None:
    graph = complete(5)
    x = np.array([[0.1], [0.2], [0.3], [0.4], [0.5]])
    movable = np.array([True, False, True, True, True])
    new = bc.hk_step(x, graph, np.full(5, 1.0), movable)
    assert new[1, 0] == 0.2 and new[0, 0] == pytest.approx(0.3)


@pytest.mark.parametrize("strict", [True, False])
def test_interacting_spread_complete_equals_edges(strict: bool) -> None:
    n = 200
    graph = complete(n)
    rng = np.random.default_rng(9)
    x = np.round(rng.random((n, 2)), 2)
    eps = rng.uniform(0.01, 0.2, n)
    fast = bc.interacting_spread(x, graph, eps, strict)
    # the same rule written the slow way over every ordered pair
    dist = np.abs(x[None, :, :] - x[:, None, :])
    heard = dist < eps[:, None, None] if strict else dist <= eps[:, None, None]
    assert fast == pytest.approx(dist[heard].max())
    as_sparse = SocialGraph(graph.n, graph.indptr, graph.indices, graph.edges[:-1])  # not "complete"
    assert bc.interacting_spread(x, as_sparse, eps, strict) == pytest.approx(fast)


def test_cluster_count() -> None:
    values = np.concatenate([np.full(50, 0.2), np.full(45, 0.7), np.full(5, 0.705), [0.95]])
    assert bc.count_clusters(values) == 2  # 0.700 and 0.705 are one group; 0.95 alone is < 1%
    assert bc.count_clusters(values, min_share=0.005) == 3
    assert bc.count_clusters(values, gap=0.001) == 3  # 0.700 | 0.705 split


# --- cluster-count oracles --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("eps", "allowed"),
    [(0.5, {1}), (0.3, {1, 2}), (0.25, {2}), (0.2, {2}), (0.15, {2, 3}), (0.1, {4, 5})],
)
def test_deffuant_cluster_counts(k1000: SocialGraph, eps: float, allowed: set[int]) -> None:
    counts = [bc.count_clusters(run_to_rest("deffuant", eps, seed, k1000)) for seed in SEEDS]
    assert set(counts) <= allowed, counts
    if eps == 0.3:  # "1 (most seeds)"
        assert counts.count(1) >= 3, counts
    if eps == 0.15:
        assert counts.count(3) >= 3, counts


@pytest.mark.parametrize(
    ("eps", "allowed"),
    [(0.3, {1}), (0.25, {1}), (0.2, {2, 3}), (0.15, {2, 3}), (0.1, {3, 4}), (0.05, set(range(6, 10)))],
)
def test_hk_cluster_counts(k1000: SocialGraph, eps: float, allowed: set[int]) -> None:
    counts = [bc.count_clusters(run_to_rest("hk", eps, seed, k1000)) for seed in SEEDS]
    assert set(counts) <= allowed, counts
    if eps == 0.2:  # "2 (mostly)"
        assert counts.count(2) >= 3, counts


def test_hk_settles_within_a_few_synchronous_steps(k1000: SocialGraph) -> None:
    rng = np.random.default_rng(0)
    x, e = rng.random((N, 1)), np.full(N, 0.3)
    steps = 0
    while bc.interacting_spread(x, k1000, e, strict=False) > 1e-9 and steps < 100:
        x = bc.hk_step(x, k1000, e)
        steps += 1
    assert 3 <= steps <= 10


@given(n=st.integers(2, 60), d=st.integers(1, 4), mu=st.floats(0.01, 1.0), seed=st.integers(0, 2**32 - 1),
       stubborn=st.booleans())  # fmt: skip
@settings(max_examples=100, deadline=None)
def test_deffuant_pairs_is_the_rule_applied_from_both_sides_to_the_bit(n, d, mu, seed, stubborn):
    """The one-difference form of `deffuant_pairs` gives what `deffuant_move` gives from each side."""
    rng = np.random.default_rng(seed)
    x, eps = rng.random((n, d)), rng.random(n) * 0.6
    movable = rng.random(n) < 0.7 if stubborn else None
    order = rng.permutation(n)
    u, v = order[: n // 2], order[n // 2 : 2 * (n // 2)]
    expected = x.copy()
    after_u, heard_u = bc.deffuant_move(x[u], x[v], eps[u, None], mu, None if movable is None else movable[u, None])
    after_v, heard_v = bc.deffuant_move(x[v], x[u], eps[v, None], mu, None if movable is None else movable[v, None])
    expected[u], expected[v] = after_u, after_v
    update = bc.deffuant_pairs(x, u, v, eps, mu, movable)
    assert np.array_equal(x.view(np.uint64), expected.view(np.uint64))
    assert np.array_equal(update.u_heard_v, heard_u) and np.array_equal(update.v_heard_u, heard_v)


def test_set_rows_writes_whole_rows_of_any_layout():
    x = np.arange(12.0).reshape(4, 3)
    bc.set_rows(x, np.array([2, 0]), np.array([[-1.0, -2, -3], [-4, -5, -6]]))
    assert x.tolist() == [[-4, -5, -6], [3, 4, 5], [-1, -2, -3], [9, 10, 11]]
    strided = np.arange(24.0).reshape(4, 6)[:, ::2]  # not C-ordered: numpy's own assignment
    bc.set_rows(strided, np.array([1]), np.array([[7.0, 7, 7]]))
    assert strided[1].tolist() == [7, 7, 7]


@given(n=st.integers(2, 50), d=st.integers(1, 4), mu=st.floats(0.01, 0.5), seed=st.integers(0, 2**32 - 1),
       pairing=st.sampled_from(bc.PAIRINGS), shared_eps=st.booleans(), stubborn=st.booleans(),
       complete_graph=st.booleans())  # fmt: skip
@settings(max_examples=150, deadline=None)
def test_deffuant_advance_is_deffuant_step_to_the_bit(n, d, mu, seed, pairing, shared_eps, stubborn, complete_graph):
    """The unrecorded step draws the same pairs and leaves the same positions, bit for bit."""
    rng = np.random.default_rng(seed)
    graph = complete(n) if complete_graph else ring(n, k=min(2, (n - 1) // 2 or 1))
    x = rng.random((n, d))
    eps = np.full(n, 0.3) if shared_eps else rng.random(n) * 0.6
    movable = rng.random(n) < 0.7 if stubborn else None
    stepped, advanced = x.copy(), x.copy()
    updates = bc.deffuant_step(stepped, graph, eps, mu, np.random.default_rng(seed), 3, movable, pairing)
    pairs = bc.deffuant_advance(advanced, bc.meetings(graph, np.random.default_rng(seed), 3, pairing), eps, mu, movable)
    assert pairs == sum(len(up.u) for up in updates)
    assert np.array_equal(stepped.view(np.uint64), advanced.view(np.uint64))


@pytest.mark.parametrize("pairing", bc.PAIRINGS)
def test_drawing_ahead_on_a_thread_changes_nothing(monkeypatch, pairing):
    """Large runs draw the next matching on a worker thread: the same draws, in the same order."""
    graph = ring(3000, k=3)
    rng = np.random.default_rng(5)
    x, eps = rng.random((3000, 3)), rng.uniform(0.1, 0.4, 3000)
    inline, ahead = x.copy(), x.copy()
    monkeypatch.setattr(bc, "DRAW_AHEAD_FROM", 10**9)
    bc.deffuant_advance(inline, bc.meetings(graph, np.random.default_rng(9), 6, pairing), eps, 0.3)
    monkeypatch.setattr(bc, "DRAW_AHEAD_FROM", 0)
    bc.deffuant_advance(ahead, bc.meetings(graph, np.random.default_rng(9), 6, pairing), eps, 0.3)
    assert np.array_equal(inline.view(np.uint64), ahead.view(np.uint64))
    assert not np.array_equal(inline, x)
