"""What the three value-diffusion scenarios share: positions on value dimensions, confidence bounds,
stubborn agents, the recorded tables, state snapshots and the opinion metrics.

Each agent holds a position in [0, 1] on one or more value dimensions (by default the ten Schwartz
values of its persona). Dimensions evolve independently, but one meeting covers them all. The
scenarios differ only in what a step does: `deffuant` (pairwise, Deffuant et al. 2000),
`hegselmann_krause` (synchronous averaging, Hegselmann & Krause 2002) and `value_debate` (language
models argue and report their new position). The dynamics themselves are in the kernel,
`scenarios/bounded_confidence.py`.

Records:
- `states`: agent_id, dimension, value, and `step` = number of completed steps (0 is the initial
  state; interactions at engine step t move the state from t to t+1). Written every `record_every`
  position updates and always at the end.
- `interactions`: one row per (listener, speaker, dimension) and act.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field, ValidationInfo, field_validator

from agents.decisions import ActionSpec, DecisionBatch, Decisions
from agents.graph import SocialGraph
from agents.persona import BIG_FIVE, SCHWARTZ_VALUES
from agents.population import Population
from scenarios import bounded_confidence as bc
from scenarios.base import BaseScenario, Metric, ScenarioConfig, StepResult, TableSource
from scenarios.tables import AnalysisError, Frame, columns, keys, lazy, require
from scenarios.world import World

TRAIT_COLUMNS = tuple(f"big5_{t}" for t in BIG_FIVE) + tuple(f"value_{v}" for v in SCHWARTZ_VALUES)
BOUNDED_CONFIDENCE, STUBBORN = "bounded_confidence", "stubborn"


class OpinionConfig(ScenarioConfig):
    """Parameters every bounded-confidence scenario shares."""

    initial: Literal["personas", "uniform"] = "personas"  # before `dimensions`, whose check reads it
    dimensions: tuple[str, ...] = Field(default=SCHWARTZ_VALUES, min_length=1)
    epsilon: float = Field(default=0.2, gt=0.0, le=1.0, description="confidence bound (positions are in [0, 1])")
    epsilon_trait: str | None = Field(
        default=None, description="persona column (big5_* or value_*) mapped into epsilon_trait_range per agent"
    )
    epsilon_trait_range: tuple[float, float] = (0.05, 0.5)
    max_steps: int = Field(default=1000, ge=1)
    tolerance: float = Field(default=1e-3, gt=0.0, lt=1.0)
    record_every: int = Field(default=10, ge=1, description="states every k position updates; always at the end")
    record_interactions: bool = False

    @field_validator("dimensions", mode="before")
    @classmethod
    def _one_name(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("dimensions")
    @classmethod
    def _known_dimensions(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"repeated name in {list(value)}")
        unknown = [d for d in value if d not in SCHWARTZ_VALUES]
        if info.data.get("initial") == "personas" and unknown:
            raise ValueError(
                f"{unknown[0]!r} is not a Schwartz value (choose from {list(SCHWARTZ_VALUES)}); "
                "other names need initial=uniform"
            )
        return value

    @field_validator("epsilon_trait")
    @classmethod
    def _known_trait(cls, value: str | None) -> str | None:
        if value is not None and value not in TRAIT_COLUMNS:
            raise ValueError(f"{value!r} is not a persona trait; use one of {list(TRAIT_COLUMNS)}")
        return value

    @field_validator("epsilon_trait_range")
    @classmethod
    def _ordered_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 < value[0] <= value[1]:
            raise ValueError(f"need 0 < low <= high, got {list(value)}")
        return value


@dataclass
class OpinionWorld(World):
    """Positions (n, d), each agent's bound (n,) and the bookkeeping of steps and snapshots."""

    positions: np.ndarray
    eps: np.ndarray
    steps_done: int = 0
    updates: int = 0
    recorded_at: int = -1  # steps_done of the last state snapshot
    spread: float = float("inf")
    converged: bool = False
    converged_at: int | None = None  # steps_done when the dynamic stopped changing anything


