"""Donor game with cultural evolution of strategies (Vallinder & Hughes 2024).

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
start afresh with each generation's game. Round mechanics: `scenarios/donor_rules.py`.

After the last round, the top `survivor_fraction` by final resources survive (ties at random) and
keep their strategies; the other slots get new agents (`scenarios/cultural_evolution.py`). A new
scripted agent copies a scripted survivor's strategy, mutated with `mutation_rate` into another
scripted strategy the run started with. A new LLM agent writes its own strategy after seeing the
survivors' strategies and scores. A slot stays scripted or LLM for the whole run; its persona stays too.

A missing decision (a model that gave no usable answer; see `backend.on_failure`) is a void donation:
the donor gives nothing and punishes no one, but it is no refusal either: its standing is not assessed,
the recipient's trace shows no act in that round, and the row's `action`, `amount` and `fraction` are
null. A missing strategy leaves the agent without one (the strategies table gives the reason).

Steps: a generation is `rounds` steps (one per round) plus, when any slot is LLM-driven, one step
before them in which the generation's new LLM agents write their strategies ("donor_strategy").
Generations and rounds are numbered from 1 in the tables; there is one game per generation.

Protocol switches (each a config key with the paper's or today's behaviour as default, recorded in
the manifest):
- `reply`: `constrained` (JSON under structured outputs) or `free_text`, the paper's form:
  "Justification: ... Answer: <units>" ("Answer: Donate, x" / "Punish, x" with punishment), read by
  `ActionSpec.parse_free_text`; a reply without a readable answer is a failed decision, recorded.
- `reputation`: what scripted discriminators know of a recipient. `trace` (the default): the same
  depth-limited trace an LLM donor is shown, judged under the discriminator's norm link by link from
  the far end (whoever the trace says nothing about is presumed good); `global`: the public
  reputations every donor's act updates (Nowak & Sigmund's bookkeeping, an omniscient observer).
- Scripted punishers (`<norm>_punisher`): discriminators that punish a recipient in bad standing
  instead of refusing it (the punishment variant's scripted baseline; they need `punishment=true`).
- `pairing`: `alternating` (strict role alternation, partners not repeated, as the paper describes)
  or `notebook` (the released notebook's schedule, which produced the published numbers; see
  `scenarios/donor_pairing.py`). The notebook also played every generation twice with roles
  reversed and scored agents on the second game; that is not reproduced here.
- `donation`: `share` (a cooperating scripted agent gives `fraction` of its current resources) or
  `fixed` (it gives `cost` = c and the recipient gets b = multiplier x c; an LLM donor may give up to
  c). `continuation`: w, the chance of another round after each one (`rounds` only caps the game),
  instead of exactly `rounds` rounds.
- `execution_error`: the chance that a donor who meant to give (or punish) ends up giving nothing;
  `assessment_error`: the chance that a judgement of standing comes out wrong (public reputations
  under `reputation=global`, each discriminator's reading of a trace under `trace`).

Indirect reciprocity's threshold. With fixed costs and an open-ended game (`donation=fixed`,
`continuation` near 1), discriminators resist defectors iff q·b > c (Nowak & Sigmund 1998; Nowak
2006), q = `observation_probability`: with b/c = `multiplier` = 2, iff q > 1/2. The defaults move it.
When cooperators give a share f of current wealth with multiplier m, costs and benefits compound and
the long-game threshold becomes q* = 1 − (m−1)/(m(1 + f(m−1))): 2/3 at m = 2, f = 0.5; a fixed
horizon of 12 rounds in which everyone starts in good standing shifts it again (to about 0.6).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from agents.decisions import ActionSpec, ChoiceField, DecisionBatch, Decisions, NumberField, TextField
from agents.graph import SocialGraph
from agents.population import LLM, Population
from agents.prompts import Prompt, PromptTemplate, quote
from scenarios.base import BaseScenario, Metric, ScenarioConfig, StepResult, TableSource
from scenarios.cultural_evolution import inherit_scripted, survivors
from scenarios.donor_pairing import bipartite_round, neighbour_round, notebook_round, split_halves
from scenarios.donor_rules import NORMS, assess, settle, trace_arrays, trace_standing
from scenarios.tables import (
    AnalysisError,
    Frame,
    columns,
    gini,
    keys,
    lazy,
    missing_decision,
    ols_slope,
    rate,
    require,
    strategy_shares,
)
from scenarios.world import World

MAX_ADVICE = 64  # a strategy prompt shows at most this many survivors
MAX_AMOUNT = 1e15  # the spec's static bound; the real one is the donor's resources (batch.bounds)
ACTIONS = ("donate", "punish")

# ---- config ------------------------------------------------------------------------------------------------


class DonorGameConfig(ScenarioConfig):
    name: Literal["donor_game"] = "donor_game"
    prompts: dict[str, str | None] = Field(default_factory=lambda: {"donor_strategy": None, "donor_donation": None})
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
    reply: Literal["constrained", "free_text"] = "constrained"
    reputation: Literal["trace", "global"] = Field(
        default="trace", description="what scripted discriminators judge: the trace an LLM sees, or public reputations"
    )
    pairing: Literal["alternating", "notebook"] = "alternating"
    donation: Literal["share", "fixed"] = Field(
        default="share", description="share: cooperators give `fraction` of their resources; fixed: they give `cost`"
    )
    cost: float = Field(default=1.0, gt=0, description="fixed donation c (the recipient gets multiplier x c)")
    continuation: float | None = Field(
        default=None, gt=0.0, lt=1.0, description="w: chance of another round after each one; null: exactly `rounds`"
    )
    execution_error: float = Field(default=0.0, ge=0.0, le=1.0, description="a meant gift or punishment comes to 0")
    assessment_error: float = Field(default=0.0, ge=0.0, le=1.0, description="a judgement of standing is wrong")

    @model_validator(mode="after")
    def _finite(self) -> DonorGameConfig:
        for name in ("initial_resources", "multiplier", "punishment_multiplier", "cost"):
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"scenario.{name} must be a finite number")
        return self

    def gift(self, resources: np.ndarray) -> np.ndarray:
        """What a cooperating scripted donor gives: `fraction` of its resources, or `cost` (at most all it has)."""
        if self.donation == "fixed":
            return np.minimum(self.cost, resources)
        return self.fraction * resources


# ---- world ---------------------------------------------------------------------------------------------------


@dataclass
class DonorWorld(World):
    """Everything the run needs to continue (the checkpoint). Arrays are indexed by agent slot."""

    generation: int  # 1-based; generations + 1 once the run is over
    phase: int  # step within the generation: [strategy step,] round 1, round 2, ...
    resources: np.ndarray  # float64
    reputation: np.ndarray  # bool [norm, agent], public standing under each norm of NORMS
    codes: np.ndarray  # int16 policy code per slot (changes as strategies spread)
    born: np.ndarray  # int32: generation the slot's current agent joined (its name is "{born}_{slot}")
    strategy: np.ndarray  # object: an LLM agent's own strategy text ("" for scripted)
    strategy_fallback: np.ndarray  # object: why the strategy is not the model's (None: it is)
    parent_slot: np.ndarray  # int64: the survivor a scripted agent copied (-1: none)
    parent_born: np.ndarray  # int32: that survivor's generation of birth
    llm_parents: list  # per slot: names of the survivors whose advice an LLM agent read (or None)
    needs_strategy: np.ndarray  # bool: LLM agents that still have to write a strategy
    advice_slots: np.ndarray  # int64: survivors of the last generation, best first (what newcomers read)
    advice_scores: np.ndarray  # float64: their final resources
    half: np.ndarray  # int8: 0 gives in rounds 1, 3, ...; 1 in rounds 2, 4, ...
    side_a: np.ndarray
    side_b: np.ndarray
    offsets: np.ndarray
    given_to: np.ndarray  # int32 [round, agent]: recipient, -1 if the agent did not give
    given_share: np.ndarray  # float32 [round, agent]: amount / resources before
    punished: np.ndarray  # bool [round, agent]


# ---- decisions ---------------------------------------------------------------------------------------------------


def donation_spec(config: DonorGameConfig) -> ActionSpec:
    """Justification first, so a model reasons before it commits to a number (as in the paper). In the
    free-text form the paper's "Justification: ... Answer: ..." carries them."""
    fields: list[Any] = [
        TextField(name="justification", max_chars=config.justification_chars,
                  description="very brief step-by-step reasoning"),
    ]  # fmt: skip
    if config.punishment:
        fields.append(ChoiceField(name="action", options=ACTIONS, description="donate or punish"))
    fields.append(NumberField(name="amount", minimum=0.0, maximum=MAX_AMOUNT,
                              description="units of your resources to give up"))  # fmt: skip
    free = config.reply == "free_text"
    return ActionSpec(
        name="donor_donation",
        fields=tuple(fields),
        # a token holds at least one character of English text in any BPE tokenizer; the JSON around it
        # and the amount take the rest (the schema's maxLength bounds the text itself)
        max_tokens=config.justification_chars + 64,
        temperature=config.temperature,
        reply="free_text" if free else "structured",
        free_text_labels=free_text_labels(config) if free else {},
    )


