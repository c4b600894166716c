"""Iterated prisoner's dilemma and Battle of the Sexes (Akata et al. 2023), every edge one match.

A step plays one round of every match at once: all decisions of the round form one batch, so
scripted strategies run as a few numpy operations over all matches. Moves are J (0) and F (1);
in the PD J is cooperate. In BoS the row player (the edge's lower agent id) prefers J.

The prompt is the paper's: the rules in words from the player's side, one line per past round with
both players' points, then "Q: Which Option do you choose, Option J or Option F? A: Option".

A missing decision (a model that gave no usable answer; see `backend.on_failure`) voids that match's
round: the player's `action` is null, both players' payoffs for the round are null, and the round is
in both histories as unknown (-1). Prompts say the round did not count; scripted strategies read it as
no information and look back to the last round that was played.

Robustness factors (Akata et al. relabel options and vary the prompt; LLMs favour the first-named
option), each a config switch recorded in the manifest:
- `labels`: the two options' names in every prompt ([J, F] as in the paper). Records always hold the
  canonical move (`action` J = the first option, cooperate in the PD), whatever the labels.
- `option_order`: the order of the two options in the question: `paper` (shuffled per decision in the
  PD, fixed in BoS, as in the paper), `fixed`, `reversed`, `shuffled` (per decision, from its seed) or
  `per_agent` (one random order per agent for the whole run). The rules and the history keep the
  canonical order; `shown_first` records which option the question named first (LLM rows).
- `reply`: `constrained` (the answer is forced to an option label) or `free_text` (the paper's free
  completion after "A: Option", read by `ActionSpec.parse_free_text`; a reply naming no option is a
  failed decision, recorded with its reason).
- `prompt_variant`: `default`; `mistakes` (the rules add that the other player may make mistakes, the
  paper's robustness prompt for coordination); `predict` (predict the other player's move, then act:
  the prediction is recorded in `prediction`); `single_message` (no system message: rules, persona and
  history in one user message, as a single completion prompt).
- The persona-free condition of the paper: `population.persona_fields=[]` (an empty {persona_text}).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agents.decisions import ActionSpec, ChoiceField, DecisionBatch, Decisions
from agents.graph import SocialGraph
from agents.population import Population
from agents.prompts import Prompt, PromptTemplate
from scenarios.base import BaseScenario, Metric, ScenarioConfig, StepResult, TableSource
from scenarios.rows import Codes, Column, Const, Rows
from scenarios.tables import AnalysisError, Frame, columns, keys, lazy, rate, require
from scenarios.world import World

# ---- config -------------------------------------------------------------------------------------------


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


OptionOrder = Literal["paper", "fixed", "reversed", "shuffled", "per_agent"]


class IPDConfig(ScenarioConfig):
    name: Literal["ipd"] = "ipd"
    prompts: dict[str, str | None] = Field(default_factory=lambda: {"ipd_move": None})
    prompt_variant: Literal["default", "mistakes", "predict", "single_message"] = "default"
    labels: tuple[str, str] = Field(default=("J", "F"), description="the options' names in prompts (J, F)")
    option_order: OptionOrder = "paper"
    reply: Literal["constrained", "free_text"] = "constrained"
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

    @field_validator("labels")
    @classmethod
    def _readable_labels(cls, labels: tuple[str, str]) -> tuple[str, str]:
        for label in labels:
            if not label or label != label.strip() or len(label) > 16 or not re.fullmatch(r"[\w-]+", label):
                raise ValueError(
                    f"{label!r}: a label is one word of letters, digits, '_' or '-', at most 16 characters"
                )
        if labels[0].lower() == labels[1].lower():
            raise ValueError(f"the two labels must differ (got {list(labels)})")
        return labels

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


# ---- world ----------------------------------------------------------------------------------------------


@dataclass
class IPDWorld(World):
    """pairs[m] = (row player, column player); moves[m, side, r] in {0, 1}, -1 before it is played (and
    in a void round); order_flip[i]: agent i's questions name the second option first (option_order
    per_agent only). The players' memory (see `Memory`) is kept per match and side, [m, 2], updated as
    rounds are played: it follows from `moves` and is rebuilt from them when a checkpoint lacks it."""

    pairs: np.ndarray
    moves: np.ndarray
    round: int = 0
    order_flip: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    last_own: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int8))
    last_opp: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int8))
    prev_opp: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int8))
    opp_defected: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), bool))

    def memory(self) -> Memory:
        """The players' memory, one entry per decision of a round (match m's row player at 2m, its
        column player at 2m + 1): views, so `remember` updates the world."""
        return Memory(*(getattr(self, key).reshape(-1) for key in MEMORY_KEYS))

    def rebuild_memory(self) -> None:
        """Work the memory out from the histories (a world restored from a checkpoint without it)."""
        m, t = len(self.pairs), self.round
        past = self.moves[:, :, :t]
        memory = memory_of(past.reshape(2 * m, t), past[:, ::-1, :].reshape(2 * m, t))
        for key in MEMORY_KEYS:
            setattr(self, key, getattr(memory, key).reshape(m, 2).copy())


# ---- the decision ---------------------------------------------------------------------------------------

MOVES = ("J", "F")  # the canonical moves, as recorded: J is the first option (cooperate in the PD)


def move_spec(config: IPDConfig) -> ActionSpec:
    """The move (and, in the `predict` variant, the predicted move first) over the configured labels."""
    labels = config.labels
    move = ChoiceField(name="move", options=labels, description=f"Option {labels[0]} or Option {labels[1]}")
    if config.prompt_variant == "predict":
        predicted = ChoiceField(name="prediction", options=labels, description="the other player's predicted Option")
        fields: tuple[ChoiceField, ...] = (predicted, move)
        max_tokens = 48
    else:
        fields = (move,)
        longest = max(len(label) for label in labels)
        max_tokens = 2 if longest == 1 and config.reply == "constrained" else 8 + 2 * longest
    return ActionSpec(
        name="ipd_move",
        fields=fields,
        max_tokens=max_tokens,
        temperature=0.0,
        reply="free_text" if config.reply == "free_text" else "structured",
        free_text_labels={"prediction": "Prediction", "move": "Answer"} if len(fields) == 2 else {},
    )


MOVE_SPEC = move_spec(IPDConfig())

# ---- the prompt (Akata et al. 2023) and its variants ---------------------------------------------------------

_QUESTION = "{history}\nYou are currently playing round {round}.\n"
MOVE_PROMPT = Prompt(
    template=PromptTemplate(
        system="{rules}\n\n{persona_text}",
        user=_QUESTION + "Q: Which Option do you choose, Option {first} or Option {second}?\nA: Option",
    ),
    variables=("rules", "history", "round", "first", "second", "answer_format"),
)
VARIANTS = {
    # Akata et al.'s robustness prompt for coordination, in our words: the other player may err
    "mistakes": PromptTemplate(
        system=(
            "{rules}\nBe aware that the other player can make mistakes: now and then they may choose an Option "
            "they did not mean to choose.\n\n{persona_text}"
        ),
        user=MOVE_PROMPT.template.user,
    ),
    # predict-then-act: first the other player's next move, then one's own
    "predict": PromptTemplate(
        system=MOVE_PROMPT.template.system,
        user=(
            _QUESTION + "Q: First predict which Option the other player will choose in this round, Option {first} "
            "or Option {second}. Then, given your prediction, which Option do you choose?\n{answer_format}"
        ),
    ),
    # one user message and no system message, as a single completion prompt
    "single_message": PromptTemplate(system="", user="{rules}\n\n{persona_text}\n\n" + MOVE_PROMPT.template.user),
}
_MASK64 = (1 << 64) - 1


def _points(x: float) -> str:
    return f"{float(x):g}"


def rules_text(payoffs: list, side: int, rounds: int, labels: tuple[str, str] = MOVES) -> str:
    """The game in words from one player's side: P[side][mine][theirs] = [my points, their points]."""
    lines = [
        "You are playing a game repeatedly with another player. In this game, you can choose between "
        f"Option {labels[0]} and Option {labels[1]}. You will play {rounds} rounds in total with the same "
        "player. The rules of the game are as follows:"
    ]
    for mine, my_label in enumerate(labels):
        for theirs, their_label in enumerate(labels):
            mine_pts, their_pts = payoffs[side][mine][theirs]
            lines.append(
                f"If you choose Option {my_label} and the other player chooses Option {their_label}, "
                f"then you win {_points(mine_pts)} points and the other player wins "
                f"{_points(their_pts)} points."
            )
    return "\n".join(lines)


