"""The linear public goods game (Ledyard 1995; Fischbacher, Gächter & Fehr 2001) as a socsim scenario
installed from its own package: this module and `public_goods.yaml` beside it are the whole game.

Each round the agents play in fixed groups of `group_size`. Every player receives `endowment` units
and puts `contribution` of them into the group's pot; the pot is multiplied by `multiplier` and
shared equally. A player earns endowment - contribution + multiplier x pot / group_size, so free
riding pays for the individual and contributing pays for the group whenever 1 < multiplier < group size.

Scripted strategies: free riders (give nothing), unconditional contributors (give everything) and
conditional cooperators (give what their group gave on average last round; the whole endowment in
round 1), after Fischbacher, Gächter & Fehr (2001). A missing answer from a language model (no usable
reply) is no contribution of zero: that player sits the round out (its contribution and payoff are
null), and the pot is shared among the players of its group who played.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from agents.decisions import ActionSpec, DecisionBatch, Decisions, NumberField
from agents.prompts import Prompt, PromptTemplate
from scenarios import BaseScenario, Metric, ScenarioConfig, StepResult, World
from scenarios.tables import rate


class PublicGoodsConfig(ScenarioConfig):
    name: Literal["public_goods"] = "public_goods"
    prompts: dict[str, str | None] = Field(default_factory=lambda: {"pg_contribution": None})
    rounds: int = Field(default=10, ge=1, le=10_000)
    group_size: int = Field(default=4, ge=2)
    endowment: float = Field(default=20.0, gt=0)
    multiplier: float = Field(default=1.6, gt=0)

    @model_validator(mode="after")
    def _social_dilemma(self) -> PublicGoodsConfig:
        if not 1 < self.multiplier < self.group_size:
            raise ValueError(f"multiplier must be between 1 and group_size={self.group_size}, got {self.multiplier}")
        return self


@dataclass
class PublicGoodsWorld(World):
    group: np.ndarray  # int64 group of each agent (fixed for the run)
    last_group_mean: np.ndarray  # float64 per group: mean contribution in the last round (nan before)
    round: int = 0


CONTRIBUTION_PROMPT = Prompt(
    template=PromptTemplate(
        system=(
            "You are playing a game with {others} other people, repeated for several rounds. In every round each "
            "player receives {endowment} units and decides how many of them to put into a common pot. The pot is "
            "multiplied by {multiplier} and shared equally among all {group_size} players, whatever they put in. "
            "Units you keep are yours.\n\n{persona_text}"
        ),
        user="This is round {round}. {last_round}\nHow many of your {endowment} units do you put into the pot? "
        'Reply in JSON as {{"contribution": <units>}}.',
    ),
    variables=("others", "endowment", "multiplier", "group_size", "round", "last_round"),
)


@dataclass(frozen=True)
class Contribute:
    """Scripted: a fixed share of the endowment, or (conditional) what the group gave last round."""

    share: float | None  # None: conditional cooperator

    def decide(self, batch: DecisionBatch) -> dict[str, np.ndarray]:
        endowment = float(batch.context["endowment"])
        if self.share is not None:
            return {"contribution": np.full(len(batch), self.share * endowment)}
        last = batch.obs["last_group_mean"]
        return {"contribution": np.where(np.isnan(last), endowment, last)}


def _contribution(source: Any) -> pl.DataFrame:
    frame = source.table("interactions")
    return (
        frame.filter(pl.col("contribution").is_not_null())
        .group_by("run_id", "round")
        .agg((pl.col("contribution") / pl.col("endowment")).mean().alias("contribution"))
        .sort("run_id", "round")
        .collect()
    )


class PublicGoods(BaseScenario[PublicGoodsConfig, PublicGoodsWorld]):
    name = "public_goods"
    Config = PublicGoodsConfig
    World = PublicGoodsWorld
    prompts = {"pg_contribution": CONTRIBUTION_PROMPT}
    tables = {
        "interactions": {
            "round": pl.Int32(),
            "actor_id": pl.Int64(),
            "group": pl.Int64(),
            "endowment": pl.Float64(),
            "contribution": pl.Float64(),
            "pot": pl.Float64(),
            "payoff": pl.Float64(),
        }
    }
    metrics = (
        Metric("contribution", "mean share of the endowment put into the pot, per round", _contribution, x="round"),
        Metric(
            "full_contribution", "share of players who gave their whole endowment, per round",
            lambda s: rate(s.table("interactions"), pl.col("contribution") >= pl.col("endowment"), "round",
                           "full_contribution", "full_contribution"),
            x="round",
        ),
    )  # fmt: skip

    def specs(self) -> dict[str, ActionSpec]:
        field = NumberField(name="contribution", minimum=0.0, maximum=self.config.endowment)
        return {"pg_contribution": ActionSpec(name="pg_contribution", fields=(field,), max_tokens=24, temperature=0.7)}

    def strategies(self) -> dict[str, Contribute]:
        return {"free_rider": Contribute(0.0), "contributor": Contribute(1.0), "conditional": Contribute(None)}

    def default_mix(self) -> dict[str, float]:
        return {"free_rider": 0.25, "contributor": 0.25, "conditional": 0.5}

    def prompt_variables(self, spec: str, obs: dict, context: dict, seed: int) -> dict[str, Any]:
        last = float(obs["last_group_mean"])
        last_round = (
            "This is the first round." if np.isnan(last)
            else f"Last round your group put in {last:.1f} units per player on average."
        )  # fmt: skip
        c = self.config
        return {"others": c.group_size - 1, "endowment": f"{c.endowment:g}", "multiplier": f"{c.multiplier:g}",
                "group_size": c.group_size, "round": context["round"], "last_round": last_round}  # fmt: skip

    def requirements(self, population: Any) -> list[str]:
        if population.size % self.config.group_size:
            return [f"public_goods: population.size={population.size} is not a multiple of "
                    f"scenario.group_size={self.config.group_size}"]  # fmt: skip
        return []

    def init(self, rng: np.random.Generator) -> PublicGoodsWorld:
        population, _ = self._bound()
        groups = population.size // self.config.group_size
        group = rng.permutation(np.repeat(np.arange(groups), self.config.group_size))
        return PublicGoodsWorld(group=group.astype(np.int64), last_group_mean=np.full(groups, np.nan))

    def max_steps(self, world: PublicGoodsWorld) -> int:
        return self.config.rounds

    def done(self, world: PublicGoodsWorld) -> bool:
        return world.round >= self.config.rounds

    def plan(self, world: PublicGoodsWorld, step: int, rng: np.random.Generator) -> list[DecisionBatch]:
        agents = np.arange(len(world.group))
        endowment = np.full(len(agents), self.config.endowment)
        return [
            DecisionBatch(
                spec=self.specs()["pg_contribution"],
                agent_ids=agents,
                obs={"last_group_mean": world.last_group_mean[world.group]},
                context={"round": world.round + 1, "endowment": self.config.endowment},
                bounds={"contribution": endowment},
            )
        ]

    def resolve(
        self,
        world: PublicGoodsWorld,
        step: int,
        batches: list[DecisionBatch],
        decisions: list[Decisions],
        rng: np.random.Generator,
    ) -> StepResult:
        c = self.config
        played = ~decisions[0].missing  # a player without an answer sits the round out
        given = np.clip(np.nan_to_num(decisions[0].values["contribution"].astype(np.float64)), 0.0, c.endowment)
        given = np.where(played, given, 0.0)
        pot = np.bincount(world.group, weights=given)
        players = np.maximum(np.bincount(world.group, weights=played.astype(np.float64)), 1.0)
        payoff = np.where(played, c.endowment - given + c.multiplier * pot[world.group] / players[world.group], np.nan)
        n = len(given)
        table = pl.DataFrame(
            {
                "round": np.full(n, world.round + 1, np.int32),
                "actor_id": np.arange(n, dtype=np.int64),
                "group": world.group,
                "endowment": np.full(n, c.endowment),
                "contribution": pl.Series(np.where(played, given, np.nan), nan_to_null=True),
                "pot": pot[world.group],
                "payoff": pl.Series(payoff, nan_to_null=True),
            }
        )
        world.last_group_mean = pot / players
        world.round += 1
        summary = {"contribution": float(given.mean() / c.endowment)}
        return StepResult(world, {"interactions": table}, summary, {"interactions": np.arange(n, dtype=np.int64)})
