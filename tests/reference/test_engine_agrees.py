"""The engine's bounded-confidence dynamics against the slow plain-Python references in tests/reference.

For each Deffuant pairing rule and for Hegselmann–Krause, on a complete graph and on a Watts–Strogatz
graph, SEEDS runs of the engine (driven through `sim.config.compose` + `sim.run.run`, final states read
back from Parquet) and SEEDS runs of the reference (Python's own random generator, its own graphs) end
in final cluster counts. A two-sample permutation test (Cramér–von Mises statistic) fails the test when
the two distributions differ at level ALPHA. ALPHA = 0.005 per comparison keeps the chance that a
correct engine fails any of the eight comparisons below 4%; the comparisons are seeded, so a given
engine passes or fails every time, and only a change to the engine's random streams draws again.
`test_the_comparison_has_power` shows the same test, same sample sizes, tells epsilon 0.2 from 0.3.
Measured over independent blocks of reference runs (30 a side, 20 to 40 blocks), the test at ALPHA
detects Deffuant epsilon 0.2 against 0.25 in 80% of blocks on the complete graph and in all on the
Watts–Strogatz graph, and Hegselmann–Krause 0.25 against 0.2 in 97% and against 0.3 in 80% (complete)
and 80% (Watts–Strogatz); two blocks at the same epsilon: no rejection in 20.
Hegselmann–Krause is deterministic given its start, so its engine runs are also replayed one by one.

Cost: about 30 s of CPU for the tests/reference package with the `edge` and `node` engine comparisons
(30 to 50 s wall on this shared 2-core machine under load averages of 7 to 8 before they were added).

Clusters: on the complete graph the value-space rule (sorted opinions split at gaps > 0.01, groups of at
least 1% of agents); on the sparse graph the topology-aware rule (connected components of the graph
restricted to neighbours within 0.01 of each other), both from tests/reference/clusters.py and applied
to engine and reference alike.

ENGINE_OVERRIDES holds each rule's overrides, `scenario.pairing=matching|edge|node` among them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from sim.config import compose
from sim.run import run
from tests.reference.bounded_confidence import deffuant, hegselmann_krause, uniform_opinions
from tests.reference.clusters import graph_clusters, value_clusters
from tests.reference.graphs import Graph, complete_graph, from_edges, watts_strogatz
from tests.reference.two_sample import permutation_p_value

N = 100  # agents
SEEDS = 25  # runs per side and comparison
ALPHA = 0.005
MU = 0.5
EPSILON = {"deffuant": 0.2, "hk": 0.25}
WS_K, WS_P = 6, 0.1
REFERENCE_ROOT = 13_008  # root of the reference's seeds, unrelated to the engine's seeds 0..SEEDS-1

# Each rule's engine overrides; population.size, scenario.epsilon, seed and run.dir are added per condition.
_UNIFORM_1D = ["scenario.initial=uniform", "scenario.dimensions=[opinion]"]
_DEFFUANT = ["scenario=deffuant", *_UNIFORM_1D, f"scenario.mu={MU}"]
ENGINE_OVERRIDES: dict[str, list[str]] = {
    "matching": [*_DEFFUANT, "scenario.pairing=matching"],
    "edge": [*_DEFFUANT, "scenario.pairing=edge"],
    "node": [*_DEFFUANT, "scenario.pairing=node"],
    "hk": ["scenario=hegselmann_krause", *_UNIFORM_1D],
}
GRAPH_OVERRIDES: dict[str, list[str]] = {
    "complete": ["graph=complete"],
    "watts_strogatz": ["graph=watts_strogatz", f"graph.k={WS_K}", f"graph.p={WS_P}"],
}
RULES = ["matching", "edge", "node", "hk"]


def count_clusters(x: list[float], graph: Graph) -> int:
    return value_clusters(x) if graph.complete else graph_clusters(x, graph)


def _model(rule: str) -> str:
    return "hk" if rule == "hk" else "deffuant"


def reference_counts(rule: str, graph_kind: str, eps: float) -> list[int]:
    """Final cluster counts of SEEDS reference runs."""
    counts = []
    for child in np.random.SeedSequence(REFERENCE_ROOT).spawn(SEEDS):
        rng = random.Random(int(child.generate_state(1)[0]))
        graph = complete_graph(N) if graph_kind == "complete" else watts_strogatz(N, WS_K, WS_P, rng)
        x = uniform_opinions(N, rng)
        final = hegselmann_krause(x, graph, eps) if rule == "hk" else deffuant(x, graph, eps, MU, rule, rng)  # type: ignore[arg-type]
        counts.append(count_clusters(final, graph))
    return counts


def recorded_states(run_dir: Path) -> tuple[list[float], list[float], Graph]:
    """The first and the last recorded opinions (by agent id) and the run's graph, from its Parquet files."""
    states = pl.read_parquet(run_dir / "states" / "part-*.parquet")

    def at(step: int) -> list[float]:
        snapshot = states.filter(pl.col("step") == step).sort("agent_id")
        assert snapshot["agent_id"].to_list() == list(range(N))
        return snapshot["value"].to_list()

    return at(states["step"].min()), at(states["step"].max()), recorded_graph(run_dir / "graph.parquet")