def history_lines(own: Any, opp: Any, payoffs: list, side: int, labels: tuple[str, str] = MOVES) -> list[str]:
    lines = []
    for i, (mine, theirs) in enumerate(zip(own, opp, strict=True), start=1):
        if mine < 0 or theirs < 0:  # a void round: a choice was never made (see the module docstring)
            lines.append(f"In round {i}, no choice was recorded for one of you, so the round did not count.")
            continue
        mine_pts, their_pts = payoffs[side][int(mine)][int(theirs)]
        lines.append(
            f"In round {i}, you chose Option {labels[int(mine)]} and the other player chose Option "
            f"{labels[int(theirs)]}. Thus, you won {_points(mine_pts)} points and the other player won "
            f"{_points(their_pts)} points."
        )
    return lines


def seed_bit(seed: int) -> bool:
    """A fixed bit of a mixed decision seed (the per-decision shuffle)."""
    z = (seed * 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 31)) * 0xBF58476D1CE4E5B9) & _MASK64
    return bool((z >> 63) & 1)


def seed_bits(seeds: np.ndarray) -> np.ndarray:
    """`seed_bit` of many seeds at once (uint64 arithmetic wraps like the masked Python integers)."""
    z = np.asarray(seeds, np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(31))) * np.uint64(0xBF58476D1CE4E5B9)
    return (z >> np.uint64(63)).astype(bool)


