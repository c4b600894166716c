"""Donor game with cultural evolution of strategies (Vallinder & Hughes 2024; SCIENCE.md §1).

Every agent slot (`population.size` of them, = `agents_per_generation`) plays each generation's game
of `rounds` rounds, starting with `initial_resources`. In each round half of the agents give: a
donor passes `amount` (0 ≤ amount ≤ its resources) and the recipient gets `multiplier` x amount; in
the punishment variant a donor may instead spend `amount` so the recipient loses
`punishment_multiplier` x amount (floored at 0). Roles alternate strictly and partners do not repeat
where the population allows it: the schedule is in `scenarios/donor_pairing.py`.

With probability q (`observation_probability`) a donor sees the recipient's trace (what the
recipient did when it last gave, what that agent's recipient did before, ... `trace_depth` links)
and its public binary reputations (image scoring, simple standing, stern judging; a donation of
more than 0 counts as cooperation, a refusal or a punishment as defection). Reputations and traces
start afresh with each generation's game.

After the last round, the top `survivor_fraction` by final resources survive (ties at random) and
keep their strategies; the other slots get new agents. A new scripted agent copies a scripted
survivor's strategy, mutated with `mutation_rate` into another scripted strategy the run started
with. A new LLM agent writes its own strategy after seeing the survivors' strategies and scores.
A slot stays scripted or LLM for the whole run; its persona stays too.

Steps: a generation is `rounds` steps (one per round) plus, when any slot is LLM-driven, one step
before them in which the generation's new LLM agents write their strategies ("donor_strategy").
Generations and rounds are numbered from 1 in the tables; there is one game per generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from agents.decisions import ActionSpec, ChoiceField, DecisionBatch, Decisions, NumberField, TextField
from agents.population import Population
from agents.strategies.donor import donor_strategies
from scenarios.base import ScenarioConfig, SocialGraph, StepResult
from scenarios.donor_pairing import bipartite_round, neighbour_round, split_halves
from scenarios.donor_rules import NORMS, assess, inherit_scripted, settle, survivors, trace_links

MAX_ADVICE = 64  # a strategy prompt shows at most this many survivors
MAX_AMOUNT = 1e15  # the spec's static bound; the real one is the donor's resources (obs["bound_amount"])
ACTIONS = ("donate", "punish")


class DonorGameConfig(ScenarioConfig):
    name: Literal["donor_game"] = "donor_game"
    agents_per_generation: int | None = Field(
        default=12, ge=2, description="must equal population.size; null: whatever population.size is"
    )
    rounds: int = Field(default=12, ge=1, le=10_000)
    generations: int = Field(default=10, ge=1)
    initial_resources: float = Field(default=10.0, gt=0)
    multiplier: float = Field(default=2.0, gt=0, description="recipient gets multiplier x amount")
    trace_depth: int = Field(default=3, ge=0, le=50)
    observation_probability: float = Field(
        default=1.0, ge=0.0, le=1.0, description="q: chance a donor sees the recipient's trace/standing"
    )
    survivor_fraction: float = Field(default=0.5, gt=0.0, le=1.0)
    punishment: bool = False
    punishment_multiplier: float = Field(default=2.0, ge=0, description="punished recipient loses this x amount")
    mutation_rate: float = Field(default=0.05, ge=0.0, le=1.0)
    fraction: float = Field(
        default=0.5, ge=0.0, le=1.0,
        description="share of its resources a cooperating scripted agent gives (fixed_fraction, discriminators)",
    )  # fmt: skip
    temperature: float = Field(default=0.8, ge=0.0, le=2.0)
    strategy_chars: int = Field(default=500, ge=20, description="longest strategy an LLM agent may write")
    justification_chars: int = Field(default=300, ge=1)

    @model_validator(mode="after")
    def _finite(self) -> DonorGameConfig:
        for name in ("initial_resources", "multiplier", "punishment_multiplier"):
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"scenario.{name} must be a finite number")
        return self


def donation_spec(config: DonorGameConfig) -> ActionSpec:
    """Justification first, so a model reasons before it commits to a number (as in the paper)."""
    fields: list[Any] = [
        TextField(name="justification", max_chars=config.justification_chars,
                  description="very brief step-by-step reasoning"),
    ]  # fmt: skip
    if config.punishment:
        fields.append(ChoiceField(name="action", options=ACTIONS, description="donate or punish"))
    fields.append(NumberField(name="amount", minimum=0.0, maximum=MAX_AMOUNT,
                              description="units of your resources to give up"))  # fmt: skip
    return ActionSpec(
        name="donor_donation",
        fields=tuple(fields),
        max_tokens=4 * config.justification_chars + 48,  # byte-level tokens: a character may take several
        temperature=config.temperature,
    )


def strategy_spec(config: DonorGameConfig) -> ActionSpec:
    text = TextField(
        name="strategy", max_chars=config.strategy_chars, description="one sentence starting 'My strategy will be'"
    )
    return ActionSpec(
        name="donor_strategy",
        fields=(text,),
        max_tokens=4 * config.strategy_chars + 32,
        temperature=config.temperature,
    )


@dataclass
class DonorWorld:
    """Everything the run needs to continue (the checkpoint). Arrays are indexed by agent slot."""

    generation: int  # 1-based; generations + 1 once the run is over
    phase: int  # step within the generation: [strategy step,] round 1, round 2, ...
    resources: np.ndarray  # float64
    reputation: np.ndarray  # bool [norm, agent], public standing under each norm of NORMS
    codes: np.ndarray  # int16 policy code per slot (changes as strategies spread)
    llm: np.ndarray  # bool: slot driven by the LLM policy
    born: np.ndarray  # int32: generation the slot's current agent joined (its name is "{born}_{slot}")
    strategy: np.ndarray  # object: an LLM agent's own strategy text ("" for scripted)
    strategy_fallback: np.ndarray  # object: why the strategy is a fallback (None: it is the model's)
    parent_slot: np.ndarray  # int64: the survivor a scripted agent copied (-1: none)
    parent_born: np.ndarray  # int32: that survivor's generation of birth (its name is "{born}_{slot}")
    llm_parents: np.ndarray  # object: names of the survivors whose advice an LLM agent read
    needs_strategy: np.ndarray  # bool: LLM agents that still have to write a strategy
    advice: tuple[dict[str, Any], ...]  # survivors' names, scores and strategies, best first
    half: np.ndarray  # int8: 0 gives in rounds 1, 3, ...; 1 in rounds 2, 4, ...
    side_a: np.ndarray
    side_b: np.ndarray
    offsets: np.ndarray
    given_to: np.ndarray  # int32 [round, agent]: recipient, -1 if the agent did not give
    given_share: np.ndarray  # float32 [round, agent]: amount / resources before
    punished: np.ndarray  # bool [round, agent]
    names: tuple[str, ...]  # population.policy_names
    targets: np.ndarray  # codes of the scripted strategies the run started with (mutation targets)
    graph: SocialGraph | None = None  # None: complete graph (pairing by schedule)


class DonorGame:
    name = "donor_game"
    Config = DonorGameConfig

    def __init__(self, config: DonorGameConfig) -> None:
        self.config = config
        self.donation = donation_spec(config)
        self.writing = strategy_spec(config)

    # ---- declarations -------------------------------------------------------------------
    def policies(self) -> dict[str, Any]:
        return donor_strategies(self.config.fraction)

    def default_mix(self) -> dict[str, float]:
        """Scripted default: all five strategies, so cultural evolution has something to select."""
        return dict.fromkeys(self.policies(), 0.2)

    def default_population_size(self) -> int | None:
        """The paper's 12 agents per generation (for engines that let a scenario size the population)."""
        return self.config.agents_per_generation

    def table_schemas(self) -> dict[str, dict[str, pl.DataType]]:
        return {
            "interactions": {
                "generation": pl.Int32(),
                "game": pl.Int32(),
                "round": pl.Int32(),
                "actor_id": pl.Int64(),
                "target_id": pl.Int64(),
                "action": pl.String(),
                "amount": pl.Float64(),
                "fraction": pl.Float64(),
                "actor_before": pl.Float64(),
                "actor_after": pl.Float64(),
                "target_before": pl.Float64(),
                "target_after": pl.Float64(),
                "observed": pl.Boolean(),
                "trace": pl.String(),
                "justification": pl.String(),
            },
            "states": {
                "generation": pl.Int32(),
                "round": pl.Int32(),
                "agent_id": pl.Int64(),
                "resources": pl.Float64(),
                **{f"good_{norm}": pl.Boolean() for norm in NORMS},
            },
            "strategies": {
                "generation": pl.Int32(),
                "agent_id": pl.Int64(),
                "agent_name": pl.String(),
                "born": pl.Int32(),
                "policy": pl.String(),
                "strategy": pl.String(),
                "parents": pl.List(pl.String()),
                "final_resources": pl.Float64(),
                "survived": pl.Boolean(),
                "strategy_fallback": pl.String(),
            },
        }

    # ---- life cycle ---------------------------------------------------------------------
    def init(self, population: Population, graph: SocialGraph | None, rng: np.random.Generator) -> DonorWorld:
        cfg, n = self.config, population.size
        if cfg.agents_per_generation is not None and n != cfg.agents_per_generation:
            raise ValueError(
                f"donor_game: population.size is {n} but scenario.agents_per_generation is "
                f"{cfg.agents_per_generation}; make them equal (or set scenario.agents_per_generation=null)"
            )
        complete = graph is None or graph.is_complete
        if complete and n % 2:
            raise ValueError(
                f"donor_game: population.size must be even on a complete graph (agents play in pairs); got {n}"
            )
        names = tuple(population.policy_names)
        codes = np.asarray(population.policy_codes, np.int16).copy()
        llm = (codes == names.index("llm")) if "llm" in names else np.zeros(n, bool)
        world = DonorWorld(
            generation=1,
            phase=0,
            resources=np.full(n, cfg.initial_resources),
            reputation=np.ones((len(NORMS), n), bool),
            codes=codes,
            llm=llm,
            born=np.ones(n, np.int32),
            strategy=np.full(n, "", dtype=object),
            strategy_fallback=np.full(n, None, dtype=object),
            parent_slot=np.full(n, -1, np.int64),
            parent_born=np.zeros(n, np.int32),
            llm_parents=np.full(n, None, dtype=object),
            needs_strategy=llm.copy(),
            advice=(),
            half=np.zeros(n, np.int8),
            side_a=np.zeros(0, np.int64),
            side_b=np.zeros(0, np.int64),
            offsets=np.zeros(0, np.int64),
            given_to=np.full((cfg.rounds, n), -1, np.int32),
            given_share=np.zeros((cfg.rounds, n), np.float32),
            punished=np.zeros((cfg.rounds, n), bool),
            names=names,
            targets=np.unique(codes[~llm]),
            graph=None if complete else graph,
        )
        self._new_game(world, rng)
        return world

    def _steps_per_generation(self, world: DonorWorld) -> int:
        return self.config.rounds + int(world.llm.any())

    def max_steps(self, world: DonorWorld) -> int:
        return self.config.generations * self._steps_per_generation(world)

    def done(self, world: DonorWorld) -> bool:
        return world.generation > self.config.generations

    def _round(self, world: DonorWorld) -> int:
        """0-based round of the current step, or -1 on a strategy-writing step."""
        return world.phase - int(world.llm.any())

    # ---- plan -----------------------------------------------------------------------------
    def plan(self, world: DonorWorld, step: int, rng: np.random.Generator) -> list[DecisionBatch]:
        if self.done(world):
            return []
        t = self._round(world)
        if t < 0:
            return self._plan_strategies(world)
        donors, recipients = self._pairs(world, t, rng)
        cfg, n = self.config, len(donors)
        observed = rng.random(n) < cfg.observation_probability
        obs: dict[str, np.ndarray] = {
            "recipient": recipients,
            "resources": world.resources[donors],
            "bound_amount": world.resources[donors],
            "recipient_resources": world.resources[recipients],
            "observed": observed,
            **{f"good_{norm}": world.reputation[k, recipients] for k, norm in enumerate(NORMS)},
        }
        if world.llm.any():  # the text an LLM donor reads (scripted policies need none of it)
            for key in ("name", "recipient_name", "trace", "strategy"):
                obs[key] = np.full(n, "", dtype=object)
        for i in np.flatnonzero(world.llm[donors]):
            obs["name"][i] = _name(world, donors[i])
            obs["recipient_name"][i] = _name(world, recipients[i])
            obs["strategy"][i] = world.strategy[donors[i]]
            if observed[i]:
                obs["trace"][i] = self._trace_text(world, int(recipients[i]), t)
        context = {"generation": world.generation, "round": t + 1, **self._rules_context()}
        batch = DecisionBatch(spec=self.donation, agent_ids=donors, obs=obs, context=context)
        batch.policies = world.codes[donors].copy()
        return [batch]

    def _rules_context(self) -> dict[str, object]:
        """The game's rules as the prompts state them (the same for donations and strategy writing)."""
        cfg = self.config
        return {
            "multiplier": cfg.multiplier,
            "punishment": cfg.punishment,
            "punishment_multiplier": cfg.punishment_multiplier,
            "initial_resources": cfg.initial_resources,
            "trace_depth": cfg.trace_depth,
        }

    def _plan_strategies(self, world: DonorWorld) -> list[DecisionBatch]:
        writers = np.flatnonzero(world.needs_strategy)
        if not len(writers):
            return []
        cfg = self.config
        batch = DecisionBatch(
            spec=self.writing,
            agent_ids=writers,
            obs={"name": np.array([_name(world, i) for i in writers], dtype=object)},
            context={
                "generation": world.generation,
                "advice": world.advice,
                **self._rules_context(),
                "fraction": cfg.fraction,
                "survivor_fraction": cfg.survivor_fraction,
            },
        )
        batch.policies = world.codes[writers].copy()
        return [batch]

    def _pairs(self, world: DonorWorld, t: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if world.graph is None:
            donors, recipients = bipartite_round(t, world.side_a, world.side_b, world.offsets)
        else:
            donors, recipients = neighbour_round(t, world.half, world.graph, world.given_to, rng)
        return donors.astype(np.int64), recipients.astype(np.int64)

    def _trace_text(self, world: DonorWorld, recipient: int, t: int) -> str:
        """'In round k, A donated 40% of their resources to B.' for each link of the trace."""
        lines = []
        for k, actor, target in trace_links(recipient, t, self.config.trace_depth, world.half, world.given_to):
            share = f"{100.0 * float(world.given_share[k, actor]):.0f}% of their resources"
            did = f"spent {share} to punish" if world.punished[k, actor] else f"donated {share} to"
            lines.append(f"In round {k + 1}, {_name(world, actor)} {did} {_name(world, target)}.")
        return "\n".join(lines)

    # ---- resolve --------------------------------------------------------------------------
    def resolve(
        self,
        world: DonorWorld,
        step: int,
        batches: list[DecisionBatch],
        decisions: list[Decisions],
        rng: np.random.Generator,
    ) -> StepResult:
        t = self._round(world)
        if t < 0:
            for batch, answer in zip(batches, decisions, strict=True):
                world.strategy[batch.agent_ids] = answer.values["strategy"]
                world.strategy_fallback[batch.agent_ids] = answer.fallback_reason
                world.needs_strategy[batch.agent_ids] = False
            world.phase += 1
            return StepResult(world=world, summary={"strategies_written": float(sum(map(len, batches)))})
        batch, answer = batches[0], decisions[0]
        tables, summary = self._play(world, t, batch, answer)
        world.phase += 1
        if t == self.config.rounds - 1:
            tables["strategies"] = self._end_generation(world, rng)
            summary["mean_final_resources"] = float(tables["strategies"]["final_resources"].mean())
        return StepResult(world=world, tables=tables, summary=summary)

    def _play(
        self, world: DonorWorld, t: int, batch: DecisionBatch, answer: Decisions
    ) -> tuple[dict[str, pl.DataFrame], dict[str, float]]:
        cfg = self.config
        donors, recipients = batch.agent_ids, batch.obs["recipient"]
        before = world.resources
        amount = np.clip(np.nan_to_num(answer.values["amount"].astype(np.float64)), 0.0, before[donors])
        punish = (answer.values["action"] == 1) if cfg.punishment else np.zeros(len(donors), bool)
        after = settle(before, donors, recipients, amount, punish, cfg.multiplier, cfg.punishment_multiplier)
        share = np.divide(amount, before[donors], out=np.zeros_like(amount), where=before[donors] > 0)
        world.reputation = assess(world.reputation, donors, recipients, (amount > 0) & ~punish)
        world.given_to[t, donors] = recipients
        world.given_share[t, donors] = share
        world.punished[t, donors] = punish
        world.resources = after
        n, m = len(before), len(donors)
        llm_rows = world.llm[donors]
        interactions = pl.DataFrame(
            {
                "generation": np.full(m, world.generation, np.int32),
                "game": np.full(m, world.generation, np.int32),
                "round": np.full(m, t + 1, np.int32),
                "actor_id": donors,
                "target_id": recipients,
                "action": pl.Series(ACTIONS).gather(punish.astype(np.int64)),
                "amount": amount,
                "fraction": share,
                "actor_before": before[donors],
                "actor_after": after[donors],
                "target_before": before[recipients],
                "target_after": after[recipients],
                "observed": batch.obs["observed"],
                "trace": _text_where(batch.obs.get("trace"), llm_rows & batch.obs["observed"]),
                "justification": _text_where(answer.values["justification"], llm_rows),
                "_decision": np.arange(m, dtype=np.int64),
            }
        )
        states = pl.DataFrame(
            {
                "generation": np.full(n, world.generation, np.int32),
                "round": np.full(n, t + 1, np.int32),
                "agent_id": np.arange(n, dtype=np.int64),
                "resources": after,
                **{f"good_{norm}": world.reputation[k] for k, norm in enumerate(NORMS)},
            }
        )
        summary = {
            "mean_resources": float(after.mean()),
            "mean_fraction": float(share.mean()) if m else 0.0,
            "punish_rate": float(punish.mean()) if m else 0.0,
        }
        return {"interactions": interactions, "states": states}, summary

    def _end_generation(self, world: DonorWorld, rng: np.random.Generator) -> pl.DataFrame:
        """Select survivors, record the generation's strategies, seat the new agents, reset the game."""
        cfg, n, g = self.config, len(world.resources), world.generation
        final = world.resources.copy()
        survived = survivors(final, cfg.survivor_fraction, rng)
        names = np.array(world.names, dtype=object)
        policy = pl.Series(world.names, dtype=pl.String).gather(world.codes)
        if world.llm.any():  # an LLM agent's strategy is its text; a scripted agent's is its policy name
            strategy = pl.Series(np.where(world.llm, world.strategy, names[world.codes]).tolist(), dtype=pl.String)
            fallback = pl.Series([None if f is None else str(f) for f in world.strategy_fallback], dtype=pl.String)
        else:
            strategy, fallback = policy, pl.repeat(None, n, dtype=pl.String, eager=True)
        table = pl.DataFrame(
            {
                "generation": np.full(n, g, np.int32),
                "agent_id": np.arange(n, dtype=np.int64),
                "agent_name": _names(world.born, np.arange(n)),
                "born": world.born,
                "policy": policy,
                "strategy": strategy,
                "parents": self._parents_column(world),
                "final_resources": final,
                "survived": survived,
                "strategy_fallback": fallback,
            }
        )
        # survivors keep their strategies (best first in the advice new LLM agents read)
        order = np.flatnonzero(survived)[np.argsort(-final[survived], kind="stable")]
        world.advice = tuple(
            {
                "name": _name(world, i),
                "score": float(final[i]),
                "policy": str(names[world.codes[i]]),
                "text": str(world.strategy[i]) if world.llm[i] else "",
            }
            for i in order[:MAX_ADVICE]
        )
        new_codes, parent = inherit_scripted(world.codes, survived, ~world.llm, world.targets, cfg.mutation_rate, rng)
        newborn = ~survived
        seeded = newborn & (parent >= 0)
        world.parent_slot = np.where(newborn, parent, world.parent_slot)
        world.parent_born = np.where(seeded, world.born[np.maximum(parent, 0)], world.parent_born).astype(np.int32)
        advisors = tuple(a["name"] for a in world.advice)
        for i in np.flatnonzero(newborn & world.llm):
            world.llm_parents[i] = advisors
        world.codes = new_codes.astype(np.int16)
        world.born = np.where(newborn, g + 1, world.born).astype(np.int32)
        world.strategy = np.where(newborn, "", world.strategy).astype(object)
        world.strategy_fallback = np.where(newborn, None, world.strategy_fallback).astype(object)
        world.needs_strategy = newborn & world.llm
        world.generation = g + 1
        world.phase = 0
        world.resources = np.full(n, cfg.initial_resources)
        world.reputation = np.ones_like(world.reputation)
        world.given_to.fill(-1)
        world.given_share.fill(0.0)
        world.punished.fill(False)
        self._new_game(world, rng)
        return table

    @staticmethod
    def _parents_column(world: DonorWorld) -> pl.Series:
        """Scripted agents: [the survivor they copied]; LLM agents: the survivors whose advice they read."""
        frame = pl.DataFrame({"name": _names(world.parent_born, world.parent_slot), "has": world.parent_slot >= 0})
        column = frame.select(
            pl.concat_list(pl.when("has").then("name")).list.drop_nulls().alias("parents")
        ).to_series()
        if not world.llm.any():
            return column
        rows = column.to_list()
        for i in np.flatnonzero(world.llm):
            rows[i] = list(world.llm_parents[i] or ())
        return pl.Series("parents", rows, dtype=pl.List(pl.String))

    def _new_game(self, world: DonorWorld, rng: np.random.Generator) -> None:
        """Draw the next game's halves and pairing offsets (see scenarios/donor_pairing.py)."""
        world.half, world.side_a, world.side_b = split_halves(len(world.resources), rng)
        world.offsets = rng.permutation(len(world.side_b)) if world.graph is None else np.zeros(0, np.int64)

    def finish(self, world: DonorWorld) -> dict[str, pl.DataFrame]:
        return {}


def _name(world: DonorWorld, slot: int) -> str:
    """The paper's naming: '<generation the agent joined>_<slot>'."""
    return f"{int(world.born[slot])}_{int(slot)}"


def _names(born: np.ndarray, slot: np.ndarray) -> pl.Series:
    """Vectorised `_name`: '<born>_<slot>' for many agents at once."""
    frame = pl.DataFrame({"b": np.asarray(born, np.int64), "s": np.asarray(slot, np.int64)})
    return frame.select(pl.concat_str([pl.col("b"), pl.lit("_"), pl.col("s")])).to_series()


def _text_where(values: np.ndarray | None, mask: np.ndarray) -> pl.Series:
    """Text where `mask`, null elsewhere (scripted agents neither see nor write text)."""
    if values is None or not mask.any():
        return pl.repeat(None, len(mask), dtype=pl.String, eager=True)
    out = np.full(len(mask), None, dtype=object)
    out[mask] = values[mask]
    return pl.Series(out.tolist(), dtype=pl.String)
