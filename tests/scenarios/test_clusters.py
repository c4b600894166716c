"""Opinion clusters that see the graph (issue 13.1): connected components of the graph keeping only
neighbours within 0.01 of each other, against hand-built graphs, the value-space rule on complete
graphs, and the case that motivated them, Deffuant on a Watts–Strogatz graph at epsilon 0.05 (about
5 s in all on a loaded 2-core machine, the 1000-agent engine run included)."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from agents.graph import SocialGraph
from analysis import load
from analysis.opinions import cluster_counts, time_to_consensus
from scenarios import bounded_confidence as bc
from scenarios.tables import AnalysisError
from tests.contract import read_table, run_with


def path(n: int) -> SocialGraph:
    return SocialGraph.from_edges(n, np.stack([np.arange(n - 1), np.arange(1, n)], axis=1))


def test_components_by_hand():
    # 0-1-2 and 3-4, 5 alone
    labels = bc.components(6, np.array([0, 1, 3]), np.array([1, 2, 4]))
    assert labels.tolist() == [0, 0, 0, 3, 3, 5]
    # a long path given in reverse order still collapses to one component
    n = 1000
    labels = bc.components(n, np.arange(n - 1)[::-1] + 1, np.arange(n - 1)[::-1])
    assert (labels == 0).all()


def test_two_distant_groups_with_one_opinion_are_two_clusters():
    """A path 0..99 whose middle agents disagree: both halves hold 0.3, but nobody links them."""
    x = np.full(100, 0.3)
    x[45:55] = np.linspace(0.5, 0.9, 10)  # ten agents far from everyone, each on its own
    found = bc.graph_clusters(x, path(100), tolerance=0.01, min_share=0.01)
    assert (found.clusters, found.groups) == (12, 12)  # 45 + 45 agents, and 10 singletons of 1% each
    assert found.largest_share == pytest.approx(0.45)
    assert bc.count_clusters(x) == 11  # the value rule merges the two halves: one group at 0.3
    strict = bc.graph_clusters(x, path(100), tolerance=0.01, min_share=0.02)
    assert strict.clusters == 2 and strict.groups == 12


@pytest.mark.parametrize("seed", range(5))
def test_on_a_complete_graph_the_graph_rule_is_the_value_rule(seed):
    rng = np.random.default_rng(seed)
    x = np.round(rng.random(300), 2)  # ties and gaps of exactly 0.01 on purpose
    implicit = bc.graph_clusters(x, SocialGraph.complete_graph(300))
    explicit = SocialGraph.from_edges(300, np.stack(np.triu_indices(300, 1), axis=1))
    explicit = SocialGraph(explicit.n, explicit.indptr, explicit.indices, explicit.edges)  # stored edges
    by_edges = bc.graph_clusters(x, explicit)
    assert implicit == by_edges
    assert implicit.clusters == bc.count_clusters(x)


def test_cluster_counts_frame_rules_and_consensus():
    """Six agents on a path: 0.5 0.5 0.5 | 0.9 | 0.5 0.5. Graph rule: groups of 3, 1, 2 (the last two
    are cut off by agent 3); value rule: one group of 5 at 0.5 and agent 3."""
    states = pl.DataFrame(
        {"run_id": "r", "step": 0, "agent_id": range(6), "value": [0.5, 0.5, 0.5, 0.9, 0.5, 0.5],
         "graph_kind": "watts_strogatz"}
    )  # fmt: skip
    graphs = {"r": path(6)}
    got = cluster_counts(states, graphs=graphs, min_share=0.2)
    assert got.select("clusters", "groups", "largest_share", "consensus", "n").row(0) == (2, 3, 0.5, False, 6)
    value = cluster_counts(states, rule="value", min_share=0.2)
    assert value.select("clusters", "groups", "largest_share").row(0) == (1, 2, pytest.approx(5 / 6))
    with pytest.raises(AnalysisError, match=r"^cluster_counts: run r ran on a watts_strogatz graph; give its graph"):
        cluster_counts(states)
    # a table without graph_kind is a plain list of opinions (complete graph): the value rule, exactly
    assert cluster_counts(states.drop("graph_kind"), min_share=0.2)["clusters"].item() == 1


def test_consensus_is_one_cluster_holding_all_but_min_share():
    values = [0.5] * 99 + [0.9]
    states = pl.DataFrame({"run_id": "r", "step": [0] * 100 + [1] * 100, "agent_id": list(range(100)) * 2,
                           "value": values + [0.5] * 100})  # fmt: skip
    got = cluster_counts(states)
    assert got.select("step", "clusters", "consensus").rows() == [(0, 2, True), (1, 1, True)]
    ttc = time_to_consensus(states)
    assert ttc.select("steps_to_consensus", "reached", "last_step").row(0) == (0, True, 1)


@pytest.fixture(scope="module")
def ws_run(tmp_path_factory):
    """Deffuant, one uniform opinion, epsilon 0.05, 1000 agents on a Watts-Strogatz graph (k 6, p 0.1)."""
    overrides = ["scenario=deffuant", "scenario.initial=uniform", "scenario.dimensions=[opinion]",
                 "scenario.epsilon=0.05", "graph=watts_strogatz", "population.size=1000", "seed=1"]  # fmt: skip
    return run_with(overrides, tmp_path_factory.mktemp("ws") / "run")


def test_deffuant_on_watts_strogatz_at_epsilon_005_is_no_consensus(ws_run):
    runs = load(ws_run)
    final = cluster_counts(runs.states, graphs=runs.graphs()).filter(pl.col("step") == pl.col("step").max())
    row = final.row(0, named=True)
    # hundreds of separate local groups, none holding more than a few percent of the agents
    assert row["groups"] > 300 and row["largest_share"] < 0.1 and not row["consensus"]
    assert not time_to_consensus(runs.states, graphs=runs.graphs())["reached"].item()
    # the value-space rule, blind to the graph, calls the same state a consensus: why it is no default
    blind = cluster_counts(runs.states, rule="value").filter(pl.col("step") == pl.col("step").max())
    assert blind["clusters"].item() == 1 and blind["consensus"].item()
    # the registered metrics read the run's graph.parquet
    assert runs.metric("final_clusters")["final_clusters"].item() == row["clusters"]
    assert runs.metric("value_clusters")["value_clusters"].to_list()[-1] == 1.0
    assert not runs.metric("steps_to_consensus")["reached"].item()


def test_recorded_graph_is_what_the_metrics_read(ws_run):
    graph = load(ws_run).graphs()[json.loads((ws_run / "manifest.json").read_text())["run_id"]]
    edges = pl.read_parquet(ws_run / "graph.parquet")
    assert graph.nodes == 1000 and graph.edges.shape == (edges.height, 2) == (3000, 2)
    states = read_table(ws_run, "states")
    assert states["step"].min() == 0


def test_complete_graph_runs_need_no_graph_and_say_complete(tmp_path):
    run_dir = run_with(["scenario=hegselmann_krause", "scenario.initial=uniform", "scenario.dimensions=[opinion]",
                        "scenario.epsilon=0.3", "population.size=200", "seed=2"], tmp_path / "run")  # fmt: skip
    runs = load(run_dir)
    assert runs.graphs()[runs.run_ids[0]].edges is None  # graph.parquet: no rows, metadata "complete"
    by_graph = cluster_counts(runs.states, graphs=runs.graphs())
    assert by_graph.equals(cluster_counts(runs.states)) and by_graph.equals(cluster_counts(runs.states, rule="value"))
    assert by_graph["consensus"].to_list()[-1]