@dataclass(frozen=True)
class ScriptedArguer:
    """A rule-following agent: states its position; as a listener it applies the Deffuant rule (`mu`,
    own ε) to the speaker's true position, or never moves when `stubborn`. In the rule-driven
    scenarios its policy name only marks whether the agent moves."""

    mu: float
    stubborn: bool

    def decide(self, batch: DecisionBatch) -> dict[str, np.ndarray]:
        own = batch.obs["position"]
        if batch.spec.name == "value_argument":
            said = np.char.mod("On this value I stand at %.2f on a scale from 0 to 1.", own)
            return {"argument": said.astype(object)}
        new = own.copy()
        if not self.stubborn:
            new, _ = bc.deffuant_move(own, batch.obs["speaker_position"], batch.obs["epsilon"], self.mu)
        if batch.spec.fields[0].kind == "choice":
            return {"position": to_likert(new, len(batch.spec.fields[0].options))}
        return {"position": np.clip(new, 0.0, 1.0)}


def to_likert(x: np.ndarray, points: int) -> np.ndarray:
    """Position in [0, 1] -> option index 0..points-1 (nearest point)."""
    return np.rint(np.asarray(x) * (points - 1)).astype(np.int16)


def from_likert(index: np.ndarray, points: int) -> np.ndarray:
    return np.asarray(index, np.float64) / (points - 1)


# ---- metrics (analysis reads them from the records; the cluster rules are the kernel's) -------------------

GAP = 0.01  # two neighbours (graph rule) or sorted neighbours (value rule) at most this far apart agree
MIN_SHARE = 0.01  # clusters holding >= 1% of the agents count, as in the literature for N = 1000
ClusterRule = Literal["graph", "value"]
CLUSTER_COLUMNS = ("clusters", "groups", "largest_share", "consensus", "n")


def _groups(frame: Frame, by: Sequence[str], dimension: str) -> list[str]:
    group = keys(by)
    if dimension in columns(frame) and dimension not in group:
        group.append(dimension)
    return group


def as_graph(recorded: Any) -> SocialGraph | None:
    """A run's graph as the metrics use it: a SocialGraph, or None for a complete graph. Takes a
    SocialGraph or anything with `nodes` and `edges` (edges None: complete), as `RunSet.graphs()` gives."""
    if recorded is None or isinstance(recorded, SocialGraph):
        return None if recorded is None or recorded.complete else recorded
    if recorded.edges is None:
        return None
    return SocialGraph.from_edges(int(recorded.nodes), np.asarray(recorded.edges, np.int64).reshape(-1, 2))


def _value_rule(frame: pl.LazyFrame, group: list[str], value: str, gap: float, min_share: float) -> pl.LazyFrame:
    """Clusters by the value-space rule, all groups at once in polars."""
    sizes = (
        frame.sort([*group, value])
        .with_columns((pl.col(value).diff().over(group) > gap).fill_null(False).cum_sum().over(group).alias("_cluster"))
        .group_by([*group, "_cluster"])
        .agg(pl.len().alias("size"))
        .with_columns(pl.col("size").sum().over(group).alias("n"))
    )
    return sizes.group_by(group).agg(
        (pl.col("size") >= min_share * pl.col("n")).sum().cast(pl.Int64).alias("clusters"),
        pl.len().cast(pl.Int64).alias("groups"),
        (pl.col("size").max() / pl.col("n").first()).cast(pl.Float64).alias("largest_share"),
        pl.col("n").first().cast(pl.Int64),
    )


def _graph_rule(
    frame: pl.DataFrame, group: list[str], value: str, graphs: dict[str, SocialGraph], gap: float, min_share: float
) -> pl.DataFrame:
    """Clusters by the graph rule, one numpy pass per group (run, step, dimension...)."""
    rows = []
    for key, part in frame.partition_by(group, as_dict=True, maintain_order=True).items():
        named = dict(zip(group, key, strict=True))
        graph = graphs[named["run_id"]]
        positions = np.full(graph.n, np.nan)
        positions[part["agent_id"].to_numpy()] = part[value].to_numpy()
        present = ~np.isnan(positions)  # an agent without a position agrees with nobody and is not counted
        labels = bc.components(graph.n, *_agreeing_edges(graph, positions, gap))
        sizes = np.bincount(labels[present], minlength=graph.n)
        found = bc.summarise_clusters(sizes[sizes > 0], min_share)
        rows.append({**named, "clusters": found.clusters, "groups": found.groups,
                     "largest_share": found.largest_share, "n": int(present.sum())})  # fmt: skip
    schema = {**{g: frame.schema[g] for g in group}, "clusters": pl.Int64, "groups": pl.Int64,
              "largest_share": pl.Float64, "n": pl.Int64}  # fmt: skip
    return pl.DataFrame(rows, schema=schema)