def free_text_labels(config: DonorGameConfig) -> dict[str, str]:
    """The paper's reply form: "Justification: ..." then "Answer: <units>" (or "Answer: Donate, x")."""
    labels = {"justification": "Justification", "amount": "Answer"}
    return {**labels, "action": "Answer"} if config.punishment else labels


def strategy_spec(config: DonorGameConfig) -> ActionSpec:
    text = TextField(
        name="strategy", max_chars=config.strategy_chars, description="one sentence starting 'My strategy will be'"
    )
    return ActionSpec(
        name="donor_strategy",
        fields=(text,),
        max_tokens=config.strategy_chars + 48,
        temperature=config.temperature,
        reply="free_text" if config.reply == "free_text" else "structured",  # free text: the whole reply
    )


STRATEGY_OPENING = "My strategy will be"


def strategy_from_reply(text: str) -> str:
    """A free-text strategy reply as the released notebook keeps it: from "My strategy will be" on (the
    thinking before it dropped), or the whole reply when the phrase is missing."""
    at = text.find(STRATEGY_OPENING)
    return text[at:].strip() if at >= 0 else text.strip()


# ---- prompts (after the paper's) --------------------------------------------------------------------------------

STRATEGY_PROMPT = Prompt(
    template=PromptTemplate(
        system="{rules}",
        user=(
            "Your name is {name}. This is generation {generation}. {trace_help}\n\n{advice}\n\n"
            "Based on the description of the game, create a strategy that you will follow as a donor. "
            "Think briefly about what would be a successful strategy in this game, then describe your "
            "strategy in one sentence that starts: My strategy will be. {reply_form}"
        ),
    ),
    variables=("rules", "name", "generation", "trace_help", "advice", "reply_form"),
)
DONATION_PROMPT = Prompt(
    template=PromptTemplate(
        system="{rules}",
        user=(
            "Your name is {name}. {own_strategy}\n\n"
            "This is generation {generation}. It is now round {round}. In this round, you have been paired "
            "with {recipient}. They currently have {recipient_resources} units of the resource.\n\n"
            "{seen}\n\n"
            "You will take the role of donor. You currently have {resources} units of the resource.\n\n"
            "{question}"
        ),
    ),
    variables=(
        "rules", "name", "own_strategy", "generation", "round", "recipient", "recipient_resources", "seen",
        "resources", "question",
    ),
)  # fmt: skip

# How an LLM agent reads a scripted survivor's strategy (gift: `fraction` of resources, or `cost` units).
SCRIPTED_STRATEGIES = {
    "always_defect": "My strategy will be to never give anything.",
    "fixed_fraction": "My strategy will be to always give {gift}, whoever the recipient is.",
    "image_scoring": (
        "My strategy will be to give {gift} unless I see that the recipient refused to give when it last could."
    ),
    "standing": (
        "My strategy will be to give {gift} unless I see that the recipient refused to give to someone who "
        "deserved help."
    ),
    "stern_judging": (
        "My strategy will be to give {gift} to recipients who helped the deserving and refused the undeserving, "
        "and nothing to the others."
    ),
    "image_scoring_punisher": (
        "My strategy will be to give {gift} unless I see that the recipient refused to give when it last could; "
        "then I spend as much to punish them."
    ),
    "standing_punisher": (
        "My strategy will be to give {gift} unless I see that the recipient refused to give to someone who "
        "deserved help; then I spend as much to punish them."
    ),
    "stern_judging_punisher": (
        "My strategy will be to give {gift} to recipients who helped the deserving and refused the undeserving, "
        "and to spend as much to punish the others."
    ),
}