def recorded_graph(path: Path) -> Graph:
    """A complete graph is recorded without rows, its metadata saying so; any other as its edge list."""
    metadata = pq.read_metadata(path).metadata or {}  # the file's key-value metadata
    if metadata.get(b"socsim.graph") == b"complete":
        return complete_graph(int(metadata[b"socsim.nodes"]))
    edges = pl.read_parquet(path).select("source", "target")
    return from_edges(N, list(edges.iter_rows()))


@pytest.fixture(scope="module")
def engine_runs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str, float], list[Path]]:
    """Run directories of SEEDS engine runs (seeds 0..SEEDS-1), run once per condition."""
    root = tmp_path_factory.mktemp("engine")
    done: dict[tuple[str, str, float], list[Path]] = {}

    def runs(rule: str, graph_kind: str, eps: float) -> list[Path]:
        key = (rule, graph_kind, eps)
        if key not in done:
            overrides = [
                *ENGINE_OVERRIDES[rule], *GRAPH_OVERRIDES[graph_kind], f"population.size={N}",
                f"scenario.epsilon={eps}", "run.progress=false", f"run.dir={root}/unused",
            ]  # fmt: skip
            config = compose(overrides)  # once per condition (Hydra takes 0.1 s), then one copy per seed
            done[key] = []
            for seed in range(SEEDS):
                run_dir = str(root / f"{rule}-{graph_kind}-{eps}-{seed}")
                done[key].append(
                    run(config.model_copy(update={"seed": seed, "run": config.run.model_copy(update={"dir": run_dir})}))
                )
        return done[key]

    return runs


@pytest.fixture(scope="module")
def engine_counts(engine_runs: Callable[[str, str, float], list[Path]]) -> Callable[[str, str, float], list[int]]:
    """Final cluster counts of the engine runs of a condition."""

    def counts(rule: str, graph_kind: str, eps: float) -> list[int]:
        return [
            count_clusters(final, graph) for _, final, graph in map(recorded_states, engine_runs(rule, graph_kind, eps))
        ]

    return counts


@pytest.mark.parametrize("graph_kind", ["complete", "watts_strogatz"])
@pytest.mark.parametrize("rule", RULES)
def test_engine_and_reference_agree(
    rule: str, graph_kind: str, engine_counts: Callable[[str, str, float], list[int]]
) -> None:
    eps = EPSILON[_model(rule)]
    reference = reference_counts(rule, graph_kind, eps)
    engine = engine_counts(rule, graph_kind, eps)
    assert len(set(reference)) > 1, f"every reference run ends with {reference[0]} clusters: nothing to compare"
    p = permutation_p_value(engine, reference)
    print(f"{rule} {graph_kind} eps={eps} p={p:.4f} engine={sorted(engine)} reference={sorted(reference)}")
    assert p >= ALPHA, (
        f"{rule} on {graph_kind}, epsilon {eps}: final cluster counts differ (p = {p:.4f}); "
        f"engine {sorted(engine)}, reference {sorted(reference)}"
    )


@pytest.mark.parametrize("graph_kind", ["complete", "watts_strogatz"])
def test_the_comparison_has_power(graph_kind: str, engine_counts: Callable[[str, str, float], list[int]]) -> None:
    """The same test on the engine at epsilon 0.2 against the reference at 0.3 must see the difference."""
    p = permutation_p_value(engine_counts("matching", graph_kind, 0.2), reference_counts("matching", graph_kind, 0.3))
    assert p < ALPHA


def test_edge_and_node_rules_agree_on_a_complete_graph() -> None:
    """The reference side of the edge and node rules on their own: on a complete graph a
    random edge and a random node's random neighbour are the same draw (a uniform pair), so the two
    rules' final cluster counts must pass the same comparison."""
    eps = EPSILON["deffuant"]
    edge, node = reference_counts("edge", "complete", eps), reference_counts("node", "complete", eps)
    assert len(set(edge)) > 1
    assert permutation_p_value(edge, node) >= ALPHA


@pytest.mark.parametrize("graph_kind", ["complete", "watts_strogatz"])
def test_hk_replays_every_engine_run(graph_kind: str, engine_runs: Callable[[str, str, float], list[Path]]) -> None:
    """Hegselmann–Krause is deterministic once the start and the graph are drawn, so beyond the
    distributions the reference replays each engine run from its recorded first state on its recorded
    graph, and must end where the engine ended (up to rounding: the engine sums in another order)."""
    eps = EPSILON["hk"]
    for run_dir in engine_runs("hk", graph_kind, eps):
        first, final, graph = recorded_states(run_dir)
        replayed = hegselmann_krause(first, graph, eps)
        assert max(abs(a - b) for a, b in zip(replayed, final, strict=True)) < 1e-9, run_dir.name