def _agreeing_edges(graph: SocialGraph, positions: np.ndarray, gap: float) -> tuple[np.ndarray, np.ndarray]:
    a, b = graph.edges[:, 0], graph.edges[:, 1]
    agree = np.abs(positions[a] - positions[b]) <= gap
    return a[agree], b[agree]


def cluster_counts(
    states: Frame,
    by: Sequence[str] = ("step",),
    *,
    value: str = "value",
    dimension: str = "dimension",
    gap: float = GAP,
    min_share: float = MIN_SHARE,
    graphs: Mapping[str, Any] | None = None,
    rule: ClusterRule = "graph",
) -> pl.DataFrame:
    """Opinion clusters per run, `by` group (and dimension when the table has one).

    rule="graph" (the default, valid on any graph): the connected components of the run's social graph
    keeping only the edges whose two ends are at most `gap` apart. `graphs` maps run_id to the run's
    graph (`RunSet.graphs()`; a SocialGraph works too); it is needed for every run whose states name
    another graph than a complete one (the `graph_kind` column `analysis.load` adds). On a complete
    graph the rule is exactly the value-space rule and is computed that way; a table without
    `graph_kind` (a hand-made list of opinions) is read as opinions on a complete graph.
    rule="value": the value-space measure whatever the graph: sorted positions split where neighbours
    are more than `gap` apart. On a sparse graph it cannot see separate local groups that hold the same
    opinion (Deffuant on a Watts–Strogatz graph at epsilon 0.05 ends in hundreds of them).

    `clusters` counts the clusters holding at least `min_share` of the agents, `groups` every cluster
    whatever its size; `largest_share` is the share of agents in the largest one; `consensus` is the
    largest cluster holding all but at most `min_share` of the agents.
    Columns: run_id, *by, [dimension], clusters, groups, largest_share, consensus, n.
    """
    group = _groups(states, by, dimension)
    require(states, [*group, value], "cluster_counts")
    frame = lazy(states).filter(pl.col(value).is_not_null())
    on_graph: dict[str, SocialGraph] = {}
    if rule == "graph":
        on_graph = _sparse_graphs(frame, graphs)
    parts = []
    if on_graph:
        require(states, ["agent_id"], "cluster_counts (graph rule)")
        sparse = frame.filter(pl.col("run_id").is_in(list(on_graph))).select([*group, "agent_id", value]).collect()
        parts.append(_graph_rule(sparse, group, value, on_graph, gap, min_share))
        frame = frame.filter(~pl.col("run_id").is_in(list(on_graph)))
    parts.append(_value_rule(frame, group, value, gap, min_share).collect())
    out = pl.concat([p for p in parts if p.height] or parts[-1:], how="vertical_relaxed")
    return (
        out.with_columns((pl.col("largest_share") >= 1.0 - min_share - 1e-12).alias("consensus"))
        .select(*group, *CLUSTER_COLUMNS)
        .sort(group)
    )


def _sparse_graphs(frame: pl.LazyFrame, graphs: Mapping[str, Any] | None) -> dict[str, SocialGraph]:
    """The runs that need the graph rule (not on a complete graph), with their graphs; an AnalysisError
    names a run whose states say it ran on a sparse graph that `graphs` does not give."""
    given = {run_id: as_graph(g) for run_id, g in (graphs or {}).items() if g is not None}
    kinds: dict[str, Any] = {}
    if "graph_kind" in frame.collect_schema().names():
        pairs = frame.select("run_id", "graph_kind").unique().collect()
        kinds = dict(zip(pairs["run_id"].to_list(), pairs["graph_kind"].to_list(), strict=True))
    runs = frame.select(pl.col("run_id").unique()).collect()["run_id"].to_list()
    sparse: dict[str, SocialGraph] = {}
    for run_id in runs:
        graph = given.get(run_id)
        if graph is not None:
            sparse[run_id] = graph
        elif run_id not in (graphs or {}) and kinds.get(run_id, "complete") != "complete":
            raise AnalysisError(
                f"cluster_counts: run {run_id} ran on a {kinds[run_id]} graph; give its graph "
                "(graphs=runs.graphs()) for topology-aware clusters, or rule='value' for the value-space count"
            )
    return sparse


