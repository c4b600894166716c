"""Who meets whom in Deffuant dynamics (issue 13.6): `matching` (disjoint pairs at once), `edge` (a
uniformly random edge per meeting) and `node` (a random agent, then a random neighbour), against
frequencies worked out by hand, exact sequential semantics, and the engine (about 30 s in all,
two shard contracts most of it)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from agents.graph import SocialGraph
from scenarios import bounded_confidence as bc
from tests.contract import ScenarioContract, read_table, run_with

DRAWS = 200_000  # meetings sampled per rule: standard error of a share below 0.0012


def wheel(leaves: int) -> SocialGraph:
    """A hub (agent 0) linked to every leaf, the leaves in a ring: hub degree L, leaf degree 3."""
    spokes = [(0, i) for i in range(1, leaves + 1)]
    rim = [(i, i % leaves + 1) for i in range(1, leaves + 1)]
    return SocialGraph.from_edges(leaves + 1, np.array(spokes + rim))


def star(leaves: int) -> SocialGraph:
    return SocialGraph.from_edges(leaves + 1, np.array([(0, i) for i in range(1, leaves + 1)]))


def shares(graph: SocialGraph, pairing: str, seed: int = 0) -> tuple[float, dict[tuple[int, int], float]]:
    """(share of meetings that include agent 0, share of meetings per edge) over DRAWS meetings."""
    u, v = bc.random_pairs(graph, DRAWS, pairing, np.random.default_rng(seed))
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    pairs, counts = np.unique(np.stack([lo, hi], axis=1), axis=0, return_counts=True)
    per_edge = {tuple(p): c / DRAWS for p, c in zip(pairs.tolist(), counts, strict=True)}
    return float(((u == 0) | (v == 0)).mean()), per_edge


def test_on_a_wheel_the_hub_meets_more_under_edge_and_less_per_edge_under_node():
    """L = 20 leaves, E = 2L edges. edge: the hub is in L/E = 1/2 of meetings, every edge 1/E = 0.025.
    node: hub 1/(L+1) + L/(L+1) x 1/3 = 0.3651; a spoke (1/(L+1))(1/L + 1/3) = 0.01825, a rim edge
    (1/(L+1))(2/3) = 0.03175. matching: the hub is in at most one pair per matching (about 0.2)."""
    graph, leaves = wheel(20), 20
    hub, per_edge = shares(graph, "edge")
    assert hub == pytest.approx(0.5, abs=0.005)
    assert all(share == pytest.approx(1 / 40, abs=0.0015) for share in per_edge.values())
    hub_node, per_edge_node = shares(graph, "node")
    assert hub_node == pytest.approx((1 + leaves / 3) / (leaves + 1), abs=0.005)
    spoke, rim = per_edge_node[(0, 1)], per_edge_node[(1, 2)]
    assert spoke == pytest.approx((1 / leaves + 1 / 3) / (leaves + 1), abs=0.0015)
    assert rim == pytest.approx((2 / 3) / (leaves + 1), abs=0.0015)
    rng = np.random.default_rng(1)
    met = [bc.random_matching(graph, rng) for _ in range(5000)]
    in_pairs = sum(((u == 0) | (v == 0)).sum() for u, v in met) / sum(len(u) for u, _ in met)
    assert in_pairs < hub_node < hub  # matching < node < edge


def test_on_a_star_edge_and_node_coincide():
    """Every edge of a star holds the hub: under both rules the hub is in every meeting and each
    spoke is drawn 1/L of the time (node: (1/(L+1))(1 + 1/L) = 1/L). Only a matching differs: one pair."""
    for pairing in ("edge", "node"):
        hub, per_edge = shares(star(10), pairing, seed=2)
        assert hub == 1.0
        assert all(share == pytest.approx(0.1, abs=0.003) for share in per_edge.values())
    u, _ = bc.random_matching(star(10), np.random.default_rng(3))
    assert len(u) == 1


def test_complete_graph_draws_uniform_pairs_of_distinct_agents():
    for pairing in ("edge", "node"):
        u, v = bc.random_pairs(SocialGraph.complete_graph(5), DRAWS, pairing, np.random.default_rng(4))
        assert (u != v).all()
        _, counts = np.unique(np.minimum(u, v) * 5 + np.maximum(u, v), return_counts=True)
        assert len(counts) == 10 and np.allclose(counts / DRAWS, 0.1, atol=0.004)


def test_an_agent_without_neighbours_meets_nobody_under_node():
    graph = SocialGraph.from_edges(4, np.array([(0, 1)]))  # 2 and 3 are alone
    u, v = bc.random_pairs(graph, 1000, "node", np.random.default_rng(5))
    assert len(u) < 1000 and set(np.concatenate([u, v]).tolist()) == {0, 1}


def test_sequential_layers_by_hand():
    u, v = np.array([0, 1, 2, 0, 4]), np.array([1, 2, 3, 3, 5])
    assert [layer.tolist() for layer in bc.sequential_layers(u, v)] == [[0, 4], [1], [2], [3]]
    assert bc.sequential_layers(np.zeros(0, np.int64), np.zeros(0, np.int64)) == []


@pytest.mark.parametrize("pairing", ["edge", "node"])
def test_layers_equal_meetings_one_after_another(pairing):
    """The vectorised update equals the meetings applied one at a time in drawn order."""
    rng = np.random.default_rng(6)
    graph = wheel(30)
    for _ in range(10):
        x0, eps = rng.random((31, 2)), rng.uniform(0.1, 0.6, 31)
        u, v = bc.random_pairs(graph, 120, pairing, rng)
        one_by_one = x0.copy()
        for a, b in zip(u.tolist(), v.tolist(), strict=True):
            xa, xb = one_by_one[a].copy(), one_by_one[b].copy()
            one_by_one[a] = xa + 0.3 * (xb - xa) * (np.abs(xb - xa) < eps[a])
            one_by_one[b] = xb + 0.3 * (xa - xb) * (np.abs(xa - xb) < eps[b])
        layered = x0.copy()
        for layer in bc.sequential_layers(u, v):
            bc.deffuant_pairs(layered, u[layer], v[layer], eps, 0.3)
        np.testing.assert_allclose(layered, one_by_one, atol=1e-12)


@pytest.mark.parametrize("pairing", ["edge", "node"])
def test_deffuant_step_conserves_the_mean(pairing):
    graph = wheel(40)
    rng = np.random.default_rng(7)
    x = rng.random((41, 3))
    total = x.sum(axis=0)
    updates = bc.deffuant_step(x, graph, np.full(41, 0.4), 0.5, rng, matchings=5, pairing=pairing)
    assert x.sum(axis=0) == pytest.approx(total)
    assert sum(len(up.u) for up in updates) == 5 * 20  # n // 2 meetings per round (no isolated agent)


def test_engine_rows_follow_the_rule_with_one_partner_per_layer(tmp_path):
    hub_share = {}
    for pairing in ("edge", "node"):
        overrides = ["scenario=deffuant", "population.size=40", "graph=barabasi_albert", "graph.m=2",
                     f"scenario.pairing={pairing}", "scenario.max_steps=10", "scenario.record_interactions=true",
                     "scenario.dimensions=[power]", "scenario.tolerance=1e-12", "seed=3"]  # fmt: skip
        rows = read_table(run_with(overrides, tmp_path / pairing), "interactions")
        assert rows.height == 2 * 10 * 10 * 20  # 2 rows per meeting, 10 steps of 10 rounds of n/2 meetings
        per_layer = rows.group_by("step", "round", "listener_id").len()
        assert per_layer["len"].max() == 1
        gap = (rows["speaker_position"] - rows["position_before"]).to_numpy()
        heard = rows["heard"].to_numpy()
        np.testing.assert_array_equal(heard, np.abs(gap) < 0.2)
        after = rows["position_before"].to_numpy() + 0.5 * gap * heard
        np.testing.assert_allclose(rows["position_after"].to_numpy(), after, atol=1e-12)
        meetings = rows.group_by("listener_id").len()["len"]
        hub_share[pairing] = meetings.max() / meetings.sum()
    # the same scale-free graph (same seed): its biggest hub, of degree d, is in d/E of the meetings under
    # edge, and in about (1 + sum of 1/k over its neighbours)/n under node, a quarter less on this graph
    assert hub_share["edge"] > 1.15 * hub_share["node"]


class TestDeffuantNodePairingContract(ScenarioContract):
    overrides = ["scenario=deffuant", "population.size=24", "graph=watts_strogatz", "graph.k=4",
                 "scenario.pairing=node", "scenario.max_steps=4", "scenario.record_interactions=true",
                 "scenario.dimensions=[power,benevolence]"]  # fmt: skip
    tables = ("interactions", "states")
    invalid = [("scenario.pairing=random", "scenario.pairing")]


class TestValueDebateEdgePairingContract(ScenarioContract):
    """The queue of drawn meetings is part of the world: a restored world must hold the same queue."""

    overrides = ["scenario=value_debate", "scenario.llm_mode=free", "population.size=16", "graph=barabasi_albert",
                 "graph.m=2", "scenario.pairing=edge", "population.mix={bounded_confidence:12,stubborn:4}",
                 "scenario.max_steps=12"]  # fmt: skip
    tables = ("interactions", "states")
    checkpoint_steps = 5


def test_value_debate_meetings_keep_listeners_distinct_under_node(tmp_path):
    overrides = ["scenario=value_debate", "scenario.llm_mode=free", "population.size=30", "graph=barabasi_albert",
                 "graph.m=2", "scenario.pairing=node", "population.mix={bounded_confidence:30}",
                 "scenario.max_steps=20", "seed=4"]  # fmt: skip
    listen = read_table(run_with(overrides, tmp_path / "run"), "interactions").filter(phase="listen")
    assert listen.height > 0
    assert listen.group_by("step", "listener_id").len()["len"].max() == 1
    # both directions of every pair meet in the same round
    pairs = listen.select(
        "step", lo=pl.min_horizontal("speaker_id", "listener_id"), hi=pl.max_horizontal("speaker_id", "listener_id")
    )
    assert (pairs.group_by("step", "lo", "hi").len()["len"] == 2).all()