def effective_order(order: str, game: str) -> str:
    """`paper` means what Akata et al. did: shuffled in the PD, fixed in BoS."""
    return ("shuffled" if game == "pd" else "fixed") if order == "paper" else order


def option_order(seed: int, shuffle: bool) -> tuple[str, str]:
    """("J", "F") or ("F", "J"): a fixed bit of a mixed seed, so it is reproducible per decision."""
    return MOVES[::-1] if shuffle and seed_bit(seed) else MOVES


def order_flipped(order: str, game: str, seed: int, agent_flip: Any = None) -> bool:
    """Does this decision's question name the second option first?"""
    order = effective_order(order, game)
    if order == "shuffled":
        return seed_bit(seed)
    if order == "per_agent":
        return bool(agent_flip)
    return order == "reversed"


def answer_format(reply: str, first: str, second: str) -> str:
    """How the `predict` variant asks for its two answers, in the reply mode's terms."""
    if reply == "free_text":
        return f"Answer in this form:\nPrediction: Option <{first} or {second}>\nAnswer: Option <{first} or {second}>"
    return f'Reply as JSON: {{"prediction": "<{first} or {second}>", "move": "<{first} or {second}>"}}'


# ---- scripted strategies (Axelrod's / Akata et al.'s opponents) -----------------------------------------------
# A strategy reads what a player remembers of its match (`Memory`): the moves of the last round both
# players' moves are known in, the other's move in the played round before it, and whether the other
# has ever played F. That is all the strategies below look at, so the engine keeps it as running state
# in the world (updated once per round) instead of rescanning the histories every round: a step costs
# the same in round 1,000 as in round 1. `STRATEGIES[name](own, opp, t, u)` is the same strategy as a
# function of the two histories (int8 arrays [n, t], 0 = J, 1 = F, -1 in a void round), as in Axelrod's
# library; `memory_of` turns histories into a Memory. A void round is no information: the strategies
# that look back read the last rounds that were played. `t` is the round about to be played, `u` one
# uniform draw per decision; a strategy returns n moves, with no loop over matches.

J, F = 0, 1
Move = np.int8
NONE = -1  # no such round yet


@dataclass(frozen=True)
class Memory:
    """Per decision: own and other's move in the last round both moves are known in, the other's move
    in the played round before that (NONE where there is no such round), and whether the other has
    played F in any round its move is known in (void rounds included)."""

    last_own: np.ndarray
    last_opp: np.ndarray
    prev_opp: np.ndarray
    opp_defected: np.ndarray

    def __len__(self) -> int:
        return len(self.last_opp)

    def take(self, index: np.ndarray) -> Memory:
        """The memories at `index`."""
        return Memory(self.last_own[index], self.last_opp[index], self.prev_opp[index], self.opp_defected[index])


