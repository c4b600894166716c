"""Iterated prisoner's dilemma and Battle of the Sexes (Akata et al. 2023), every edge one match.

A step plays one round of every match at once: all decisions of the round form one batch, so
scripted strategies run as a few numpy operations over all matches. Moves are J (0) and F (1);
in the PD J is cooperate. In BoS the row player (the edge's lower agent id) prefers J.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.decisions import ActionSpec, ChoiceField, DecisionBatch, Decisions
from agents.population import Population
from agents.strategies.ipd import STRATEGIES, IPDStrategy
from scenarios.base import ScenarioConfig, SocialGraph, StepResult

MOVES = ("J", "F")
MOVE_SPEC = ActionSpec(
    name="ipd_move",
    fields=(ChoiceField(name="move", options=MOVES, description="Option J or Option F"),),
    max_tokens=2,
    temperature=0.0,
)


class PDPayoffs(BaseModel):
    """Row player's points: R both J, S J against F, T F against J, P both F."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    R: float = 8.0
    S: float = 0.0
    T: float = 10.0
    P: float = 5.0


class BoSPayoffs(BaseModel):
    """Coordinated on your favourite: `high`; on the other's: `low`; miscoordinated: `miss`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    high: float = 10.0
    low: float = 7.0
    miss: float = 0.0


class IPDConfig(ScenarioConfig):
    name: Literal["ipd"] = "ipd"
    game: Literal["pd", "bos"] = "pd"
    rounds: int = Field(default=10, ge=1, le=100_000)
    pd: PDPayoffs = PDPayoffs()
    bos: BoSPayoffs = BoSPayoffs()
    matches_per_agent: int | None = Field(
        default=None, ge=1, description="None: every edge plays; k: k random matchings along edges"
    )
    noise: float = Field(default=0.0, ge=0.0, le=1.0, description="probability an intended move flips")

    @model_validator(mode="after")
    def _finite(self) -> IPDConfig:
        for value in (*self.pd.model_dump().values(), *self.bos.model_dump().values()):
            if not np.isfinite(value):
                raise ValueError("payoffs must be finite numbers")
        return self

    def payoff_table(self) -> np.ndarray:
        """P[side, my_move, their_move] = (my points, their points)."""
        if self.game == "pd":
            p = self.pd
            row = np.array([[[p.R, p.R], [p.S, p.T]], [[p.T, p.S], [p.P, p.P]]])
            return np.stack([row, row])
        b = self.bos
        row = np.array([[[b.high, b.low], [b.miss, b.miss]], [[b.miss, b.miss], [b.low, b.high]]])
        col = np.array([[[b.low, b.high], [b.miss, b.miss]], [[b.miss, b.miss], [b.high, b.low]]])
        return np.stack([row, col])


@dataclass
class IPDWorld:
    """pairs[m] = (row player, column player); moves[m, side, r] in {0, 1}, -1 before it is played."""

    pairs: np.ndarray
    moves: np.ndarray
    round: int = 0


def random_matchings(graph: SocialGraph, k: int, rng: np.random.Generator) -> np.ndarray:
    """k rounds of a random maximal matching along edges, never reusing an edge: every agent plays
    at most k matches (exactly k on a complete graph with an even number of agents)."""
    edges = graph.edges
    used = np.zeros(len(edges), bool)
    chosen: list[int] = []
    for _ in range(k):
        busy = np.zeros(graph.n, bool)
        for e in rng.permutation(np.flatnonzero(~used)):
            u, v = edges[e]
            if not busy[u] and not busy[v]:
                busy[u] = busy[v] = True
                used[e] = True
                chosen.append(int(e))
    return edges[np.sort(np.array(chosen, dtype=np.int64))]


class IteratedGame:
    name = "ipd"
    Config = IPDConfig

    def __init__(self, config: IPDConfig) -> None:
        self.config = config
        self.payoffs = config.payoff_table()

    def policies(self) -> dict[str, IPDStrategy]:
        return {name: IPDStrategy(name) for name in STRATEGIES}

    def default_population_size(self) -> int | None:
        return None

    def default_mix(self) -> dict[str, float]:
        return dict.fromkeys(STRATEGIES, 1.0 / len(STRATEGIES))

    def table_schemas(self) -> dict[str, dict[str, pl.DataType]]:
        return {
            "interactions": {
                "match_id": pl.Int64(),
                "round": pl.Int32(),
                "actor_id": pl.Int64(),
                "target_id": pl.Int64(),
                "action": pl.String(),
                "flipped": pl.Boolean(),
                "payoff_actor": pl.Float64(),
                "payoff_target": pl.Float64(),
            }
        }

    def init(self, population: Population, graph: SocialGraph, rng: np.random.Generator) -> IPDWorld:
        k = self.config.matches_per_agent
        pairs = graph.edges if k is None else random_matchings(graph, k, rng)
        if len(pairs) == 0:
            raise ValueError("the graph has no edges: no matches to play")
        moves = np.full((len(pairs), 2, self.config.rounds), -1, np.int8)
        return IPDWorld(pairs=pairs.astype(np.int64), moves=moves)

    def max_steps(self, world: IPDWorld) -> int:
        return self.config.rounds

    def done(self, world: IPDWorld) -> bool:
        return world.round >= self.config.rounds

    def plan(self, world: IPDWorld, step: int, rng: np.random.Generator) -> list[DecisionBatch]:
        t, m = world.round, len(world.pairs)
        past = world.moves[:, :, :t]
        return [
            DecisionBatch(
                spec=MOVE_SPEC,
                agent_ids=world.pairs.reshape(-1),  # (m0 row, m0 col, m1 row, ...)
                obs={
                    "own": past.reshape(2 * m, t),
                    "opp": past[:, ::-1, :].reshape(2 * m, t),
                    "side": np.tile(np.array([0, 1], np.int8), m),
                },
                context={
                    "round": t,
                    "rounds": self.config.rounds,
                    "game": self.config.game,
                    "payoffs": self.payoffs.tolist(),
                },
            )
        ]

    def resolve(
        self,
        world: IPDWorld,
        step: int,
        batches: list[DecisionBatch],
        decisions: list[Decisions],
        rng: np.random.Generator,
    ) -> StepResult:
        t, m = world.round, len(world.pairs)
        intended = decisions[0].values["move"].astype(np.int8)
        flipped = rng.random(2 * m) < self.config.noise if self.config.noise else np.zeros(2 * m, bool)
        played = (intended ^ flipped).reshape(m, 2)
        world.moves[:, :, t] = played
        row, col = played[:, 0], played[:, 1]
        row_points = self.payoffs[0, row, col]  # [m, 2]: (row's, col's)
        actor_points = np.stack([row_points[:, 0], row_points[:, 1]], axis=1).reshape(-1)
        target_points = np.stack([row_points[:, 1], row_points[:, 0]], axis=1).reshape(-1)
        actors = world.pairs.reshape(-1)
        table = pl.DataFrame(
            {
                "match_id": np.repeat(np.arange(m, dtype=np.int64), 2),
                "round": np.full(2 * m, t + 1, np.int32),
                "actor_id": actors,
                "target_id": world.pairs[:, ::-1].reshape(-1),
                "action": pl.Series(MOVES).gather(played.reshape(-1)),
                "flipped": flipped,
                "payoff_actor": actor_points,
                "payoff_target": target_points,
                "_decision": np.arange(2 * m, dtype=np.int64),
            }
        )
        world.round = t + 1
        summary = {"J_rate": float(1.0 - played.mean()), "mean_payoff": float(actor_points.mean())}
        return StepResult(world=world, tables={"interactions": table}, summary=summary)

    def finish(self, world: IPDWorld) -> dict[str, pl.DataFrame]:
        return {}