def source_graphs(source: TableSource) -> Mapping[str, Any] | None:
    """The runs' graphs when the source can give them (analysis.RunSet can), else None."""
    graphs = getattr(source, "graphs", None)
    return graphs() if callable(graphs) else None


def polarization(
    states: Frame, by: Sequence[str] = ("step",), *, value: str = "value", dimension: str = "dimension"
) -> pl.DataFrame:
    """Spread and bimodality of positions per run, `by` group (and dimension).

    variance: population variance (ddof 0: the agents are the whole population, not a sample).
    bimodality: Sarle's coefficient from population moments, (m2³ + m3²) / (m2·m4) = (skew² + 1) /
    kurtosis: 1 for any two-point split, 5/9 for a uniform spread, 1/3 for a normal; NaN when all agree.
    Columns: run_id, *by, [dimension], variance, bimodality, n.
    """
    group = _groups(states, by, dimension)
    require(states, [*group, value], "polarization")
    x = pl.col(value).cast(pl.Float64)
    dev = x - x.mean()
    m2, m3, m4 = (dev**2).mean(), (dev**3).mean(), (dev**4).mean()
    return (
        lazy(states)
        .filter(pl.col(value).is_not_null())
        .group_by(group)
        .agg(
            m2.alias("variance"),
            pl.when(m4 > 0).then((m2**3 + m3**2) / (m2 * m4)).otherwise(float("nan")).alias("bimodality"),
            pl.len().cast(pl.Int64).alias("n"),
        )
        .sort(group)
        .collect()
    )


def time_to_consensus(
    states: Frame,
    *,
    step: str = "step",
    value: str = "value",
    dimension: str = "dimension",
    gap: float = GAP,
    min_share: float = MIN_SHARE,
    graphs: Mapping[str, Any] | None = None,
    rule: ClusterRule = "graph",
) -> pl.DataFrame:
    """First step from which a run is in consensus (one cluster holding all but at most `min_share` of
    the agents; see `cluster_counts`, whose `graphs` and `rule` it takes) and stays so at every later step.

    Per run (and dimension), one row for every run. `steps_to_consensus` is null when the run never
    settles into consensus; `reached` says which runs did, and `last_step` how long each was watched
    (a run that never converged is censored there, not missing).
    Columns: run_id, [dimension], steps_to_consensus, reached, last_step.
    """
    counts = cluster_counts(
        states, by=(step,), value=value, dimension=dimension, gap=gap, min_share=min_share, graphs=graphs, rule=rule
    )
    group = [c for c in ("run_id", dimension) if c in counts.columns]
    # Scan from the last step backwards: consensus holds from s on iff it holds at every step >= s.
    return (
        counts.sort([*group, step])
        .with_columns(pl.col("consensus").reverse().cum_min().reverse().over(group).alias("_settled"))
        .group_by(group)
        .agg(
            pl.col(step).filter(pl.col("_settled")).min().alias("steps_to_consensus"),
            pl.col(step).max().alias("last_step"),
        )
        .with_columns(pl.col("steps_to_consensus").is_not_null().alias("reached"))
        .select(*group, "steps_to_consensus", "reached", "last_step")
        .sort(group)
    )


def _dimension_mean(per_run: pl.DataFrame, value: str) -> pl.DataFrame:
    """Average a per-dimension measure over dimensions, per run and step."""
    return per_run.group_by("run_id", "step").agg(pl.col(value).cast(pl.Float64).mean()).sort("run_id", "step")


def _final(states: pl.LazyFrame) -> pl.LazyFrame:
    return states.filter(pl.col("step") == pl.col("step").max().over("run_id"))


