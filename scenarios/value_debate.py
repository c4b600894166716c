"""Value debate: language-model agents argue about their values and report where they now stand, the
LLM counterpart of bounded-confidence dynamics (after Deffuant et al. 2000 and the value-change
model of "Predicting Users' Value Changes by the Friends' Influence from Social Media Usage").

A meeting takes two steps. Speak step: the agents of a round's pairs (both directions of each pair,
one random dimension per pair) write a short argument. The pairs of a round are a random matching
(`pairing=matching`), or the next layer of disjoint pairs of a sequence of ⌊n/2⌋ meetings drawn as
uniformly random edges (`edge`) or random agents and random neighbours (`node`), so that every
agent's meetings keep their drawn order (see `bounded_confidence.sequential_layers`). Listen step:
each listener reads its partner's argument (fenced as quoted speech; the partner's true position is
never shown) and reports its new position. In `llm_mode=filter` a listener only meets partners
within its ε on that dimension (others are recorded as not heard, no call made): the
bounded-confidence rule as a filter; in `free` mode everyone is heard and the model decides. With
`llm_answer=likert` the listener answers on a 7-point scale: a new point moves it there; its current
point keeps its exact position (no drift from rounding). Stubborn agents never move, whatever they
answer. Scripted agents in the mix follow the Deffuant rule (`bounded_confidence`) or never move (`stubborn`).

A decision the model could not give is missing, never a default: a missing argument voids that meeting
(the listener is not asked and keeps its position; the listen row says not heard), and a missing
answer from a listener keeps its position.

What the system prompt says about the agent's values is `anchor`:
- `current` (the default): the persona's own words without its value scores, then "The values that
  matter most to you now: ..." ranked from the agent's current positions (undebated values keep the
  persona's scores). Both prompts then state one and the same state of the agent, which moves as it
  is persuaded, so nothing holds it to where it started.
- `initial`: the persona as sampled, listing the three values that mattered most at the start, for the
  whole run, while the user prompt states the current position: a fixed anchor that can read as
  stubbornness (kept to compare with earlier runs).
- `none`: no value scores in the system prompt at all; the only statement of the agent's position is
  the current one in the user prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from agents.decisions import ActionSpec, ChoiceField, DecisionBatch, Decisions, NumberField, TextField
from agents.persona import SCHWARTZ_VALUES
from agents.population import LLM
from agents.prompts import Prompt, PromptTemplate, quote
from scenarios import bounded_confidence as bc
from scenarios.base import StepResult
from scenarios.opinion_dynamics import OpinionConfig, OpinionScenario, OpinionWorld, from_likert, to_likert
from scenarios.world import World

LIKERT_POINTS = 7


class ValueDebateConfig(OpinionConfig):
    name: Literal["value_debate"] = "value_debate"
    prompts: dict[str, str | None] = Field(default_factory=lambda: {"value_argument": None, "value_update": None})
    mu: float = Field(default=0.5, gt=0.0, le=0.5, description="scripted listeners' Deffuant rate")
    max_steps: int = Field(default=6, ge=2, description="a meeting is two steps (speak, listen)")
    record_every: int = Field(default=1, ge=1)
    record_interactions: bool = True
    llm_mode: Literal["filter", "free"] = "filter"
    llm_answer: Literal["number", "likert"] = "number"
    argument_chars: int = Field(default=240, ge=20, le=2000)
    pairing: bc.Pairing = Field(default="matching", description="matching | edge | node: which pairs meet")
    anchor: Literal["current", "initial", "none"] = Field(
        default="current", description="which values the system prompt says matter most to the agent"
    )

    @model_validator(mode="after")
    def _whole_meetings(self) -> ValueDebateConfig:
        # A meeting is a speak step then a listen step: an odd limit would pay for arguments nobody hears.
        if self.max_steps % 2:
            raise ValueError(f"max_steps must be even (a meeting takes two steps), got {self.max_steps}")
        return self


@dataclass
class Meetings(World):
    """The directed meetings of one round (speaker -> listener about one dimension)."""

    speaker: np.ndarray
    listener: np.ndarray
    dim: np.ndarray
    heard: np.ndarray
    argument: np.ndarray  # object: the speaker's text, filled by the speak step


def _no_pairs() -> np.ndarray:
    return np.zeros(0, np.int64)


@dataclass
class DebateWorld(OpinionWorld):
    meetings: Meetings | None = None
    phase: str = "speak"  # speak | listen
    # pairing edge/node: the meetings drawn but not yet held (pairs and their layer), in layer order
    queue_u: np.ndarray = field(default_factory=_no_pairs)
    queue_v: np.ndarray = field(default_factory=_no_pairs)
    queue_layer: np.ndarray = field(default_factory=_no_pairs)


# ---- decisions -----------------------------------------------------------------------------------------------


def argument_spec(config: ValueDebateConfig) -> ActionSpec:
    text = TextField(name="argument", max_chars=config.argument_chars, description="a short argument for your view")
    return ActionSpec(name="value_argument", fields=(text,), max_tokens=max(32, config.argument_chars // 2))


def update_spec(config: ValueDebateConfig) -> ActionSpec:
    if config.llm_answer == "likert":
        options = tuple(str(k) for k in range(1, LIKERT_POINTS + 1))
        field_ = ChoiceField(name="position", options=options, description="1 = not important at all, 7 = extremely")
        return ActionSpec(name="value_update", fields=(field_,), max_tokens=2)
    number = NumberField(
        name="position", minimum=0.0, maximum=1.0, description="0 = not important at all, 1 = extremely"
    )
    return ActionSpec(name="value_update", fields=(number,), max_tokens=16)


# ---- prompts ---------------------------------------------------------------------------------------------------

# Short definitions after Schwartz (1992, 2012), so the model and the reader mean the same thing.
VALUE_DEFINITIONS = {
    "self_direction": "independent thought and action: choosing, creating, exploring",
    "stimulation": "excitement, novelty and challenge in life",
    "hedonism": "pleasure and enjoying life for oneself",
    "achievement": "personal success by showing competence according to social standards",
    "power": "social status and prestige, control or dominance over people and resources",
    "security": "safety, harmony and stability of society, of relationships and of oneself",
    "conformity": "restraint of actions that could upset or harm others or break social expectations",
    "tradition": "respect for and commitment to the customs and ideas of one's culture or religion",
    "benevolence": "caring for the welfare of the people one is close to",
    "universalism": "understanding, tolerance and protection for the welfare of all people and of nature",
}
RULES = (
    "You are taking part in conversations about personal values. How important a value is to you is "
    "your position on it, from 0 (not important to me at all) to 1 (extremely important to me). "
    "You meet other people, tell them what you think, and listen to what they say."
)
ARGUMENT_PROMPT = Prompt(
    template=PromptTemplate(
        system="{rules}\n\n{persona_text}\n\n{anchor}",
        user=(
            "{topic} {position}\nYou are talking with {partner}. In at most {limit} characters, give them one "
            "short argument for how important {value} is, true to your position. "
            'Reply in JSON as {{"argument": "..."}}.'
        ),
    ),
    variables=("rules", "anchor", "topic", "position", "partner", "limit", "value"),
)
UPDATE_PROMPT = Prompt(
    template=PromptTemplate(
        system="{rules}\n\n{persona_text}\n\n{anchor}",
        user="{topic} {position}\n{argument}\nHaving heard this, how important is {value} to you now? {ask}",
    ),
    variables=("rules", "anchor", "topic", "position", "argument", "value", "ask"),
)


def value_label(name: str) -> str:
    return name.replace("_", "-")


def topic_text(name: str) -> str:
    definition = VALUE_DEFINITIONS.get(name)
    label = value_label(name)
    return f"The value under discussion is {label} ({definition})." if definition else f"The topic is {label}."


def position_text(position: float, context: dict[str, Any]) -> str:
    """The agent's own position in the answer's terms (Likert points, or [0, 1])."""
    if context["answer"] == "likert":
        points = int(context["likert_points"])
        point = round(float(position) * (points - 1)) + 1
        return f"Your current position is {point} on a scale from 1 (not important at all) to {points} (extremely)."
    return f"Your current position is {float(position):.2f} on a scale from 0 to 1."


def anchor_text(profile: Any, names: Any) -> str:
    """'The values that matter most to you now: a, b, c.' from one agent's current value profile (the
    three highest scores, as the persona text ranks them)."""
    if profile is None or not len(names):
        return ""
    scores = np.asarray(profile, np.float64)
    top = np.argsort(-scores, kind="stable")[:3]
    return "The values that matter most to you now: " + ", ".join(value_label(names[i]) for i in top) + "."


def participant(agent_id: Any) -> str:
    """How one agent is named to another: a label from the engine, never text from a persona file."""
    return f"Participant {int(agent_id)}"


# ---- the scenario ----------------------------------------------------------------------------------------------


class ValueDebate(OpinionScenario):
    name = "value_debate"
    Config = ValueDebateConfig
    World = DebateWorld
    prompts = {"value_argument": ARGUMENT_PROMPT, "value_update": UPDATE_PROMPT}
    config: ValueDebateConfig

    def __init__(self, config: ValueDebateConfig) -> None:
        super().__init__(config)
        self.argument_spec = argument_spec(config)
        self.update_spec = update_spec(config)

    def specs(self) -> dict[str, ActionSpec]:
        return {self.argument_spec.name: self.argument_spec, self.update_spec.name: self.update_spec}

    def default_mix(self) -> dict[str, float]:
        return {LLM: 1.0}

    def persona_text_excludes(self, columns: tuple[str, ...]) -> set[str]:
        """Under anchor current or none the persona text leaves its value scores out (see the module)."""
        if self.config.anchor == "initial":
            return set()
        return {c for c in columns if c.startswith("value_")}

    def profile_names(self) -> list[str]:
        """The values an anchor ranks: the persona's Schwartz values, then debated dimensions that are not."""
        population, _ = self._bound()
        names = [v for v in SCHWARTZ_VALUES if f"value_{v}" in population.columns]
        return names + [d for d in self.config.dimensions if d not in names]

    def profile(self, world: DebateWorld) -> np.ndarray:
        """(n, k) current value profile over `profile_names()`: the current positions on the debated
        dimensions, the persona's scores on the others."""
        population, _ = self._bound()
        names = self.profile_names()
        out = np.zeros((population.size, len(names)))
        for k, name in enumerate(names):
            if name in self.config.dimensions:
                out[:, k] = world.positions[:, self.config.dimensions.index(name)]
            else:
                out[:, k] = population.personas.get_column(f"value_{name}").to_numpy().astype(np.float64)
        return out

    def prompt_variables(self, spec: str, obs: dict, context: dict, seed: int) -> dict[str, Any]:
        name = context["dimensions"][int(obs["dimension"])]
        common = {
            "rules": RULES,
            "anchor": anchor_text(obs.get("profile"), context.get("profile_names", ())),
            "topic": topic_text(name),
            "position": position_text(obs["position"], context),
            "value": value_label(name),
        }
        if spec == self.argument_spec.name:
            return {**common, "partner": participant(obs["partner"]), "limit": self.config.argument_chars}
        argument = str(obs.get("argument") or "").strip() or "(they said nothing)"
        if context["answer"] == "likert":
            points = context["likert_points"]
            ask = f"Answer with one number from 1 (not important at all) to {points} (extremely important)."
        else:
            ask = 'Reply in JSON as {"position": x} with x between 0 and 1.'
        return {**common, "argument": quote(participant(obs["partner"]), argument), "ask": ask}

    # ---- life cycle -----------------------------------------------------------------------------------------
    def init(self, rng: np.random.Generator) -> DebateWorld:
        positions, eps = self.initial_positions(rng)
        world = DebateWorld(positions=positions, eps=eps)
        world.meetings = self._meetings(world, rng)
        return world

    def longest_prompts(self, world: DebateWorld) -> list[tuple[DecisionBatch, str]]:
        """A listener reading an argument of the longest length allowed, on the value with the longest topic text."""
        population, _ = self._bound()
        longest = DebateWorld.from_state(*world.state())
        m = longest.meetings
        if m is None or not len(m.speaker) or not population.llm_mask.any():
            return []
        m.heard[:] = True
        m.argument[:] = "W" * self.config.argument_chars
        m.dim[:] = int(np.argmax([len(topic_text(d)) for d in self.config.dimensions]))
        longest.phase = "listen"
        return [(self.plan(longest, 1, np.random.default_rng(0))[0], "scenario.argument_chars")]

    def plan(self, world: DebateWorld, step: int, rng: np.random.Generator) -> list[DecisionBatch]:
        m = world.meetings
        if m is None or not m.heard.any():
            return []
        idx = np.flatnonzero(m.heard)
        s, ls, dim = m.speaker[idx], m.listener[idx], m.dim[idx]
        context = {"dimensions": list(self.config.dimensions), "answer": self.config.llm_answer,
                   "likert_points": LIKERT_POINTS}  # fmt: skip
        anchored = self.config.anchor == "current"
        if anchored:
            context["profile_names"] = self.profile_names()
            profile = self.profile(world)
        if world.phase == "speak":
            obs = {"position": world.positions[s, dim], "dimension": dim, "partner": ls, "epsilon": world.eps[s]}
            if anchored:
                obs["profile"] = profile[s]
            return [DecisionBatch(spec=self.argument_spec, agent_ids=s, obs=obs, context=context)]
        obs = {
            "position": world.positions[ls, dim],
            "dimension": dim,
            "partner": s,
            "argument": m.argument[idx],
            "speaker_position": world.positions[s, dim],
            "epsilon": world.eps[ls],
        }
        if anchored:
            obs["profile"] = profile[ls]
        return [DecisionBatch(spec=self.update_spec, agent_ids=ls, obs=obs, context=context)]

    def resolve(
        self,
        world: DebateWorld,
        step: int,
        batches: list[DecisionBatch],
        decisions: list[Decisions],
        rng: np.random.Generator,
    ) -> StepResult:
        tables: dict[str, pl.DataFrame] = {}
        decision_of: dict[str, np.ndarray] = {}
        self.record_initial(world, tables)
        if world.phase == "speak":
            summary = self._resolve_speak(world, decisions, tables, decision_of)
        else:
            summary = self._resolve_listen(world, decisions, rng, tables, decision_of)
        world.steps_done += 1
        due = world.phase == "speak" and world.updates % self.config.record_every == 0 and world.updates > 0
        summary |= self.record_due(world, tables, due)
        return StepResult(world=world, tables=tables, summary=summary, decision_of=decision_of)

    def _meetings(self, world: DebateWorld, rng: np.random.Generator) -> Meetings:
        """Next round: disjoint pairs (see `pairing`), both directions of each pair, one random dimension
        per pair."""
        _, graph = self._bound()
        u, v = bc.random_matching(graph, rng) if self.config.pairing == "matching" else self._next_layer(world, rng)
        dim = rng.integers(0, world.positions.shape[1], size=len(u))
        speaker, listener, dim = np.concatenate([u, v]), np.concatenate([v, u]), np.concatenate([dim, dim])
        if self.config.llm_mode == "filter":
            dist = np.abs(world.positions[speaker, dim] - world.positions[listener, dim])
            heard = dist < world.eps[listener]
        else:
            heard = np.ones(len(speaker), bool)
        return Meetings(speaker, listener, dim, heard, np.full(len(speaker), None, dtype=object))

    def _next_layer(self, world: DebateWorld, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The next layer of disjoint pairs of the drawn sequence (a new sequence of ⌊n/2⌋ meetings
        when the last one is used up)."""
        _, graph = self._bound()
        if not len(world.queue_u):
            u, v = bc.random_pairs(graph, graph.n // 2, self.config.pairing, rng)
            layers = bc.sequential_layers(u, v)
            order = np.concatenate(layers) if layers else np.zeros(0, np.int64)
            world.queue_u, world.queue_v = u[order], v[order]
            world.queue_layer = np.repeat(np.arange(len(layers)), [len(layer) for layer in layers])
        take = world.queue_layer == (world.queue_layer[0] if len(world.queue_layer) else 0)
        pairs = world.queue_u[take], world.queue_v[take]
        world.queue_u, world.queue_v = world.queue_u[~take], world.queue_v[~take]
        world.queue_layer = world.queue_layer[~take]
        return pairs

    def _resolve_speak(
        self, world: DebateWorld, decisions: list[Decisions], tables: dict, decision_of: dict
    ) -> dict[str, float]:
        m = world.meetings
        assert m is not None
        idx = np.flatnonzero(m.heard)
        texts = decisions[0].values["argument"] if decisions else np.empty(0, object)
        said = ~decisions[0].missing if decisions else np.zeros(0, bool)
        m.argument[idx] = texts
        m.heard[idx] = said  # a missing argument voids the meeting: its listener is not asked
        world.phase = "listen"
        if self.config.record_interactions and len(idx):
            k = len(idx)
            null = np.full(k, np.nan)
            tables["interactions"] = self.rows(
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
            )
            decision_of["interactions"] = np.arange(k, dtype=np.int64)
        return {"arguments": float(len(idx))}

    def _resolve_listen(
        self, world: DebateWorld, decisions: list[Decisions], rng: np.random.Generator, tables: dict, decision_of: dict
    ) -> dict[str, float]:
        m = world.meetings
        assert m is not None
        idx = np.flatnonzero(m.heard)
        before = world.positions[m.listener, m.dim]
        after = before.copy()
        if len(idx):
            answer = decisions[0]
            raw = answer.values["position"]
            # A missing answer keeps the position, and so does a stubborn listener whatever it answers.
            usable = ~answer.missing & self.movable[m.listener[idx]]
            if self.config.llm_answer == "likert":
                reported = from_likert(raw, LIKERT_POINTS)
                usable &= raw != to_likert(before[idx], LIKERT_POINTS)  # its own point on the scale: no rounding move
            else:
                reported = raw.astype(np.float64)
            after[idx] = np.where(usable, np.clip(reported, 0.0, 1.0), before[idx])
        # Listeners are distinct within a round (a matching), so this assignment has no collisions.
        world.positions[m.listener, m.dim] = after
        if self.config.record_interactions:
            decision = np.full(len(m.listener), -1, np.int64)
            decision[idx] = np.arange(len(idx))
            tables["interactions"] = self.rows(
                phase="listen",
                round_=np.zeros(len(m.listener), np.int32),
                speaker=m.speaker,
                listener=m.listener,
                dim=m.dim,
                heard=m.heard,
                speaker_position=_speaker_before(m, before),
                before=before,
                after=after,
                message=m.argument,
            )
            decision_of["interactions"] = decision
        world.updates += 1
        world.phase = "speak"
        moved = float(np.abs(after - before).mean()) if len(after) else 0.0
        world.meetings = self._meetings(world, rng)
        return {"heard": float(len(idx)), "mean_shift": moved}


def _speaker_before(m: Meetings, listener_before: np.ndarray) -> np.ndarray:
    """Speakers' positions before this round: each speaker is also the listener of the reverse
    meeting (both directions of a pair), whose `before` is the speaker's old position."""
    half = len(m.speaker) // 2
    return np.concatenate([listener_before[half:], listener_before[:half]])