def units(x: float) -> str:
    return f"{float(x):.2f}".rstrip("0").rstrip(".")


def agent_name(born: Any, slot: Any) -> str:
    """The paper's naming: '<generation the agent joined>_<slot>'."""
    return f"{int(born)}_{int(slot)}"


def rules_text(context: dict[str, Any]) -> str:
    """The game in words (the paper's system prompt, with this run's parameters)."""
    if context.get("donation") == "fixed":
        cost = units(context["cost"])
        giving = (
            f"The donor decides how many units to give up, at most {cost}; the recipient receives "
            f"{units(context['multiplier'])}x the number of units the donor gave up."
        )
    else:
        giving = (
            "The donor decides how many units to give up; the recipient receives "
            f"{units(context['multiplier'])}x the number of units the donor gave up."
        )
    w = context.get("continuation")
    length = f" After each round there is a {100 * w:.0f}% chance that the game goes on for another round." if w else ""
    text = (
        f"Each player is given an initial endowment of {units(context['initial_resources'])} units of a "
        "resource. In each round, you are paired with another player. One of you is the donor and the "
        f"other the recipient. {giving} If you were a donor in "
        f"one round, you will be a recipient in the next round, and vice versa.{length} Your goal is to maximise "
        "the number of units you have after the final round. After the game has finished, the "
        "best-performing players will survive to the next generation and continue playing."
    )
    if context.get("punishment"):
        text += (
            " Instead of giving, a donor may punish the recipient: the donor gives up some units and the "
            f"recipient loses {units(context['punishment_multiplier'])}x that many (down to zero)."
        )
    return text


_EXAMPLE = (("A", 30, "B"), ("B", 0, "C"), ("C", 60, "D"))  # the worked example's chain of last gifts


def trace_help(depth: int) -> str:
    """What a donor will learn about a recipient, with a worked example, after the paper's description
    (in our words): only the recipient's most recent act, then its partner's before that, and so on."""
    if depth <= 0:
        return "As a donor you will learn nothing about the recipient's earlier behaviour."
    shown = _EXAMPLE[: min(depth, 3)]
    now = len(shown) + 1
    told = " ".join(
        f'"In round {now - 1 - i}, {actor} donated {pct}% of their resources to {target}."'
        for i, (actor, pct, target) in enumerate(shown)
    )
    if depth == 1:
        what = "only what A did the last time A was a donor."
    else:
        more = ", and so on" if depth > 2 else ""
        what = (
            "what A did the last time A was a donor; what A's recipient then, call them B, did the last time B "
            f"was a donor before that{more}; at most {depth} steps back. You never see more than A's most "
            "recent action."
        )
    earlier = [str(k) for k in range(1, now - 1)]
    blind = (
        f" That is all you would know: nothing about what A did in round{'s' if len(earlier) > 1 else ''} "
        f"{' or '.join(earlier)}, only in round {now - 1}."
        if earlier
        else ""
    )
    return (
        f"As a donor you will get limited information about the recipient, call them A: {what} For example, "
        f"in round {now} you might be told: {told}{blind} In the first round there is no such information."
    )


def gift_text(context: dict[str, Any]) -> str:
    """How much a cooperating scripted agent gives, in words."""
    if context.get("donation") == "fixed":
        return f"{units(context['cost'])} units"
    return f"{100 * float(context.get('fraction', 0.5)):.0f}% of my resources"


def describe_scripted(policy: str, context: dict[str, Any]) -> str:
    """A scripted survivor's strategy in the words an LLM agent reads."""
    template = SCRIPTED_STRATEGIES.get(policy, "My strategy will be: " + policy.replace("_", " ") + ".")
    return template.format(gift=gift_text(context))


def trace_text(obs: dict[str, Any]) -> str:
    """'In round k, A donated 40% of their resources to B.' for each link of one donor's trace."""
    lines = []
    for level, k in enumerate(obs["trace_round"]):
        if k < 0:
            break
        share = f"{100.0 * float(obs['trace_share'][level]):.0f}% of their resources"
        did = f"spent {share} to punish" if obs["trace_punished"][level] else f"donated {share} to"
        actor = agent_name(obs["trace_actor_born"][level], obs["trace_actor"][level])
        target = agent_name(obs["trace_target_born"][level], obs["trace_target"][level])
        lines.append(f"In round {int(k) + 1}, {actor} {did} {target}.")
    return "\n".join(lines)