def _clusters(source: TableSource, rule: ClusterRule, final: bool = False) -> pl.DataFrame:
    states = source.table("states")
    counts = cluster_counts(_final(states) if final else states, graphs=source_graphs(source), rule=rule)
    return _dimension_mean(counts, "clusters")


OPINION_METRICS = (
    Metric("clusters", "opinion clusters per recorded step (connected groups of neighbours within 0.01 of each "
           "other holding at least 1% of agents), mean over dimensions",
           lambda s: _clusters(s, "graph"), x="step", hold=True),
    Metric("value_clusters", "opinion clusters by the value-space rule (sorted positions split at gaps over 0.01; "
           "blind to the graph), mean over dimensions",
           lambda s: _clusters(s, "value").rename({"clusters": "value_clusters"}), x="step", hold=True),
    Metric("final_clusters", "opinion clusters in the final state (graph rule), mean over dimensions",
           lambda s: _clusters(s, "graph", final=True).drop("step").rename({"clusters": "final_clusters"}),
           plot="table"),
    Metric("variance", "variance of positions per recorded step, mean over dimensions",
           lambda s: _dimension_mean(polarization(s.table("states")), "variance"), x="step", hold=True),
    Metric("bimodality", "Sarle's bimodality coefficient per recorded step, mean over dimensions",
           lambda s: _dimension_mean(polarization(s.table("states")), "bimodality"), x="step", hold=True),
    Metric("steps_to_consensus", "first step from which a dimension is in consensus for good (one connected "
           "cluster holding all but 1% of agents; runs that never settle count in `reached`, not in the mean)",
           lambda s: time_to_consensus(s.table("states"), graphs=source_graphs(s))
           .with_columns(pl.col("steps_to_consensus").cast(pl.Float64)),
           hue="dimension", plot="table"),
)  # fmt: skip


# ---- the shared scenario part ------------------------------------------------------------------------------


