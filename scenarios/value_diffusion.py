"""Value diffusion by bounded confidence: Deffuant–Weisbuch, Hegselmann–Krause, or LLM agents that argue.

Each agent holds a position in [0, 1] on one or more value dimensions (by default the ten Schwartz
values of its persona). Dimensions evolve independently, but one meeting covers them all.

What a step is:
- `deffuant`: `matchings_per_step` random matchings along edges, applied one after another. A
  matching on the complete graph is ⌊n/2⌋ disjoint pairs (N=1000: 500 pair draws, so a step is
  5,000 draws and SCIENCE.md's 10^6 draws are 200 steps); on other graphs about n/4 pairs (see
  `bounded_confidence.random_matching`).
- `hk`: one synchronous Hegselmann–Krause update.
- `llm`: a meeting takes two steps. Speak step: the agents of a random matching (both directions
  of each pair, one random dimension per pair) write a short argument. Listen step: each listener
  reads its partner's argument and reports its new position. In `llm_mode=filter` a listener only
  meets partners within its ε on that dimension (others are recorded as not heard, no call made);
  in `free` mode everyone is heard and the model decides. With `llm_answer=likert` the listener
  answers on a 7-point scale: a new point moves it there; its current point keeps its exact position
  (no drift from rounding). Stubborn agents never move, whatever they answer.
Rule-driven models stop early once no agent still hears a neighbour more than `tolerance` away.

Records:
- `states`: agent_id, dimension, value, and `step` = number of completed steps (0 is the initial
  state; interactions at engine step t move the state from t to t+1). Written every `record_every`
  position updates and always at the end.
- `interactions`: one row per (listener, speaker, dimension) and act. Scripted models write them
  only with `record_interactions=true` (volume: Deffuant 2 rows per pair per dimension, HK one row
  per directed edge per dimension every step); LLM runs write them by default, with the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field, ValidationInfo, field_validator, model_validator

from agents.decisions import ActionSpec, ChoiceField, DecisionBatch, Decisions, NumberField, TextField
from agents.persona import BIG_FIVE, SCHWARTZ_VALUES
from agents.population import Population
from scenarios import bounded_confidence as bc
from scenarios.base import ScenarioConfig, SocialGraph, StepResult

LIKERT_POINTS = 7
TRAIT_COLUMNS = tuple(f"big5_{t}" for t in BIG_FIVE) + tuple(f"value_{v}" for v in SCHWARTZ_VALUES)
BOUNDED_CONFIDENCE, STUBBORN = "bounded_confidence", "stubborn"


class ValueDiffusionConfig(ScenarioConfig):
    name: Literal["value_diffusion"] = "value_diffusion"
    model: Literal["deffuant", "hk", "llm"] = "deffuant"
    initial: Literal["personas", "uniform"] = "personas"  # before `dimensions`, whose check reads it
    dimensions: tuple[str, ...] = Field(default=SCHWARTZ_VALUES, min_length=1)
    epsilon: float = Field(default=0.2, gt=0.0, description="confidence bound")
    epsilon_trait: str | None = Field(
        default=None,
        description="persona column (big5_* or value_*) mapped into epsilon_trait_range per agent",
    )
    epsilon_trait_range: tuple[float, float] = (0.05, 0.5)
    mu: float = Field(default=0.5, gt=0.0, le=0.5, description="Deffuant convergence rate")
    matchings_per_step: int = Field(default=10, ge=1, le=10_000)
    max_steps: int | None = Field(default=None, ge=1, description="None: 5000 deffuant, 1000 hk, 6 llm")
    tolerance: float = Field(default=1e-3, gt=0.0, lt=1.0)
    record_every: int | None = Field(default=None, ge=1, description="None: 10 for rules, 1 for llm")
    record_interactions: bool | None = Field(default=None, description="None: true for llm, false for rules")
    llm_mode: Literal["filter", "free"] = "filter"
    llm_answer: Literal["number", "likert"] = "number"
    argument_chars: int = Field(default=240, ge=20, le=2000)

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

    @model_validator(mode="after")
    def _whole_meetings(self) -> ValueDiffusionConfig:
        # An LLM meeting is a speak step then a listen step: an odd limit would pay for arguments
        # nobody hears.
        if self.model == "llm" and self.max_steps is not None and self.max_steps % 2:
            raise ValueError(f"max_steps must be even with model=llm (a meeting takes two steps), got {self.max_steps}")
        return self

    @field_validator("epsilon_trait_range")
    @classmethod
    def _ordered_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 < value[0] <= value[1]:
            raise ValueError(f"need 0 < low <= high, got {list(value)}")
        return value

    @property
    def steps_limit(self) -> int:
        return self.max_steps or {"deffuant": 5000, "hk": 1000, "llm": 6}[self.model]

    @property
    def interval(self) -> int:
        return self.record_every or (1 if self.model == "llm" else 10)

    @property
    def records_interactions(self) -> bool:
        return self.model == "llm" if self.record_interactions is None else self.record_interactions


def argument_spec(config: ValueDiffusionConfig) -> ActionSpec:
    """The speaker's turn: a short text (an empty argument is the fallback)."""
    text = TextField(name="argument", max_chars=config.argument_chars, description="a short argument for your view")
    return ActionSpec(
        name="value_argument",
        fields=(text,),
        max_tokens=max(32, config.argument_chars // 2),
    )


def update_spec(config: ValueDiffusionConfig) -> ActionSpec:
    """The listener's answer. A fallback answer means "no usable reply": resolve keeps the old position."""
    if config.llm_answer == "likert":
        options = tuple(str(k) for k in range(1, LIKERT_POINTS + 1))
        field_ = ChoiceField(name="position", options=options, description="1 = not important at all, 7 = extremely")
        return ActionSpec(name="value_update", fields=(field_,), max_tokens=2)
    number = NumberField(
        name="position", minimum=0.0, maximum=1.0, description="0 = not important at all, 1 = extremely"
    )
    return ActionSpec(name="value_update", fields=(number,), max_tokens=16)


def to_likert(x: np.ndarray) -> np.ndarray:
    """Position in [0, 1] -> option index 0..6 (nearest point)."""
    return np.rint(np.asarray(x) * (LIKERT_POINTS - 1)).astype(np.int16)


def from_likert(index: np.ndarray) -> np.ndarray:
    return np.asarray(index, np.float64) / (LIKERT_POINTS - 1)


def _null_where_negative(index: np.ndarray) -> pl.Series:
    """Decision indices as Int64, null (no decision) where negative."""
    column = pl.Series(index, dtype=pl.Int64)
    return pl.select(pl.when(column >= 0).then(column)).to_series()


# --- scripted policies for LLM-mode populations ---------------------------------------------------


@dataclass(frozen=True)
class ScriptedArguer:
    """A rule-following agent in an LLM run: states its position; as a listener it applies the
    Deffuant rule (`mu`, own ε) to the speaker's true position, or never moves when `stubborn`."""

    mu: float
    stubborn: bool

    def decide(self, batch: DecisionBatch) -> dict[str, np.ndarray]:
        own = batch.obs["position"]
        if batch.spec.name == "value_argument":
            said = np.char.mod("On this value I stand at %.2f on a scale from 0 to 1.", own)
            return {"argument": said.astype(object)}
        new = own.copy()
        if not self.stubborn:
            diff = batch.obs["speaker_position"] - own
            new = own + self.mu * diff * (np.abs(diff) < batch.obs["epsilon"])
        if batch.spec.fields[0].kind == "choice":
            return {"position": to_likert(new)}
        return {"position": np.clip(new, 0.0, 1.0)}


# --- world -----------------------------------------------------------------------------------------


@dataclass
class Meetings:
    """The directed meetings of one LLM round (speaker -> listener about one dimension)."""

    speaker: np.ndarray
    listener: np.ndarray
    dim: np.ndarray
    heard: np.ndarray
    argument: np.ndarray  # object: the speaker's text, filled by the speak step


@dataclass
class ValueWorld:
    graph: SocialGraph
    positions: np.ndarray  # (n, d)
    eps: np.ndarray  # (n,)
    movable: np.ndarray  # (n,) bool: stubborn agents never move

    @property
    def movable_or_none(self) -> np.ndarray | None:
        """The mask for the bounded-confidence kernels, None (faster path) when everyone may move."""
        return None if self.movable.all() else self.movable

    names: np.ndarray | None = None  # object (n,): LLM mode, for prompts
    steps_done: int = 0
    updates: int = 0
    recorded_at: int = -1  # steps_done of the last state snapshot
    spread: float = float("inf")
    converged: bool = False
    meetings: Meetings | None = None
    phase: Literal["speak", "listen"] = "speak"


class ValueDiffusion:
    name = "value_diffusion"
    Config = ValueDiffusionConfig

    def __init__(self, config: ValueDiffusionConfig) -> None:
        self.config = config
        self.argument_spec = argument_spec(config)
        self.update_spec = update_spec(config)

    def policies(self) -> dict[str, ScriptedArguer]:
        return {
            BOUNDED_CONFIDENCE: ScriptedArguer(self.config.mu, stubborn=False),
            STUBBORN: ScriptedArguer(self.config.mu, stubborn=True),
        }

    def default_population_size(self) -> int | None:
        return None

    def default_mix(self) -> dict[str, float]:
        return {"llm": 1.0} if self.config.model == "llm" else {BOUNDED_CONFIDENCE: 1.0}  # everyone

    def table_schemas(self) -> dict[str, dict[str, pl.DataType]]:
        return {
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

    # --- set-up -----------------------------------------------------------------------------------

    def init(self, population: Population, graph: SocialGraph, rng: np.random.Generator) -> ValueWorld:
        c = self.config
        n = population.size
        if graph.n != n:
            raise ValueError(f"graph has {graph.n} nodes but the population has {n} agents")
        policy = np.asarray(population.policy_names, dtype=object)[population.policy_codes]
        if c.model != "llm" and (policy == "llm").any():
            raise ValueError(
                f"scenario.model={c.model} is rule-driven: population.mix may only use "
                f"{BOUNDED_CONFIDENCE} and {STUBBORN} (set scenario.model=llm for LLM agents)"
            )
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
        world = ValueWorld(graph=graph, positions=positions, eps=eps, movable=policy != STUBBORN)
        if c.model == "llm":
            world.names = population.personas.get_column("name").to_numpy().astype(object)
            world.meetings = self._meetings(world, rng)
        else:
            world.spread = self._spread(world)
            world.converged = world.spread < c.tolerance
        return world

    def max_steps(self, world: ValueWorld) -> int:
        return self.config.steps_limit

    def done(self, world: ValueWorld) -> bool:
        return world.converged or world.steps_done >= self.config.steps_limit

    # --- a step -----------------------------------------------------------------------------------

    def plan(self, world: ValueWorld, step: int, rng: np.random.Generator) -> list[DecisionBatch]:
        if self.config.model != "llm" or world.meetings is None or not world.meetings.heard.any():
            return []
        return [self._speak_batch(world) if world.phase == "speak" else self._listen_batch(world)]

    def resolve(
        self,
        world: ValueWorld,
        step: int,
        batches: list[DecisionBatch],
        decisions: list[Decisions],
        rng: np.random.Generator,
    ) -> StepResult:
        tables: dict[str, pl.DataFrame] = {}
        initial = world.recorded_at < 0
        if initial:
            tables["states"] = self._states(world)
            world.recorded_at = 0
        model = self.config.model
        if model == "deffuant":
            summary = self._deffuant(world, rng, tables)
        elif model == "hk":
            summary = self._hk(world, tables)
        elif world.phase == "speak":
            summary = self._resolve_speak(world, decisions, tables)
        else:
            summary = self._resolve_listen(world, decisions, rng, tables)
        world.steps_done += 1
        due = world.phase == "speak" and world.updates % self.config.interval == 0 and world.updates > 0
        if (due or self.done(world)) and world.recorded_at != world.steps_done:
            snapshot = self._states(world)
            tables["states"] = pl.concat([tables["states"], snapshot]) if initial else snapshot
            world.recorded_at = world.steps_done
        return StepResult(world=world, tables=tables, summary=summary)

    def finish(self, world: ValueWorld) -> dict[str, pl.DataFrame]:
        """The final state, unless the last step already recorded it."""
        if world.recorded_at == world.steps_done:
            return {}
        world.recorded_at = world.steps_done
        return {"states": self._states(world)}

    # --- rule-driven dynamics -----------------------------------------------------------------------

    def _spread(self, world: ValueWorld) -> float:
        strict = self.config.model == "deffuant"
        movable = world.movable_or_none
        return bc.interacting_spread(world.positions, world.graph, world.eps, strict, movable)

    def _after_update(self, world: ValueWorld) -> dict[str, float]:
        world.updates += 1
        world.spread = self._spread(world)
        world.converged = world.spread < self.config.tolerance
        clusters = [bc.count_clusters(world.positions[:, j]) for j in range(world.positions.shape[1])]
        return {"spread": world.spread, "clusters": float(np.mean(clusters))}

    def _deffuant(
        self, world: ValueWorld, rng: np.random.Generator, tables: dict[str, pl.DataFrame]
    ) -> dict[str, float]:
        movable = world.movable_or_none
        updates = bc.deffuant_step(
            world.positions,
            world.graph,
            world.eps,
            self.config.mu,
            rng,
            self.config.matchings_per_step,
            movable,
        )
        if self.config.records_interactions:
            tables["interactions"] = pl.concat([self._pair_rows(r, u) for r, u in enumerate(updates)])
        summary = self._after_update(world)
        summary["pairs"] = float(sum(len(u.u) for u in updates))
        return summary

    def _hk(self, world: ValueWorld, tables: dict[str, pl.DataFrame]) -> dict[str, float]:
        movable = world.movable_or_none
        before = world.positions
        world.positions = bc.hk_step(before, world.graph, world.eps, movable)
        if self.config.records_interactions:
            listener, speaker = bc.directed_edges(world.graph)
            d = before.shape[1]
            dist = np.abs(before[speaker] - before[listener])
            tables["interactions"] = self._rows(
                phase="listen",
                round_=np.zeros(len(listener) * d, np.int32),
                speaker=np.repeat(speaker, d),
                listener=np.repeat(listener, d),
                dim=np.tile(np.arange(d), len(listener)),
                heard=(dist <= world.eps[listener, None]).ravel(),
                speaker_position=before[speaker].ravel(),
                before=before[listener].ravel(),
                after=world.positions[listener].ravel(),
            )
        return self._after_update(world)

    def _pair_rows(self, round_: int, up: bc.PairUpdate) -> pl.DataFrame:
        """Two rows per pair and dimension: u listening to v, then v listening to u."""
        m, d = up.before_u.shape
        return self._rows(
            phase="listen",
            round_=np.full(2 * m * d, round_, np.int32),
            speaker=np.repeat(np.concatenate([up.v, up.u]), d),
            listener=np.repeat(np.concatenate([up.u, up.v]), d),
            dim=np.tile(np.arange(d), 2 * m),
            heard=np.concatenate([up.u_heard_v, up.v_heard_u]).ravel(),
            speaker_position=np.concatenate([up.before_v, up.before_u]).ravel(),
            before=np.concatenate([up.before_u, up.before_v]).ravel(),
            after=np.concatenate([up.after_u, up.after_v]).ravel(),
        )

    # --- LLM dynamics -----------------------------------------------------------------------------

    def _meetings(self, world: ValueWorld, rng: np.random.Generator) -> Meetings:
        """Next round: a random matching, both directions of each pair, one random dimension per pair."""
        u, v = bc.random_matching(world.graph, rng)
        dim = rng.integers(0, world.positions.shape[1], size=len(u))
        speaker, listener, dim = np.concatenate([u, v]), np.concatenate([v, u]), np.concatenate([dim, dim])
        if self.config.llm_mode == "filter":
            dist = np.abs(world.positions[speaker, dim] - world.positions[listener, dim])
            heard = dist < world.eps[listener]
        else:
            heard = np.ones(len(speaker), bool)
        return Meetings(speaker, listener, dim, heard, np.full(len(speaker), None, dtype=object))

    def _context(self) -> dict[str, object]:
        return {
            "dimensions": list(self.config.dimensions),
            "answer": self.config.llm_answer,
            "likert_points": LIKERT_POINTS,
        }

    def _speak_batch(self, world: ValueWorld) -> DecisionBatch:
        m = world.meetings
        assert m is not None and world.names is not None
        idx = np.flatnonzero(m.heard)
        s, ls, dim = m.speaker[idx], m.listener[idx], m.dim[idx]
        return DecisionBatch(
            spec=self.argument_spec,
            agent_ids=s,
            obs={
                "position": world.positions[s, dim],
                "dimension": dim,
                "partner_name": world.names[ls],
                "epsilon": world.eps[s],
            },
            context=self._context(),
        )

    def _listen_batch(self, world: ValueWorld) -> DecisionBatch:
        m = world.meetings
        assert m is not None and world.names is not None
        idx = np.flatnonzero(m.heard)
        s, ls, dim = m.speaker[idx], m.listener[idx], m.dim[idx]
        return DecisionBatch(
            spec=self.update_spec,
            agent_ids=ls,
            obs={
                "position": world.positions[ls, dim],
                "dimension": dim,
                "partner_name": world.names[s],
                "argument": m.argument[idx],
                "speaker_position": world.positions[s, dim],
                "epsilon": world.eps[ls],
            },
            context=self._context(),
        )

    def _resolve_speak(
        self, world: ValueWorld, decisions: list[Decisions], tables: dict[str, pl.DataFrame]
    ) -> dict[str, float]:
        m = world.meetings
        assert m is not None
        idx = np.flatnonzero(m.heard)
        texts = decisions[0].values["argument"] if decisions else np.empty(0, object)
        m.argument[idx] = texts
        world.phase = "listen"
        if self.config.records_interactions and len(idx):
            k = len(idx)
            null = np.full(k, np.nan)
            tables["interactions"] = self._rows(
                phase="speak",
                round_=np.zeros(k, np.int32),
                speaker=m.speaker[idx],
                listener=m.listener[idx],
                dim=m.dim[idx],
                heard=np.ones(k, bool),
                speaker_position=world.positions[m.speaker[idx], m.dim[idx]],
                before=null,
                after=null,
                message=texts,
                decision=np.arange(k, dtype=np.int64),
            )
        return {"arguments": float(len(idx))}

    def _resolve_listen(
        self,
        world: ValueWorld,
        decisions: list[Decisions],
        rng: np.random.Generator,
        tables: dict[str, pl.DataFrame],
    ) -> dict[str, float]:
        m = world.meetings
        assert m is not None
        idx = np.flatnonzero(m.heard)
        before = world.positions[m.listener, m.dim]
        after = before.copy()
        if len(idx):
            answer = decisions[0]
            raw = answer.values["position"]
            # A fallback keeps the position, and so does a stubborn listener whatever it answers.
            usable = ~answer.missing & world.movable[m.listener[idx]]
            if self.config.llm_answer == "likert":
                reported = from_likert(raw)
                usable &= raw != to_likert(before[idx])  # its own point on the scale: no rounding move
            else:
                reported = raw.astype(np.float64)
            after[idx] = np.where(usable, np.clip(reported, 0.0, 1.0), before[idx])
        # Listeners are distinct within a round (a matching), so this assignment has no collisions.
        world.positions[m.listener, m.dim] = after
        if self.config.records_interactions:
            decision = np.full(len(m.listener), -1, np.int64)
            decision[idx] = np.arange(len(idx))
            tables["interactions"] = self._rows(
                phase="listen",
                round_=np.zeros(len(m.listener), np.int32),
                speaker=m.speaker,
                listener=m.listener,
                dim=m.dim,
                heard=m.heard,
                speaker_position=self._speaker_before(m, before),
                before=before,
                after=after,
                message=m.argument,
                decision=decision,
            )
        world.updates += 1
        world.phase = "speak"
        moved = float(np.abs(after - before).mean()) if len(after) else 0.0
        world.meetings = self._meetings(world, rng)
        return {"heard": float(len(idx)), "mean_shift": moved}

    @staticmethod
    def _speaker_before(m: Meetings, listener_before: np.ndarray) -> np.ndarray:
        """Speakers' positions before this round: each speaker is also the listener of the reverse
        meeting (both directions of a pair), whose `before` is the speaker's old position."""
        half = len(m.speaker) // 2
        return np.concatenate([listener_before[half:], listener_before[:half]])

    # --- tables -----------------------------------------------------------------------------------

    def _rows(
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
        decision: np.ndarray | None = None,
    ) -> pl.DataFrame:
        k = len(speaker)
        names = pl.Series(self.config.dimensions, dtype=pl.String)
        frame = pl.DataFrame(
            {
                "phase": pl.repeat(phase, k, dtype=pl.String, eager=True),
                "round": pl.Series(round_, dtype=pl.Int32),
                "speaker_id": pl.Series(speaker, dtype=pl.Int64),
                "listener_id": pl.Series(listener, dtype=pl.Int64),
                "dimension": names.gather(pl.Series(dim, dtype=pl.UInt32)),
                "heard": pl.Series(heard, dtype=pl.Boolean),
                "speaker_position": pl.Series(speaker_position, dtype=pl.Float64),
                "position_before": pl.Series(before, dtype=pl.Float64, nan_to_null=True),
                "position_after": pl.Series(after, dtype=pl.Float64, nan_to_null=True),
                "message": (
                    pl.repeat(None, k, dtype=pl.String, eager=True)
                    if message is None
                    else pl.Series(list(message), dtype=pl.String)
                ),
                "_decision": (
                    pl.repeat(None, k, dtype=pl.Int64, eager=True)
                    if decision is None
                    else _null_where_negative(decision)
                ),
            }
        )
        return frame

    def _states(self, world: ValueWorld) -> pl.DataFrame:
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