def strategy_variables(obs: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """Generation 1 writes its own strategy; later newcomers read the survivors' (fenced: others wrote them)."""
    advice = context.get("advice") or ()
    blocks = []
    if advice:
        blocks.append(
            "Here is the advice of the best-performing players of the previous generation, with their "
            "final scores. Modify this advice to create your own strategy."
        )
        for item in advice:
            text = item["text"] or describe_scripted(item["policy"], context)
            blocks.append(quote(f"Player {item['name']} (final score {units(item['score'])})", text))
    return {
        "rules": rules_text(context),
        "name": agent_name(obs["born"], obs["slot"]),
        "generation": context["generation"],
        "trace_help": trace_help(int(context["trace_depth"])),
        "advice": "\n\n".join(blocks),
        "reply_form": (
            "" if context.get("reply") == "free_text" else 'Reply as JSON: {"strategy": "My strategy will be ..."}.'
        ),
    }


def donation_question(context: dict[str, Any]) -> str:
    """The question and the reply form (JSON, or the paper's "Justification: ... Answer: ...")."""
    most = f"at most {units(context['cost'])}" if context.get("donation") == "fixed" else "at most what you have"
    think = "Very briefly think step by step about how to apply your strategy"
    if context.get("reply") == "free_text":
        think += " in this situation"
        if context.get("punishment"):
            answer = (
                "Answer: Donate, x  or  Answer: Punish, x\n(x is the number of units you give up: donating gives "
                f"the recipient {units(context['multiplier'])}x units, punishing takes "
                f"{units(context['punishment_multiplier'])}x units from them)"
            )
            ask = f"Do you donate or punish, and with how many units ({most})?"
        else:
            answer = "Answer: [the number of units you give up]"
            ask = f"How many units do you give up ({most})?"
        return (
            f"{ask} {think}, then give your answer. State your full response in the following form:\n"
            f"Justification:\n[your brief reasoning]\n\n{answer}\nFirst your justification, then your answer."
        )
    if context.get("punishment"):
        return (
            f"Do you donate or punish, and with how many units ({most})? {think}, then reply as JSON: "
            '{"justification": "...", "action": "donate" or "punish", "amount": <units>}.'
        )
    return (
        f"How many units do you give up ({most})? {think}, then reply as JSON: "
        '{"justification": "...", "amount": <units>}.'
    )


def donation_variables(obs: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """The donor's own strategy (fenced), the recipient's trace, then how much to give (or punish)."""
    recipient = agent_name(obs["recipient_born"], obs["recipient"])
    trace = trace_text(obs) if obs["observed"] else ""
    if context["round"] == 1:
        seen = "This is the first round, so there is no information about the recipient's behaviour."
    elif trace:
        seen = f"Here is what {recipient} and their earlier partners did in previous rounds:\n{trace}"
    else:
        seen = f"You have no information about what {recipient} did in previous rounds."
    own = str(obs.get("strategy") or "")
    question = donation_question(context)
    return {
        "rules": rules_text(context),
        "name": agent_name(obs["born"], obs["slot"]),
        "own_strategy": (
            "As you will recall, here is the strategy you decided to follow.\n" + quote("You", own) if own else ""
        ),
        "generation": context["generation"],
        "round": context["round"],
        "recipient": recipient,
        "recipient_resources": units(obs["recipient_resources"]),
        "seen": seen,
        "resources": units(obs["resources"]),
        "question": question,
    }


# ---- scripted strategies --------------------------------------------------------------------------------------
# They read the observation columns of every "donor_donation" batch: `resources` (what the donor
# holds), `observed` (whether the donor sees the recipient's trace this round, probability q) and
# `good_<norm>` (the recipient's standing under each assessment norm as the donor judges it: from the
# trace it is shown under `reputation=trace`, the public reputation under `global`).
# A cooperating scripted agent gives `gift`: a share of its resources, or a fixed cost (`donation`).


def _answer(batch: DecisionBatch, amount: np.ndarray, punish: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Values for every field of the donation spec: blank text, 'donate' (0) unless `punish` (1)."""
    values = Decisions.empty(batch.spec, len(batch)).values
    values["amount"] = amount.astype(np.float64)
    if punish is not None and "action" in values:
        values["action"] = punish.astype(np.int16)
    return values


@dataclass(frozen=True)
class AlwaysDefect:
    """Never gives anything."""

    def decide(self, batch: DecisionBatch) -> dict[str, np.ndarray]:
        return _answer(batch, np.zeros(len(batch)))


@dataclass(frozen=True)
class FixedFraction:
    """Unconditional cooperator: always gives its gift (`fraction` of its resources: 0 = defect, 1 = all;
    or the fixed cost)."""

    gift: Callable[[np.ndarray], np.ndarray]

    def decide(self, batch: DecisionBatch) -> dict[str, np.ndarray]:
        return _answer(batch, self.gift(batch.obs["resources"]))


@dataclass(frozen=True)
class Discriminator:
    """Gives its gift to recipients in good standing under `norm`; when it cannot see the recipient's
    trace (probability 1 - q) it gives, as in Nowak & Sigmund (1998). A recipient it sees in bad
    standing gets nothing, or, for a punisher (`punish`), is punished with the same amount."""

    norm: str
    gift: Callable[[np.ndarray], np.ndarray]
    punish: bool = False

    def decide(self, batch: DecisionBatch) -> dict[str, np.ndarray]:
        trusted = ~batch.obs["observed"] | batch.obs[f"good_{self.norm}"]
        amount = self.gift(batch.obs["resources"])
        can_punish = self.punish and any(f.name == "action" for f in batch.spec.fields)
        if not can_punish:
            return _answer(batch, np.where(trusted, amount, 0.0))
        return _answer(batch, amount, punish=~trusted)


Gift = float | Callable[[np.ndarray], np.ndarray]


def _gift(fraction: Gift) -> Callable[[np.ndarray], np.ndarray]:
    return fraction if callable(fraction) else (lambda resources, f=float(fraction): f * resources)


def donor_strategies(fraction: Gift) -> dict[str, AlwaysDefect | FixedFraction | Discriminator]:
    """The scripted strategies that never punish, by policy name. `fraction` is what a cooperating
    scripted agent gives (a share of its resources, or a function of them, e.g. `DonorGameConfig.gift`):
    fixed_fraction always, discriminators to recipients in good standing."""
    gift = _gift(fraction)
    return {
        "always_defect": AlwaysDefect(),
        "fixed_fraction": FixedFraction(gift),
        **{norm: Discriminator(norm, gift) for norm in NORMS},
    }


def punisher_strategies(fraction: Gift) -> dict[str, Discriminator]:
    """`<norm>_punisher`: gives like the `<norm>` discriminator, and punishes (spending as much) a
    recipient it sees in bad standing: the scripted baseline of the punishment variant."""
    gift = _gift(fraction)
    return {f"{norm}_punisher": Discriminator(norm, gift, punish=True) for norm in NORMS}


# ---- metrics --------------------------------------------------------------------------------------------------


def cooperated(frame: Frame) -> pl.Expr:
    """A donation of a positive amount (a punishment or a refusal is not); null for a missing decision."""
    require(frame, ["action", "amount"], "cooperation")
    return (pl.col("action") == "donate") & (pl.col("amount").cast(pl.Float64) > 0)


def donation_fraction(
    interactions: Frame, by: str | Sequence[str] = ("generation",), *, exclude_missing: bool = False
) -> pl.DataFrame:
    """Mean fraction of their resources donors gave, per run and `by` group.

    Every donor decision counts; a punishment gives nothing, so it counts as 0 (the question is how
    generous the society is). `missing_share` is the share of the group's decisions that were missing
    or fallbacks (the fallback column names a reason); they count in the mean unless `exclude_missing`.
    Columns: run_id, *by, fraction, n (decisions in the mean), missing_share.
    """
    group = keys(by)
    require(interactions, [*group, "action", "fraction"], "donation_fraction")
    given = pl.when(pl.col("action") == "donate").then(pl.col("fraction").cast(pl.Float64)).otherwise(0.0)
    missing = missing_decision(interactions, pl.col("action"))
    counted = pl.col("action").is_not_null() & (~missing if exclude_missing else pl.lit(True))
    return (
        lazy(interactions)
        .with_columns(missing.alias("_missing"), counted.alias("_counted"))
        .group_by(group)
        .agg(
            given.filter(pl.col("_counted")).mean().alias("fraction"),
            pl.col("_counted").sum().cast(pl.UInt32).alias("n"),
            pl.col("_missing").cast(pl.Float64).mean().alias("missing_share"),
        )
        .sort(group)
        .collect()
    )


def donation_trend(per_generation: pl.DataFrame, x: str = "generation", y: str = "fraction") -> pl.DataFrame:
    """Least-squares slope of the per-generation donation over generations, per run (change per generation).

    Takes `donation_fraction(...)`'s result. Columns: run_id, slope (null with a single generation).
    """
    require(per_generation, ["run_id", x, y], "donation_trend")
    return per_generation.group_by("run_id").agg(ols_slope(pl.col(x), pl.col(y)).alias("slope")).sort("run_id")


def _present(frame: Frame, by: str | Sequence[str]) -> list[str]:
    """The `by` keys the table has (states of other scenarios have no generation); step otherwise."""
    wanted = [by] if isinstance(by, str) else list(by)
    have = set(columns(frame))
    return [b for b in wanted if b in have] or ["step"]


def resource_gini(
    states: Frame, by: str | Sequence[str] = ("generation", "round"), resources: str = "resources"
) -> pl.DataFrame:
    """Gini coefficient of agents' resources per run and `by` group (0 equal, (n-1)/n one holds all).

    Columns: run_id, *by, gini, n.
    """
    group = keys(_present(states, by))
    require(states, [*group, resources], "resource_gini")
    return (
        lazy(states)
        .group_by(group)
        .agg(gini(pl.col(resources)).alias("gini"), pl.col(resources).drop_nulls().len().alias("n"))
        .sort(group)
        .collect()
    )


def final_round(states: Frame, round_col: str = "round") -> pl.LazyFrame:
    """Only the rows of each generation's last round: resources there are the generation's scores."""
    group = [c for c in ("run_id", "generation") if c in columns(states)]
    require(states, [*group, round_col], "final_round")
    return lazy(states).filter(pl.col(round_col) == pl.col(round_col).max().over(group))


def reputation_columns(states: Frame) -> list[str]:
    """The binary standing columns the donor game records, one per assessment norm (good_<norm>)."""
    return [c for c in columns(states) if c.startswith("good_")]


def reputation_dynamics(
    states: Frame,
    by: str | Sequence[str] = ("generation", "round"),
    reputation: str | Sequence[str] | None = None,
) -> pl.DataFrame:
    """Share of agents in good standing per run and `by` group, under each assessment norm.

    `reputation`: the column(s) to average; default every `good_<norm>` column.
    Columns: run_id, *by, one per reputation column (0..1), n.
    """
    if reputation is None:
        cols = reputation_columns(states)
    else:
        cols = [reputation] if isinstance(reputation, str) else list(reputation)
    if not cols:
        raise AnalysisError("reputation_dynamics: states have no good_<norm> (reputation) column")
    group = keys(_present(states, by))
    require(states, [*group, *cols], "reputation_dynamics")
    return (
        lazy(states)
        .group_by(group)
        .agg(*[pl.col(c).cast(pl.Float64).mean() for c in cols], pl.len().alias("n"))
        .sort(group)
        .collect()
    )


def strategy_labels(strategies: Frame) -> pl.LazyFrame:
    """Add `strategy_kind`: the scripted strategy's name, or "llm" for a language-model agent (whose
    `strategy` is free text, unique to each agent, so shares of it would mean nothing)."""
    require(strategies, ["policy", "strategy"], "strategy_labels")
    kind = pl.when(pl.col("policy").str.starts_with("llm")).then(pl.lit("llm")).otherwise(pl.col("strategy"))
    return lazy(strategies).with_columns(kind.alias("strategy_kind"))


def _final_resources(source: TableSource) -> pl.DataFrame:
    frame = source.table("strategies")
    require(frame, ["run_id", "generation", "final_resources"], "final_resources")
    return (
        frame.group_by("run_id", "generation")
        .agg(pl.col("final_resources").cast(pl.Float64).mean())
        .sort("run_id", "generation")
        .collect()
    )


def _good_standing(source: TableSource) -> pl.DataFrame:
    states = source.table("states")
    norms = reputation_columns(states)
    per_run = reputation_dynamics(states, by=["step"], reputation=norms)
    return per_run.unpivot(index=["run_id", "step"], on=norms, variable_name="norm", value_name="good")


# ---- the scenario ---------------------------------------------------------------------------------------------


class DonorGame(BaseScenario[DonorGameConfig, DonorWorld]):
    name = "donor_game"
    Config = DonorGameConfig
    World = DonorWorld
    prompts = {"donor_strategy": STRATEGY_PROMPT, "donor_donation": DONATION_PROMPT}
    tables = {
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
            "slipped": pl.Boolean(),  # an execution error turned the meant gift (or punishment) into 0
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
    metrics = (
        Metric("donation", "mean share of their resources donors gave, per generation (missing_share: decisions "
               "that were fallbacks)",
               lambda s: donation_fraction(s.table("interactions"), by="generation").rename({"fraction": "donation"}),
               x="generation"),
        Metric("cooperation", "share of donations of a positive amount, per generation and policy (missing_share: "
               "decisions that were fallbacks)",
               lambda s: rate(s.table("interactions"), cooperated(s.table("interactions")), ["generation", "policy"],
                              "cooperation", "cooperation"), x="generation", hue="policy"),
        Metric("share", "share of agents holding each strategy, per generation (language models as 'llm')",
               lambda s: strategy_shares(strategy_labels(s.table("strategies")), column="strategy_kind"),
               x="generation", hue="strategy_kind", plot="shares"),
        Metric("final_resources", "mean final resources of a generation", _final_resources, x="generation"),
        Metric("gini", "Gini coefficient of final resources, per generation",
               lambda s: resource_gini(final_round(s.table("states")), by="generation"), x="generation"),
        Metric("good", "share of agents in good standing under each assessment norm, per step",
               _good_standing, x="step", hue="norm"),
    )  # fmt: skip

    def __init__(self, config: DonorGameConfig) -> None:
        super().__init__(config)
        self.donation = donation_spec(config)
        self.writing = strategy_spec(config)
        self.llm = np.zeros(0, bool)
        self.targets = np.zeros(0, np.int16)

    # ---- declarations -----------------------------------------------------------------------------
    @classmethod
    def cooperated(cls, frame: Frame) -> pl.Expr:
        return cooperated(frame)

    def specs(self) -> dict[str, ActionSpec]:
        return {self.writing.name: self.writing, self.donation.name: self.donation}

    def strategies(self) -> dict[str, Any]:
        return {**donor_strategies(self.config.gift), **punisher_strategies(self.config.gift)}

    def default_mix(self) -> dict[str, float]:
        """Scripted default: the five strategies that never punish, so cultural evolution has something
        to select."""
        return dict.fromkeys(donor_strategies(self.config.gift), 0.2)

    def requirements(self, population: Population) -> list[str]:
        used = {population.policy_names[c] for c in np.unique(population.policy_codes)}
        punishers = sorted(used & set(punisher_strategies(0.0)))
        if punishers and not self.config.punishment:
            return [f"population.mix: {punishers[0]!r} punishes, which needs scenario.punishment=true"]
        return []

    def default_population_size(self) -> int | None:
        """The paper's 12 agents per generation."""
        return self.config.agents_per_generation

    def world_bytes(self, n: int, edges: float) -> float:
        """Per slot: resources, standing, lineage; per round and slot: whom it gave to, the share, punished;
        a round's plan carries the traces (trace_depth links of seven arrays)."""
        return n * (160.0 + 9 * self.config.rounds + 56 * self.config.trace_depth)

    def prompt_variables(self, spec: str, obs: dict, context: dict, seed: int) -> dict[str, Any]:
        if spec == self.writing.name:
            return strategy_variables(obs, context)
        return donation_variables(obs, context)

    def _alternating(self) -> bool:
        """Do roles alternate strictly (so an agent's last gift follows from its half)?"""
        return self.config.pairing == "alternating"

    # ---- life cycle -------------------------------------------------------------------------------
    def bind(self, population: Population, graph: SocialGraph) -> None:
        super().bind(population, graph)
        cfg, n = self.config, population.size
        if cfg.agents_per_generation is not None and n != cfg.agents_per_generation:
            raise ValueError(
                f"donor_game: population.size is {n} but scenario.agents_per_generation is "
                f"{cfg.agents_per_generation}; make them equal (or set scenario.agents_per_generation=null)"
            )
        if graph.is_complete and n % 2:
            raise ValueError(
                f"donor_game: population.size must be even on a complete graph (agents play in pairs); got {n}"
            )
        if cfg.pairing == "notebook" and not graph.is_complete:
            raise ValueError("donor_game: scenario.pairing=notebook needs graph=complete (the notebook has no graph)")
        self.llm = population.llm_mask
        codes = np.asarray(population.policy_codes, np.int16)
        self.targets = np.unique(codes[~self.llm])  # the scripted strategies the run started with

    def init(self, rng: np.random.Generator) -> DonorWorld:
        population, _ = self._bound()
        cfg, n = self.config, population.size
        world = DonorWorld(
            generation=1,
            phase=0,
            resources=np.full(n, cfg.initial_resources),
            reputation=np.ones((len(NORMS), n), bool),
            codes=np.asarray(population.policy_codes, np.int16).copy(),
            born=np.ones(n, np.int32),
            strategy=np.full(n, "", dtype=object),
            strategy_fallback=np.full(n, None, dtype=object),
            parent_slot=np.full(n, -1, np.int64),
            parent_born=np.zeros(n, np.int32),
            llm_parents=[None] * n,
            needs_strategy=self.llm.copy(),
            advice_slots=np.zeros(0, np.int64),
            advice_scores=np.zeros(0, np.float64),
            half=np.zeros(n, np.int8),
            side_a=np.zeros(0, np.int64),
            side_b=np.zeros(0, np.int64),
            offsets=np.zeros(0, np.int64),
            given_to=np.full((cfg.rounds, n), -1, np.int32),
            given_share=np.zeros((cfg.rounds, n), np.float32),
            punished=np.zeros((cfg.rounds, n), bool),
        )
        self._new_game(world, rng)
        return world

    def _steps_per_generation(self) -> int:
        return self.config.rounds + int(self.llm.any())

    def max_steps(self, world: DonorWorld) -> int:
        return self.config.generations * self._steps_per_generation()

    def done(self, world: DonorWorld) -> bool:
        return world.generation > self.config.generations

    def _round(self, world: DonorWorld) -> int:
        """0-based round of the current step, or -1 on a strategy-writing step."""
        return world.phase - int(self.llm.any())

    # ---- plan ---------------------------------------------------------------------------------------
    def plan(self, world: DonorWorld, step: int, rng: np.random.Generator) -> list[DecisionBatch]:
        if self.done(world):
            return []
        t = self._round(world)
        if t < 0:
            return self._plan_strategies(world)
        donors, recipients = self._pairs(world, t, rng)
        cfg, n = self.config, len(donors)
        observed = rng.random(n) < cfg.observation_probability
        rounds, actors, targets = trace_arrays(
            recipients, t, cfg.trace_depth, world.half, world.given_to, self._alternating()
        )
        known = rounds >= 0
        k, a, b = np.maximum(rounds, 0), np.maximum(actors, 0), np.maximum(targets, 0)
        share = np.where(known, world.given_share[k, a], 0.0)
        punished = known & world.punished[k, a]
        obs: dict[str, np.ndarray] = {
            "slot": donors,
            "born": world.born[donors],
            "recipient": recipients,
            "recipient_born": world.born[recipients],
            "resources": world.resources[donors],
            "recipient_resources": world.resources[recipients],
            "observed": observed,
            **self._judged_standing(world, recipients, rounds, (share > 0) & ~punished, rng),
            "trace_round": rounds,
            "trace_actor": actors,
            "trace_target": targets,
            "trace_actor_born": np.where(known, world.born[a], -1),
            "trace_target_born": np.where(known, world.born[b], -1),
            "trace_share": share,
            "trace_punished": punished,
            "strategy": world.strategy[donors],
        }
        context = {"generation": world.generation, "round": t + 1, **self._rules_context()}
        limit = world.resources[donors]
        batch = DecisionBatch(
            spec=self.donation,
            agent_ids=donors,
            obs=obs,
            context=context,
            bounds={"amount": np.minimum(limit, cfg.cost) if cfg.donation == "fixed" else limit},
        )
        batch.policies = world.codes[donors].copy()
        return [batch]

    def _judged_standing(
        self,
        world: DonorWorld,
        recipients: np.ndarray,
        rounds: np.ndarray,
        cooperated: np.ndarray,
        rng: np.random.Generator,
    ) -> dict[str, np.ndarray]:
        """good_<norm> per decision: the recipient's standing as a scripted discriminator judges it, from
        the trace it is shown (`reputation=trace`) or the public reputation (`global`); under trace,
        each judgement is wrong with probability `assessment_error`."""
        if self.config.reputation == "global":
            return {f"good_{norm}": world.reputation[j, recipients] for j, norm in enumerate(NORMS)}
        judged = {f"good_{norm}": trace_standing(rounds, cooperated, norm) for norm in NORMS}
        if self.config.assessment_error > 0:
            for key, good in judged.items():
                judged[key] = good ^ (rng.random(len(good)) < self.config.assessment_error)
        return judged

    def _rules_context(self) -> dict[str, object]:
        """The game's rules as the prompts state them (the same for donations and strategy writing)."""
        cfg = self.config
        return {
            "multiplier": cfg.multiplier,
            "punishment": cfg.punishment,
            "punishment_multiplier": cfg.punishment_multiplier,
            "initial_resources": cfg.initial_resources,
            "trace_depth": cfg.trace_depth,
            "reply": cfg.reply,
            "donation": cfg.donation,
            "cost": cfg.cost,
            "fraction": cfg.fraction,
            "continuation": cfg.continuation,
        }

    def longest_prompts(self, world: DonorWorld) -> list[tuple[DecisionBatch, str]]:
        """The strategy prompt with every survivor's strategy at its longest, and a last-round donation
        with a full trace and the donor's own strategy at its longest."""
        cfg, n = self.config, len(world.resources)
        if not self.llm.any():
            return []
        longest = DonorWorld.from_state(*world.state())
        longest.needs_strategy[:] = False
        longest.needs_strategy[0] = True
        longest.generation, longest.phase = cfg.generations, 0
        (writing,) = self._plan_strategies(longest)
        k = min(max(1, round(cfg.survivor_fraction * n)), MAX_ADVICE)
        text = "W" * cfg.strategy_chars
        advice = [{"name": agent_name(cfg.generations, n - 1), "score": 1e15, "policy": LLM, "text": text}] * k
        writing.context = {**writing.context, "advice": advice}
        longest.phase = int(self.llm.any()) + cfg.rounds - 1  # the last round
        (giving,) = self.plan(longest, 0, np.random.default_rng(0))
        depth = min(cfg.trace_depth, cfg.rounds - 1)
        obs = giving.obs
        obs["observed"][0], obs["strategy"][0] = True, text
        obs["resources"][0] = obs["recipient_resources"][0] = 1e15
        for key in ("trace_round", "trace_actor", "trace_target", "trace_actor_born", "trace_target_born"):
            obs[key][0, :depth] = (
                np.arange(cfg.rounds - 2, cfg.rounds - 2 - depth, -1) if key == "trace_round" else n - 1
            )
        obs["trace_share"][0, :depth] = 1.0
        return [(writing, "scenario.strategy_chars"), (giving, "scenario.trace_depth")]

    def _advice(self, world: DonorWorld) -> list[dict[str, Any]]:
        """What newcomers read: the survivors' names, scores and strategies, best first."""
        population, _ = self._bound()
        return [
            {
                "name": agent_name(world.born[i], i),
                "score": float(score),
                "policy": population.policy_names[world.codes[i]],
                "text": str(world.strategy[i]) if self.llm[i] else "",
            }
            for i, score in zip(world.advice_slots.tolist(), world.advice_scores.tolist(), strict=True)
        ]

    def _plan_strategies(self, world: DonorWorld) -> list[DecisionBatch]:
        writers = np.flatnonzero(world.needs_strategy)
        if not len(writers):
            return []
        batch = DecisionBatch(
            spec=self.writing,
            agent_ids=writers,
            obs={"slot": writers, "born": world.born[writers]},
            context={
                "generation": world.generation,
                "advice": self._advice(world),
                **self._rules_context(),
                "survivor_fraction": self.config.survivor_fraction,
            },
        )
        batch.policies = world.codes[writers].copy()
        return [batch]

    def _pairs(self, world: DonorWorld, t: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        _, graph = self._bound()
        if self.config.pairing == "notebook":
            donors, recipients = notebook_round(t, world.side_a, world.side_b)
        elif graph.is_complete:
            donors, recipients = bipartite_round(t, world.side_a, world.side_b, world.offsets)
        else:
            donors, recipients = neighbour_round(t, world.half, graph, world.given_to, rng)
        return donors.astype(np.int64), recipients.astype(np.int64)

    # ---- resolve ------------------------------------------------------------------------------------
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
                written = answer.values["strategy"]
                if self.writing.is_free_text:
                    kept = [strategy_from_reply(text) if isinstance(text, str) else text for text in written]
                    written = np.array(kept, dtype=object)
                world.strategy[batch.agent_ids] = written
                world.strategy_fallback[batch.agent_ids] = answer.fallback_reason
                world.needs_strategy[batch.agent_ids] = False
            world.phase += 1
            return StepResult(world=world, summary={"strategies_written": float(sum(map(len, batches)))})
        batch, answer = batches[0], decisions[0]
        tables, summary = self._play(world, t, batch, answer, rng)
        world.phase += 1
        decision_of = {"interactions": np.arange(len(batch), dtype=np.int64)}
        if self._game_over(t, rng):
            tables["strategies"] = self._end_generation(world, rng)
            summary["mean_final_resources"] = float(tables["strategies"]["final_resources"].mean())
        return StepResult(world=world, tables=tables, summary=summary, decision_of=decision_of)

    def _game_over(self, t: int, rng: np.random.Generator) -> bool:
        """After round t (0-based): the last of `rounds`, or (with `continuation` w) no further round,
        probability 1 - w."""
        w = self.config.continuation
        if t >= self.config.rounds - 1:
            return True
        return w is not None and rng.random() >= w

    def _play(
        self, world: DonorWorld, t: int, batch: DecisionBatch, answer: Decisions, rng: np.random.Generator
    ) -> tuple[dict[str, pl.DataFrame], dict[str, float]]:
        cfg = self.config
        donors, recipients = batch.agent_ids, batch.obs["recipient"]
        before = world.resources
        gives = ~answer.missing  # a missing decision voids that donation (see the module docstring)
        amount = np.clip(np.nan_to_num(answer.values["amount"].astype(np.float64)), 0.0, batch.bounds["amount"])
        amount = np.where(gives, amount, 0.0)
        punish = ((answer.values["action"] == 1) if cfg.punishment else np.zeros(len(donors), bool)) & gives
        slipped = np.zeros(len(donors), bool)
        if cfg.execution_error > 0:
            slipped = (amount > 0) & (rng.random(len(donors)) < cfg.execution_error)
            amount = np.where(slipped, 0.0, amount)
        after = settle(
            before, donors[gives], recipients[gives], amount[gives], punish[gives], cfg.multiplier,
            cfg.punishment_multiplier,
        )  # fmt: skip
        share = np.divide(amount, before[donors], out=np.zeros_like(amount), where=before[donors] > 0)
        cooperated = (amount > 0) & ~punish
        world.reputation = assess(world.reputation, donors[gives], recipients[gives], cooperated[gives])
        if cfg.assessment_error > 0 and cfg.reputation == "global":  # the public record errs
            wrong = rng.random((len(NORMS), len(donors))) < cfg.assessment_error
            world.reputation[:, donors[gives]] ^= wrong[:, gives]
        world.given_to[t, donors] = np.where(gives, recipients, -1)  # a void donation leaves no trace
        world.given_share[t, donors] = np.where(gives, share, 0.0)
        world.punished[t, donors] = punish
        world.resources = after
        n, m = len(before), len(donors)
        llm_rows = self.llm[donors]
        traces = np.full(m, None, dtype=object)
        for i in np.flatnonzero(llm_rows & batch.obs["observed"]):  # text only where a model read it
            traces[i] = trace_text(batch.row(i))
        interactions = pl.DataFrame(
            {
                "generation": np.full(m, world.generation, np.int32),
                "game": np.full(m, world.generation, np.int32),
                "round": np.full(m, t + 1, np.int32),
                "actor_id": donors,
                "target_id": recipients,
                "action": pl.Series(ACTIONS).gather(pl.Series(np.where(gives, punish, -1)).replace(-1, None)),
                "amount": pl.Series(np.where(gives, amount, np.nan), nan_to_null=True),
                "fraction": pl.Series(np.where(gives, share, np.nan), nan_to_null=True),
                "actor_before": before[donors],
                "actor_after": after[donors],
                "target_before": before[recipients],
                "target_after": after[recipients],
                "observed": batch.obs["observed"],
                "slipped": slipped,
                "trace": pl.Series(traces.tolist(), dtype=pl.String),
                "justification": _text_where(answer.values["justification"], llm_rows),
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
        population, _ = self._bound()
        cfg, n, g = self.config, len(world.resources), world.generation
        final = world.resources.copy()
        survived = survivors(final, cfg.survivor_fraction, rng)
        names = pl.Series(population.policy_names, dtype=pl.String)
        policy = names.gather(world.codes.astype(np.int64))
        if self.llm.any():  # an LLM agent's strategy is its text; a scripted agent's is its policy name
            scripted = np.asarray(population.policy_names, dtype=object)[world.codes]
            strategy = pl.Series(np.where(self.llm, world.strategy, scripted).tolist(), dtype=pl.String)
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
        order = np.flatnonzero(survived)[np.argsort(-final[survived], kind="stable")][:MAX_ADVICE]
        world.advice_slots, world.advice_scores = order.astype(np.int64), final[order]
        new_codes, parent = inherit_scripted(world.codes, survived, ~self.llm, self.targets, cfg.mutation_rate, rng)
        newborn = ~survived
        seeded = newborn & (parent >= 0)
        world.parent_slot = np.where(newborn, parent, world.parent_slot)
        world.parent_born = np.where(seeded, world.born[np.maximum(parent, 0)], world.parent_born).astype(np.int32)
        advisors = [agent_name(world.born[i], i) for i in order]
        for i in np.flatnonzero(newborn & self.llm):
            world.llm_parents[i] = advisors
        world.codes = new_codes.astype(np.int16)
        world.born = np.where(newborn, g + 1, world.born).astype(np.int32)
        world.strategy = np.where(newborn, "", world.strategy).astype(object)
        world.strategy_fallback = np.where(newborn, None, world.strategy_fallback).astype(object)
        world.needs_strategy = newborn & self.llm
        world.generation = g + 1
        world.phase = 0
        world.resources = np.full(n, cfg.initial_resources)
        world.reputation = np.ones_like(world.reputation)
        world.given_to.fill(-1)
        world.given_share.fill(0.0)
        world.punished.fill(False)
        self._new_game(world, rng)
        return table

    def _parents_column(self, world: DonorWorld) -> pl.Series:
        """Scripted agents: [the survivor they copied]; LLM agents: the survivors whose advice they read."""
        frame = pl.DataFrame({"name": _names(world.parent_born, world.parent_slot), "has": world.parent_slot >= 0})
        column = frame.select(
            pl.concat_list(pl.when("has").then("name")).list.drop_nulls().alias("parents")
        ).to_series()
        if not self.llm.any():
            return column
        rows = column.to_list()
        for i in np.flatnonzero(self.llm):
            rows[i] = list(world.llm_parents[i] or ())
        return pl.Series("parents", rows, dtype=pl.List(pl.String))

    def _new_game(self, world: DonorWorld, rng: np.random.Generator) -> None:
        """Draw the next game's halves and pairing offsets (see scenarios/donor_pairing.py)."""
        _, graph = self._bound()
        world.half, world.side_a, world.side_b = split_halves(len(world.resources), rng)
        world.offsets = rng.permutation(len(world.side_b)) if graph.is_complete else np.zeros(0, np.int64)


def _names(born: np.ndarray, slot: np.ndarray) -> pl.Series:
    """Vectorised `agent_name`: '<born>_<slot>' for many agents at once."""
    frame = pl.DataFrame({"b": np.asarray(born, np.int64), "s": np.asarray(slot, np.int64)})
    return frame.select(pl.concat_str([pl.col("b"), pl.lit("_"), pl.col("s")])).to_series()


def _text_where(values: np.ndarray | None, mask: np.ndarray) -> pl.Series:
    """Text where `mask`, null elsewhere (scripted agents neither see nor write text)."""
    if values is None or not mask.any():
        return pl.repeat(None, len(mask), dtype=pl.String, eager=True)
    out = np.full(len(mask), None, dtype=object)
    out[mask] = values[mask]
    return pl.Series(out.tolist(), dtype=pl.String)