class OpinionScenario(BaseScenario):
    """Initial positions, bounds, stubbornness, snapshots and tables of the bounded-confidence family."""

    tables = {
        "interactions": {
            "phase": pl.String(),
            "round": pl.Int32(),
            "speaker_id": pl.Int64(),
            "listener_id": pl.Int64(),
            "dimension": pl.String(),
            "heard": pl.Boolean(),
            "speaker_position": pl.Float64(),
            "position_before": pl.Float64(),
            "position_after": pl.Float64(),
            "message": pl.String(),
        },
        "states": {"agent_id": pl.Int64(), "dimension": pl.String(), "value": pl.Float64()},
    }
    metrics = OPINION_METRICS
    config: OpinionConfig
    strict: bool = True  # Deffuant hears at |d| < eps, Hegselmann-Krause at |d| <= eps

    def strategies(self) -> dict[str, ScriptedArguer]:
        mu = float(getattr(self.config, "mu", 0.5))
        return {BOUNDED_CONFIDENCE: ScriptedArguer(mu, stubborn=False), STUBBORN: ScriptedArguer(mu, stubborn=True)}

    def default_mix(self) -> dict[str, float]:
        return {BOUNDED_CONFIDENCE: 1.0}  # everyone

    def requirements(self, population: Population) -> list[str]:
        c = self.config
        needed = [f"value_{d}" for d in c.dimensions] if c.initial == "personas" else []
        if c.epsilon_trait:
            needed.append(c.epsilon_trait)
        return [
            f"{self.name} needs the persona column {col!r} (scenario.initial=personas / epsilon_trait); "
            "the population does not have it"
            for col in needed
            if col not in population.columns
        ][:1]

    def world_bytes(self, n: int, edges: float) -> float:
        """Positions and a step's copies (n x d floats, a few times), plus a per-edge pass on sparse graphs."""
        d = len(self.config.dimensions)
        return n * (32.0 + 24 * d) + 24.0 * 2 * min(edges, 50 * n)

    @property
    def movable(self) -> np.ndarray:
        """Bool per agent: stubborn agents never move (they still pull others)."""
        population, _ = self._bound()
        names = population.policy_names
        stubborn = [code for code, name in enumerate(names) if name == STUBBORN]
        return ~np.isin(population.policy_codes, stubborn) if stubborn else np.ones(population.size, bool)

    def movable_or_none(self) -> np.ndarray | None:
        """The mask for the kernel, None (its faster path) when everyone may move."""
        movable = self.movable
        return None if movable.all() else movable

    def initial_positions(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        population, graph = self._bound()
        c, n = self.config, population.size
        if graph.n != n:
            raise ValueError(f"graph has {graph.n} nodes but the population has {n} agents")
        if c.initial == "personas":
            positions = population.personas.select([f"value_{d}" for d in c.dimensions]).to_numpy()
        else:
            positions = rng.random((n, len(c.dimensions)))
        positions = np.array(positions, dtype=np.float64, order="C")  # a copy: polars may hand out read-only views
        if c.epsilon_trait is None:
            eps = np.full(n, c.epsilon)
        else:
            lo, hi = c.epsilon_trait_range
            eps = lo + (hi - lo) * population.personas.get_column(c.epsilon_trait).to_numpy().astype(np.float64)
        return positions, eps

    def max_steps(self, world: OpinionWorld) -> int:
        return self.config.max_steps

    def done(self, world: OpinionWorld) -> bool:
        return world.converged or world.steps_done >= self.config.max_steps

    def outcome(self, world: OpinionWorld) -> dict[str, Any]:
        return {"converged": bool(world.converged), "converged_at_step": world.converged_at}

    # ---- convergence (rule-driven dynamics) -----------------------------------------------------------
    def measure_spread(self, world: OpinionWorld, exact: bool = False) -> None:
        """Largest disagreement still heard; below `tolerance` nothing can change any more. Checked
        incrementally (see `bounded_confidence.SpreadCheck`): `world.spread` is then a lower bound
        while the run is far from converging, and exact when it converges, at the last step, or with
        `exact`."""
        _, graph = self._bound()
        check = getattr(self, "_spread_check", None)
        if check is None or check.eps is not world.eps or check.graph is not graph:
            check = self._spread_check = bc.SpreadCheck(graph, world.eps, self.strict, self.movable_or_none())
        last = world.steps_done >= self.config.max_steps
        if exact or last:
            world.spread = check.spread(world.positions)
            world.converged = world.spread < self.config.tolerance
        else:
            world.converged, world.spread = check.converged(world.positions, self.config.tolerance)
        if world.converged and world.converged_at is None:
            world.converged_at = world.steps_done

    def after_update(self, world: OpinionWorld) -> dict[str, float]:
        world.updates += 1
        world.steps_done += 1
        self.measure_spread(world)
        return {"spread": world.spread}

    def cluster_summary(self, world: OpinionWorld) -> dict[str, float]:
        """The progress line's cluster figures, means over dimensions: `clusters` (graph rule, valid on
        any graph: groups holding >= 1% of agents), `groups` (of any size), `largest_share` (agents in the
        largest) and `value_clusters` (the value-space rule). Computed for each recorded state (the
        states analysis reads; a union-find over the graph's edges per dimension is too dear for every
        step of a 100,000-node run)."""
        _, graph = self._bound()
        dims = range(world.positions.shape[1])
        by_graph = [bc.graph_clusters(world.positions[:, j], graph, GAP, MIN_SHARE) for j in dims]
        by_value = [bc.count_clusters(world.positions[:, j], GAP, MIN_SHARE) for j in dims]
        return {
            "clusters": float(np.mean([c.clusters for c in by_graph])),
            "groups": float(np.mean([c.groups for c in by_graph])),
            "largest_share": float(np.mean([c.largest_share for c in by_graph])),
            "value_clusters": float(np.mean(by_value)),
        }

    # ---- snapshots --------------------------------------------------------------------------------------
    def record_initial(self, world: OpinionWorld, tables: dict[str, pl.DataFrame]) -> bool:
        """Before the first step's dynamics: record the initial state (once). True when it did."""
        if world.recorded_at >= 0:
            return False
        tables["states"] = self.states(world)
        world.recorded_at = 0
        return True

    def record_due(self, world: OpinionWorld, tables: dict[str, pl.DataFrame], due: bool) -> dict[str, float]:
        """After a step's dynamics: a snapshot every `record_every` updates, and at the end. Returns the
        snapshot's cluster summary (empty when nothing was recorded)."""
        if (due or self.done(world)) and world.recorded_at != world.steps_done:
            snapshot = self.states(world)
            tables["states"] = pl.concat([tables["states"], snapshot]) if "states" in tables else snapshot
            world.recorded_at = world.steps_done
            return self.cluster_summary(world)
        return {}

    def finish(self, world: OpinionWorld) -> dict[str, pl.DataFrame]:
        """The final state, unless the last step already recorded it."""
        if world.recorded_at == world.steps_done:
            return {}
        world.recorded_at = world.steps_done
        return {"states": self.states(world)}

    def states(self, world: OpinionWorld) -> pl.DataFrame:
        n, d = world.positions.shape
        return pl.DataFrame(
            {
                "step": pl.repeat(world.steps_done, n * d, dtype=pl.Int64, eager=True),
                "agent_id": pl.Series(np.repeat(np.arange(n), d), dtype=pl.Int64),
                "dimension": pl.Series(self.config.dimensions, dtype=pl.String).gather(
                    pl.Series(np.tile(np.arange(d), n), dtype=pl.UInt32)
                ),
                # a copy: polars may share numpy memory, and Deffuant updates positions in place
                "value": pl.Series(world.positions.ravel().copy(), dtype=pl.Float64),
            }
        )

    def rows(
        self,
        *,
        phase: str,
        round_: np.ndarray,
        speaker: np.ndarray,
        listener: np.ndarray,
        dim: np.ndarray,
        heard: np.ndarray,
        speaker_position: np.ndarray,
        before: np.ndarray,
        after: np.ndarray,
        message: np.ndarray | None = None,
    ) -> pl.DataFrame:
        """Interaction rows, one per (listener, speaker, dimension)."""
        k = len(speaker)
        return pl.DataFrame(
            {
                "phase": pl.repeat(phase, k, dtype=pl.String, eager=True),
                "round": pl.Series(round_, dtype=pl.Int32),
                "speaker_id": pl.Series(speaker, dtype=pl.Int64),
                "listener_id": pl.Series(listener, dtype=pl.Int64),
                "dimension": pl.Series(self.config.dimensions, dtype=pl.String).gather(pl.Series(dim, dtype=pl.UInt32)),
                "heard": pl.Series(heard, dtype=pl.Boolean),
                "speaker_position": pl.Series(speaker_position, dtype=pl.Float64),
                "position_before": pl.Series(before, dtype=pl.Float64, nan_to_null=True),
                "position_after": pl.Series(after, dtype=pl.Float64, nan_to_null=True),
                "message": (
                    pl.repeat(None, k, dtype=pl.String, eager=True)
                    if message is None
                    else pl.Series(list(message), dtype=pl.String)
                ),
            }
        )


class RuleDrivenOpinions(OpinionScenario):
    """Deffuant and Hegselmann–Krause: nobody is asked anything; a rule moves everyone each step, and
    the run stops once nothing can change any more (no agent hears a neighbour beyond `tolerance`)."""

    World = OpinionWorld

    def specs(self) -> dict[str, ActionSpec]:
        return {}

    def init(self, rng: np.random.Generator) -> OpinionWorld:
        positions, eps = self.initial_positions(rng)
        world = OpinionWorld(positions=positions, eps=eps)
        self.measure_spread(world)
        return world

    def plan(self, world: OpinionWorld, step: int, rng: np.random.Generator) -> list[DecisionBatch]:
        return []

    def apply_rule(self, world: OpinionWorld, rng: np.random.Generator, tables: dict[str, pl.DataFrame]) -> dict:
        """Move the positions one step (in place or by assignment); add interaction rows; return summary numbers."""
        raise NotImplementedError

    def resolve(
        self,
        world: OpinionWorld,
        step: int,
        batches: list[DecisionBatch],
        decisions: list[Decisions],
        rng: np.random.Generator,
    ) -> StepResult:
        tables: dict[str, pl.DataFrame] = {}
        self.record_initial(world, tables)
        extra = self.apply_rule(world, rng, tables)
        summary = {**self.after_update(world), **extra}
        summary |= self.record_due(world, tables, due=world.updates % self.config.record_every == 0)
        return StepResult(world=world, tables=tables, summary=summary)