def _last_played(own: np.ndarray, opp: np.ndarray, back: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """For every match, the index of the `back`-th last round both moves are known in (-1: none)."""
    t = own.shape[1]
    played = (own >= 0) & (opp >= 0)
    if played.all():  # the common case, and the cheap one
        index = t - back
        return np.full(len(own), index), np.full(len(own), index >= 0)
    count = np.cumsum(played[:, ::-1], axis=1)  # played rounds counted from the end
    hit = (count == back) & played[:, ::-1]
    found = hit.any(axis=1)
    return np.where(found, t - 1 - hit.argmax(axis=1), -1), found


def _every_memory() -> Memory:
    """Every memory a player can be in (last own, last other's and the other's move before it: NONE, J
    or F; whether the other ever played F), in the order `state_of` numbers them."""
    moves = np.array([NONE, J, F], Move)
    own, opp, prev, defected = np.meshgrid(moves, moves, moves, np.array([False, True]), indexing="ij")
    return Memory(own.reshape(-1), opp.reshape(-1), prev.reshape(-1), defected.reshape(-1))


STATES = _every_memory()


def state_of(memory: Memory) -> np.ndarray:
    """Each player's memory as its position in STATES (int32)."""
    state = memory.last_own.astype(np.int32)
    state *= 3
    state += memory.last_opp
    state *= 3
    state += memory.prev_opp
    state *= 2
    state += memory.opp_defected
    state -= NONE * (3 * 3 * 2 + 3 * 2 + 2)  # NONE, J and F numbered 0, 1 and 2
    return state


def memory_of(own: np.ndarray, opp: np.ndarray) -> Memory:
    """What players remember after the rounds of these histories ([n, t] int8, -1 in a void round)."""
    own, opp = np.asarray(own, Move).reshape(len(own), -1), np.asarray(opp, Move).reshape(len(opp), -1)
    rows = np.arange(len(opp))

    def at(history: np.ndarray, back: int) -> np.ndarray:
        index, found = _last_played(own, opp, back)
        if not history.shape[1]:
            return np.full(len(history), NONE, Move)
        return np.where(found, history[rows, np.maximum(index, 0)], NONE).astype(Move)

    return Memory(at(own, 1), at(opp, 1), at(opp, 2), (opp == F).any(axis=1))


def blank_memory(n: int) -> Memory:
    """The memory of n players before the first round."""
    return Memory(np.full(n, NONE, Move), np.full(n, NONE, Move), np.full(n, NONE, Move), np.zeros(n, bool))


def remember(memory: Memory, own: np.ndarray, opp: np.ndarray) -> None:
    """Add one round (own and other's move per player, -1 where unknown) to `memory`, in place: exactly
    what `memory_of` gives for the histories with this round appended."""
    played = (own >= 0) & (opp >= 0)
    if played.all():  # the common case: plain copies cost a fraction of masked ones
        memory.prev_opp[:] = memory.last_opp
        memory.last_opp[:] = opp
        memory.last_own[:] = own
    else:
        np.copyto(memory.prev_opp, memory.last_opp, where=played)
        np.copyto(memory.last_opp, opp, where=played)
        np.copyto(memory.last_own, own, where=played)
    np.logical_or(memory.opp_defected, opp == F, out=memory.opp_defected)


def _const(move: int):
    return lambda memory, t, u: np.full(len(memory), move, Move)


def _copy_last(opening: int):
    def play(memory: Memory, t: int, u: np.ndarray) -> np.ndarray:
        last = memory.last_opp
        return np.where(last >= 0, last, opening).astype(Move)

    return play


def tit_for_two_tats(memory: Memory, t: int, u: np.ndarray) -> np.ndarray:
    """Defect only after two defections in a row."""
    return ((memory.last_opp == F) & (memory.prev_opp == F)).astype(Move)


def grim_trigger(memory: Memory, t: int, u: np.ndarray) -> np.ndarray:
    """Cooperate until the other defects once, then defect for ever."""
    return memory.opp_defected.astype(Move)


def win_stay_lose_shift(memory: Memory, t: int, u: np.ndarray) -> np.ndarray:
    """Pavlov: keep the last move after R or T (the other played J), switch after S or P."""
    mine, theirs = memory.last_own, memory.last_opp
    return np.where(theirs >= 0, np.where(theirs == J, mine, 1 - mine), J).astype(Move)


def alternate(memory: Memory, t: int, u: np.ndarray) -> np.ndarray:
    """J, F, J, F, ..."""
    return np.full(len(memory), t % 2, Move)


def defect_once(memory: Memory, t: int, u: np.ndarray) -> np.ndarray:
    """F in the first round, J afterwards (the probe that shows who forgives)."""
    return np.full(len(memory), F if t == 0 else J, Move)


def random_move(memory: Memory, t: int, u: np.ndarray) -> np.ndarray:
    """J or F with probability 1/2, from the decision's own seed."""
    return (u < 0.5).astype(Move)


PLAYS = {
    "always_cooperate": _const(J),
    "always_defect": _const(F),
    "tit_for_tat": _copy_last(J),
    "suspicious_tit_for_tat": _copy_last(F),
    "tit_for_two_tats": tit_for_two_tats,
    "grim_trigger": grim_trigger,
    "win_stay_lose_shift": win_stay_lose_shift,
    "alternate": alternate,
    "defect_once": defect_once,
    "random": random_move,
}


def _over_histories(play):
    def strategy(own: np.ndarray, opp: np.ndarray, t: int, u: np.ndarray) -> np.ndarray:
        return play(memory_of(np.asarray(own)[:, :t], np.asarray(opp)[:, :t]), t, u)

    strategy.__doc__ = play.__doc__
    return strategy


STOCHASTIC = frozenset({"random"})  # strategies that read their decision's uniform draw
# the same strategies as functions of the two histories (own, opp, t, u)
STRATEGIES = {name: _over_histories(play) for name, play in PLAYS.items()}
MEMORY_KEYS = ("last_own", "last_opp", "prev_opp", "opp_defected")


@dataclass(frozen=True)
class IPDStrategy:
    """Adapter from a strategy to the engine's ScriptedPolicy (batch in, moves out): it reads the
    players' memory from the batch (the engine's running state), or works it out from the histories
    when a batch carries only those. A scripted player predicts nothing (-1: recorded as null in the
    `predict` variant)."""

    name: str

    def decide(self, batch: DecisionBatch) -> dict[str, np.ndarray]:
        return self.decide_mix(batch, {0: self.name}, None)

    @staticmethod
    def decide_mix(batch: DecisionBatch, names: dict[int, str], codes: np.ndarray | None) -> dict[str, np.ndarray]:
        """The moves of a batch whose decision i belongs to strategy names[codes[i]] (every decision to
        names[0] without codes), in one pass. A deterministic strategy reads only the player's memory
        (54 possible states) and the round, so each is asked once per state and a decision's move is
        looked up from its strategy and state (the memory-one strategies of Nowak & Sigmund (1993) as
        tables); a stochastic one is asked on its own decisions with their own uniform draws. Decision
        i's move is the one its own strategy gives it, exactly as when decided apart."""
        t = int(batch.context["round"])
        if MEMORY_KEYS[0] in batch.obs:
            memory = Memory(*(batch.obs[key] for key in MEMORY_KEYS))
        else:
            memory = memory_of(batch.obs["own"][:, :t], batch.obs["opp"][:, :t])
        if codes is None:
            u = batch.uniforms() if names[0] in STOCHASTIC else None
            move = PLAYS[names[0]](memory, t, u).astype(np.int16)
        else:
            table = np.zeros((max(names) + 1, len(STATES)), np.int16)
            for code, name in names.items():
                if name not in STOCHASTIC:
                    table[code] = PLAYS[name](STATES, t, None)
            where = np.asarray(codes, np.int32) * len(STATES)
            where += state_of(memory)
            move = table.reshape(-1)[where]
            for code, name in names.items():
                if name in STOCHASTIC and len(mine := np.flatnonzero(codes == code)):
                    move[mine] = PLAYS[name](memory.take(mine), t, batch.uniforms(mine))
        out = {"move": move}
        if len(batch.spec.fields) > 1:  # the predict variant: (prediction, move)
            out["prediction"] = np.full(len(batch), -1, np.int16)
        return out


# ---- metrics ----------------------------------------------------------------------------------------------
# In the PD the options are labelled J (cooperate) and F (defect), as in Akata et al. (2023).


def cooperated(frame: Frame) -> pl.Expr:
    """Did the actor cooperate (play J) in this row? Battle of the sexes has no cooperative option,
    so asking it of a BoS run is an error rather than a mislabelled J-rate."""
    require(frame, ["action"], "cooperation")
    if "param_game" in columns(frame):
        games = lazy(frame).select(pl.col("param_game").unique()).collect()["param_game"].to_list()
        if any(str(g).lower() in {"bos", "battle_of_the_sexes"} for g in games):
            raise AnalysisError("cooperation_rate: battle-of-the-sexes runs have no cooperative action")
    return pl.col("action") == "J"


def cooperation_by_round(source: TableSource) -> pl.DataFrame:
    frame = source.table("interactions")
    return rate(frame, cooperated(frame), ["round", "policy"], "cooperation", "cooperation")


def mean_payoff_by_strategy(interactions: Frame) -> pl.DataFrame:
    """Mean payoff per decision (one player, one round) of each policy, per run.

    Columns: run_id, policy, payoff, n.
    """
    group = keys("policy")
    require(interactions, [*group, "payoff_actor"], "mean_payoff_by_strategy")
    return (
        lazy(interactions)
        .group_by(group)
        .agg(pl.col("payoff_actor").cast(pl.Float64).mean().alias("payoff"), pl.len().alias("n"))
        .sort(group)
        .collect()
    )


def match_scores(interactions: Frame) -> pl.DataFrame:
    """Each player's total over each match, with the opponent's total: the unit a tournament ranks.

    Columns: run_id, match_id, actor_id, policy, score, opponent_score, rounds.
    """
    require(interactions, ["run_id", "match_id", "actor_id", "policy", "payoff_actor"], "match_scores")
    per_player = (
        lazy(interactions)
        .group_by(["run_id", "match_id", "actor_id", "policy"])
        .agg(pl.col("payoff_actor").cast(pl.Float64).sum().alias("score"), pl.len().alias("rounds"))
    )
    # Two players per match: the opponent's total is the match total minus one's own.
    return (
        per_player.with_columns(
            (pl.col("score").sum().over(["run_id", "match_id"]) - pl.col("score")).alias("opponent_score"),
            pl.len().over(["run_id", "match_id"]).alias("_players"),
        )
        .filter(pl.col("_players") == 2)
        .drop("_players")
        .sort(["run_id", "match_id", "actor_id"])
        .collect()
    )


def tournament_ranking(interactions: Frame) -> pl.DataFrame:
    """Axelrod-style ranking of policies per run by mean match score (total payoff over a match).

    Columns: run_id, policy, score (mean match total), win_rate, draw_rate, matches, rank (1 = best;
    ties share the better rank).
    """
    scores = match_scores(interactions)
    return (
        scores.group_by(["run_id", "policy"])
        .agg(
            pl.col("score").mean(),
            (pl.col("score") > pl.col("opponent_score")).mean().alias("win_rate"),
            (pl.col("score") == pl.col("opponent_score")).mean().alias("draw_rate"),
            pl.len().alias("matches"),
        )
        .with_columns(pl.col("score").rank(method="min", descending=True).over("run_id").cast(pl.Int64).alias("rank"))
        .sort(["run_id", "rank", "policy"])
    )


# ---- the scenario ---------------------------------------------------------------------------------------------


def greedy_matchings(edges: np.ndarray, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """k rounds of a random maximal matching along edges, never reusing an edge: in each round the
    unused edges are taken in a random order and an edge is kept when neither end is matched yet.

    Computed without a loop over edges: an edge that comes first (in the round's order) among the
    remaining edges at both of its ends is kept by the one-at-a-time rule, so each pass keeps every
    such edge and drops the edges touching their ends (the parallel form of greedy matching, which
    keeps exactly the same edges; about log² passes). Returns the kept edges, sorted."""
    used = np.zeros(len(edges), bool)
    for _ in range(k):
        order = rng.permutation(np.flatnonzero(~used))
        u, v = edges[order, 0], edges[order, 1]
        rank = np.arange(len(order))
        alive = np.arange(len(order))
        busy = np.zeros(n, bool)
        while len(alive):
            first = np.full(n, len(order))
            np.minimum.at(first, u[alive], rank[alive])
            np.minimum.at(first, v[alive], rank[alive])
            keep = alive[(first[u[alive]] == alive) & (first[v[alive]] == alive)]
            busy[u[keep]] = busy[v[keep]] = True
            used[order[keep]] = True
            alive = alive[~busy[u[alive]] & ~busy[v[alive]]]
    return edges[np.flatnonzero(used)]


def complete_matchings(n: int, k: int, rng: np.random.Generator, tries: int = 64) -> np.ndarray:
    """k rounds of a random perfect matching of n agents (everyone linked to everyone), never reusing a
    pair, without listing the n²/2 pairs: each round pairs a random permutation's neighbours; pairs that
    were used before are re-drawn among themselves and as many other pairs of the round (up to `tries`
    times; a pair still used after that is dropped, so those agents play one match fewer). Returns the
    pairs (u < v), sorted."""
    half = n // 2
    used = np.zeros(0, np.int64)  # keys u * n + v, sorted
    for _ in range(k):
        order = rng.permutation(n)[: 2 * half]
        lo, hi = np.minimum(order[0::2], order[1::2]), np.maximum(order[0::2], order[1::2])
        bad = np.isin(lo * n + hi, used, assume_unique=False)
        for _ in range(tries):
            if not bad.any():
                break
            redo = np.flatnonzero(bad)
            others = np.flatnonzero(~bad)
            redo = np.concatenate([redo, rng.choice(others, min(len(others), max(len(redo), 2)), replace=False)])
            pool = rng.permutation(np.concatenate([lo[redo], hi[redo]]))
            a, b = pool[: len(redo)], pool[len(redo) :]
            lo[redo], hi[redo] = np.minimum(a, b), np.maximum(a, b)
            bad = np.isin(lo * n + hi, used)
        keys = (lo * n + hi)[~bad]
        used = np.union1d(used, keys)
    return np.stack([used // n, used % n], axis=1)


LISTED_COMPLETE = 4096  # complete graphs up to this many agents list their pairs for the matchings


def random_matchings(graph: SocialGraph, k: int, rng: np.random.Generator) -> np.ndarray:
    """k random matchings along the graph's edges, never reusing an edge: every agent plays at most k
    matches (exactly k on a complete graph with an even number of agents, almost always). A complete
    graph of up to LISTED_COMPLETE agents is matched greedily over its listed pairs (the same draws as
    a graph given as an edge list); a larger one without listing them (see `complete_matchings`)."""
    if graph.complete and graph.n > LISTED_COMPLETE:
        return complete_matchings(graph.n, k, rng)
    return greedy_matchings(graph.edge_list(), graph.n, k, rng)


class IteratedGame(BaseScenario[IPDConfig, IPDWorld]):
    name = "ipd"
    Config = IPDConfig
    World = IPDWorld
    prompts = {"ipd_move": MOVE_PROMPT}
    prompt_variants = {name: {"ipd_move": template} for name, template in VARIANTS.items()}
    tables = {
        "interactions": {
            "match_id": pl.Int64(),
            "round": pl.Int32(),
            "actor_id": pl.Int64(),
            "target_id": pl.Int64(),
            "action": pl.String(),
            "flipped": pl.Boolean(),
            "payoff_actor": pl.Float64(),
            "payoff_target": pl.Float64(),
            "prediction": pl.String(),  # predict variant: the move the actor predicted (canonical J/F)
            "shown_first": pl.String(),  # LLM rows: the option the question named first (canonical J/F)
        }
    }
    metrics = (
        Metric("cooperation", "share of cooperative moves (J) per round, by policy; PD only (missing_share: decisions "
               "that were fallbacks)",
               cooperation_by_round, x="round", hue="policy"),
        Metric("match_score", "mean total payoff per match, by policy (the tournament ranking)",
               lambda s: tournament_ranking(s.table("interactions")).rename({"score": "match_score"}),
               hue="policy", plot="bars"),
        Metric("payoff", "mean points per move, by policy",
               lambda s: mean_payoff_by_strategy(s.table("interactions")), hue="policy", plot="bars"),
    )  # fmt: skip

    def __init__(self, config: IPDConfig) -> None:
        super().__init__(config)
        self.payoffs = config.payoff_table()
        self.move_spec = move_spec(config)

    @classmethod
    def cooperated(cls, frame: Frame) -> pl.Expr:
        return cooperated(frame)

    def specs(self) -> dict[str, ActionSpec]:
        return {self.move_spec.name: self.move_spec}

    def strategies(self) -> dict[str, IPDStrategy]:
        return {name: IPDStrategy(name) for name in STRATEGIES}

    def default_mix(self) -> dict[str, float]:
        return dict.fromkeys(STRATEGIES, 1.0 / len(STRATEGIES))

    def world_bytes(self, n: int, edges: float) -> float:
        """Every match keeps both players' moves (int8 per round), their memory and the run's fixed
        columns (match ids, targets); a step's plan copies the histories only for language models."""
        k = self.config.matches_per_agent
        pairs = edges if k is None else min(edges, n * k / 2)
        return pairs * (16 + 2 * self.config.rounds * 3 + 80) + 64.0 * n

    def prompt_variables(self, spec: str, obs: dict, context: dict, seed: int) -> dict[str, Any]:
        side, payoffs = int(obs["side"]), context["payoffs"]
        labels = tuple(context.get("labels", MOVES))
        flip = order_flipped(
            context.get("option_order", "paper"), context.get("game", "pd"), seed, obs.get("order_flip")
        )
        first, second = (labels[1], labels[0]) if flip else (labels[0], labels[1])
        return {
            "rules": rules_text(payoffs, side, int(context["rounds"]), labels),
            "history": "\n".join(history_lines(obs["own"], obs["opp"], payoffs, side, labels)),
            "round": int(context["round"]) + 1,
            "first": first,
            "second": second,
            "answer_format": answer_format(context.get("reply", "constrained"), first, second),
        }

    def bind(self, population: Population, graph: SocialGraph) -> None:
        super().bind(population, graph)
        self.llm = population.llm_mask
        self._match_columns: tuple[np.ndarray, ...] | None = None

    def init(self, rng: np.random.Generator) -> IPDWorld:
        _, graph = self._bound()
        k = self.config.matches_per_agent
        # a round robin plays every pair: the science needs each one (a complete graph lists them here)
        pairs = graph.edge_list() if k is None else random_matchings(graph, k, rng)
        if len(pairs) == 0:
            raise ValueError("the graph has no edges: no matches to play")
        m = len(pairs)
        moves = np.full((m, 2, self.config.rounds), -1, np.int8)
        world = IPDWorld(pairs=np.asarray(pairs, np.int64), moves=moves)
        blank = blank_memory(2 * m)
        for key in MEMORY_KEYS:
            setattr(world, key, getattr(blank, key).reshape(m, 2))
        if self.config.option_order == "per_agent":  # drawn last: the other streams stay as they were
            world.order_flip = rng.random(graph.n) < 0.5
        return world

    def restore(self, arrays: dict[str, np.ndarray], data: dict[str, Any]) -> IPDWorld:
        world = IPDWorld.from_state(arrays, data)
        if world.last_opp.shape != (len(world.pairs), 2):  # a checkpoint from before the memory was kept
            world.rebuild_memory()
        return world

    def max_steps(self, world: IPDWorld) -> int:
        return self.config.rounds

    def done(self, world: IPDWorld) -> bool:
        return world.round >= self.config.rounds

    def _columns_of(self, world: IPDWorld) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(match_id, target_id, side, decision index) per decision: fixed for the run, so built once."""
        if self._match_columns is None or len(self._match_columns[0]) != 2 * len(world.pairs):
            m = len(world.pairs)
            self._match_columns = (
                np.repeat(np.arange(m, dtype=np.int64), 2),
                world.pairs[:, ::-1].reshape(-1),
                np.tile(np.array([0, 1], np.int8), m),
                np.arange(2 * m, dtype=np.int64),
            )
        return self._match_columns

    def plan(self, world: IPDWorld, step: int, rng: np.random.Generator) -> list[DecisionBatch]:
        """One decision per player of every match; the players' memory as views of the world (what
        scripted strategies read), and the histories only when a language model reads them."""
        t, m = world.round, len(world.pairs)
        agents = world.pairs.reshape(-1)  # (m0 row, m0 col, m1 row, ...)
        memory = world.memory()
        obs = {key: getattr(memory, key) for key in MEMORY_KEYS}
        obs["side"] = self._columns_of(world)[2]
        if self.llm.any():
            past = world.moves[:, :, :t]
            obs["own"] = past.reshape(2 * m, t)
            obs["opp"] = past[:, ::-1, :].reshape(2 * m, t)
        if len(world.order_flip):
            obs["order_flip"] = world.order_flip[agents]
        c = self.config
        context = {
            "round": t,
            "rounds": c.rounds,
            "game": c.game,
            "payoffs": self.payoffs.tolist(),
            "labels": list(c.labels),
            "option_order": c.option_order,
            "reply": c.reply,
        }
        return [DecisionBatch(spec=self.move_spec, agent_ids=agents, obs=obs, context=context)]

    def longest_prompts(self, world: IPDWorld) -> list[tuple[DecisionBatch, str]]:
        """The last round of a match: the whole history is in the prompt."""
        last = max(self.config.rounds - 1, 0)
        moves = np.zeros((1, 2, self.config.rounds), np.int8)
        longest = IPDWorld(pairs=world.pairs[:1], moves=moves, round=last, order_flip=world.order_flip)
        longest.rebuild_memory()  # the players' memory of that history (what plan() hands scripted agents)
        return [(self.plan(longest, last, np.random.default_rng(0))[0], "scenario.rounds")]

    def shown_first(self, batch: DecisionBatch) -> Column:
        """The canonical option each LLM decision's question named first (null for scripted agents)."""
        llm = self.llm[batch.agent_ids] if self.llm.any() else None
        if llm is None or not llm.any():
            return Const(None)
        order = effective_order(self.config.option_order, self.config.game)
        n = len(batch)
        if order == "shuffled" and batch.seeds is not None:
            flip = seed_bits(batch.seeds)
        elif order == "per_agent":
            flip = np.asarray(batch.obs["order_flip"], bool)
        else:
            flip = np.full(n, order == "reversed")
        return Codes(np.where(llm, flip.astype(np.int8), -1), MOVES)

    def resolve(
        self,
        world: IPDWorld,
        step: int,
        batches: list[DecisionBatch],
        decisions: list[Decisions],
        rng: np.random.Generator,
    ) -> StepResult:
        t, m = world.round, len(world.pairs)
        answer = decisions[0]
        intended = answer.values["move"].astype(np.int8)
        missing = answer.missing
        flipped: np.ndarray | Const = Const(False)
        if self.config.noise:
            flipped = (rng.random(2 * m) < self.config.noise) & ~missing  # noise flips a move that was made
            intended ^= flipped
        lost = bool(missing.any())
        played = np.where(missing, -1, intended).astype(np.int8) if lost else intended  # one entry per decision
        by_match = played.reshape(m, 2)
        world.moves[:, :, t] = by_match
        remember(world.memory(), played, by_match[:, ::-1].reshape(-1))
        # a missing move voids the match's round for both players
        void = (missing[0::2] | missing[1::2]) if lost else np.zeros(m, bool)
        voided = bool(void.any())
        moves = np.maximum(by_match, 0) if voided else by_match  # a void round's points are NaN below
        outcome = moves[:, 0] << 1
        outcome |= moves[:, 1]  # row's move, column's move as one number, 0..3
        table, outcome = self.payoffs[0].reshape(4, 2), outcome.astype(np.intp)
        points = np.take(table, outcome, axis=0)  # (row's, col's): each player's own points
        others = np.take(table[:, ::-1], outcome, axis=0)  # (col's, row's): each player's opponent's
        if voided:
            points, others = np.where(void[:, None], np.nan, points), np.where(void[:, None], np.nan, others)
        predicted = answer.values.get("prediction")
        match_id, target_id, _, _ = self._columns_of(world)
        rows = Rows(
            2 * m,
            {
                "match_id": match_id,
                "round": Const(t + 1),
                "actor_id": world.pairs.reshape(-1),
                "target_id": target_id,
                "action": Codes(played, MOVES),
                "flipped": flipped,
                "payoff_actor": points.reshape(-1),  # NaN (a void round) is recorded as null
                "payoff_target": others.reshape(-1),
                "prediction": Const(None) if predicted is None else Codes(predicted, MOVES),
                "shown_first": self.shown_first(batches[0]),
            },
        )
        world.round = t + 1
        made = played[played >= 0] if voided else played
        summary = {
            "J_rate": float(1.0 - made.mean()) if len(made) else float("nan"),
            "mean_payoff": float(np.nanmean(points) if voided else points.mean()) if not void.all() else float("nan"),
        }
        decision_of = {"interactions": self._columns_of(world)[3]}  # row i records decision i
        return StepResult(world=world, tables={"interactions": rows}, summary=summary, decision_of=decision_of)
