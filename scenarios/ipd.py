"""Iterated prisoner's dilemma and Battle of the Sexes (Akata et al. 2023), every edge one match.

A step plays one round of every match at once: all decisions of the round form one batch, so
scripted strategies run as a few numpy operations over all matches. Moves are J (0) and F (1);
in the PD J is cooperate. In BoS the row player (the edge's lower agent id) prefers J.

The prompt is the paper's: the rules in words from the player's side, one line per past round with
both players' points, then "Q: Which Option do you choose, Option J or Option F? A: Option". In the
PD the order of the two options in the question comes from the decision's seed (LLMs favour the
first-named option).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.decisions import ActionSpec, ChoiceField, DecisionBatch, Decisions
from agents.prompts import Prompt, PromptTemplate
from scenarios.base import BaseScenario, Metric, ScenarioConfig, StepResult, TableSource
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


class IPDConfig(ScenarioConfig):
    name: Literal["ipd"] = "ipd"
    prompts: dict[str, str | None] = Field(default_factory=lambda: {"ipd_move": None})
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


# ---- world ----------------------------------------------------------------------------------------------


@dataclass
class IPDWorld(World):
    """pairs[m] = (row player, column player); moves[m, side, r] in {0, 1}, -1 before it is played."""

    pairs: np.ndarray
    moves: np.ndarray
    round: int = 0


# ---- the decision ---------------------------------------------------------------------------------------

MOVES = ("J", "F")
MOVE_SPEC = ActionSpec(
    name="ipd_move",
    fields=(ChoiceField(name="move", options=MOVES, description="Option J or Option F"),),
    max_tokens=2,
    temperature=0.0,
)

# ---- the prompt (Akata et al. 2023) -----------------------------------------------------------------------

MOVE_PROMPT = Prompt(
    template=PromptTemplate(
        system="{rules}\n\n{persona_text}",
        user=(
            "{history}\nYou are currently playing round {round}.\n"
            "Q: Which Option do you choose, Option {first} or Option {second}?\nA: Option"
        ),
    ),
    variables=("rules", "history", "round", "first", "second"),
)
_MASK64 = (1 << 64) - 1


def _points(x: float) -> str:
    return f"{float(x):g}"


def rules_text(payoffs: list, side: int, rounds: int) -> str:
    """The game in words from one player's side: P[side][mine][theirs] = [my points, their points]."""
    lines = [
        "You are playing a game repeatedly with another player. In this game, you can choose between "
        f"Option J and Option F. You will play {rounds} rounds in total with the same player. "
        "The rules of the game are as follows:"
    ]
    for mine, my_label in enumerate(MOVES):
        for theirs, their_label in enumerate(MOVES):
            mine_pts, their_pts = payoffs[side][mine][theirs]
            lines.append(
                f"If you choose Option {my_label} and the other player chooses Option {their_label}, "
                f"then you win {_points(mine_pts)} points and the other player wins "
                f"{_points(their_pts)} points."
            )
    return "\n".join(lines)


def history_lines(own: Any, opp: Any, payoffs: list, side: int) -> list[str]:
    lines = []
    for i, (mine, theirs) in enumerate(zip(own, opp, strict=True), start=1):
        mine_pts, their_pts = payoffs[side][int(mine)][int(theirs)]
        lines.append(
            f"In round {i}, you chose Option {MOVES[int(mine)]} and the other player chose Option "
            f"{MOVES[int(theirs)]}. Thus, you won {_points(mine_pts)} points and the other player won "
            f"{_points(their_pts)} points."
        )
    return lines


def option_order(seed: int, shuffle: bool) -> tuple[str, str]:
    """("J", "F") or ("F", "J"): a fixed bit of a mixed seed, so it is reproducible per decision."""
    if not shuffle:
        return MOVES
    z = (seed * 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 31)) * 0xBF58476D1CE4E5B9) & _MASK64
    return MOVES[::-1] if (z >> 63) & 1 else MOVES


# ---- scripted strategies (Axelrod's / Akata et al.'s opponents) -----------------------------------------------
# A strategy is one function of the two histories, as in Axelrod's library: `own` and `opp` are int8
# arrays [n, t] of past moves (0 = J, 1 = F), `t` the round about to be played, `u` one uniform draw
# per decision. It returns n moves. No loop over matches.

J, F = 0, 1
Move = np.int8


def _const(move: int):
    return lambda own, opp, t, u: np.full(len(own), move, Move)


def _copy_last(opening: int):
    def play(own: np.ndarray, opp: np.ndarray, t: int, u: np.ndarray) -> np.ndarray:
        return np.full(len(opp), opening, Move) if t == 0 else opp[:, t - 1].astype(Move)

    return play


def tit_for_two_tats(own: np.ndarray, opp: np.ndarray, t: int, u: np.ndarray) -> np.ndarray:
    """Defect only after two defections in a row."""
    if t < 2:
        return np.full(len(opp), J, Move)
    return (opp[:, t - 1] & opp[:, t - 2]).astype(Move)


def grim_trigger(own: np.ndarray, opp: np.ndarray, t: int, u: np.ndarray) -> np.ndarray:
    """Cooperate until the other defects once, then defect for ever."""
    return opp[:, :t].any(axis=1).astype(Move) if t else np.full(len(opp), J, Move)


def win_stay_lose_shift(own: np.ndarray, opp: np.ndarray, t: int, u: np.ndarray) -> np.ndarray:
    """Pavlov: keep the last move after R or T (the other played J), switch after S or P."""
    if t == 0:
        return np.full(len(opp), J, Move)
    return np.where(opp[:, t - 1] == J, own[:, t - 1], 1 - own[:, t - 1]).astype(Move)


def alternate(own: np.ndarray, opp: np.ndarray, t: int, u: np.ndarray) -> np.ndarray:
    """J, F, J, F, ..."""
    return np.full(len(opp), t % 2, Move)


def defect_once(own: np.ndarray, opp: np.ndarray, t: int, u: np.ndarray) -> np.ndarray:
    """F in the first round, J afterwards (the probe that shows who forgives)."""
    return np.full(len(opp), F if t == 0 else J, Move)


def random_move(own: np.ndarray, opp: np.ndarray, t: int, u: np.ndarray) -> np.ndarray:
    """J or F with probability 1/2, from the decision's own seed."""
    return (u < 0.5).astype(Move)


STRATEGIES = {
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


@dataclass(frozen=True)
class IPDStrategy:
    """Adapter from a strategy function to the engine's ScriptedPolicy (batch in, moves out)."""

    name: str

    def decide(self, batch: DecisionBatch) -> dict[str, np.ndarray]:
        t = int(batch.context["round"])
        own, opp = batch.obs["own"][:, :t], batch.obs["opp"][:, :t]
        return {"move": STRATEGIES[self.name](own, opp, t, batch.uniforms()).astype(np.int16)}


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


def random_matchings(edges: np.ndarray, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """k rounds of a random maximal matching along edges, never reusing an edge: every agent plays
    at most k matches (exactly k on a complete graph with an even number of agents)."""
    used = np.zeros(len(edges), bool)
    chosen: list[int] = []
    for _ in range(k):
        busy = np.zeros(n, bool)
        for e in rng.permutation(np.flatnonzero(~used)):
            u, v = edges[e]
            if not busy[u] and not busy[v]:
                busy[u] = busy[v] = True
                used[e] = True
                chosen.append(int(e))
    return edges[np.sort(np.array(chosen, dtype=np.int64))]


class IteratedGame(BaseScenario[IPDConfig, IPDWorld]):
    name = "ipd"
    Config = IPDConfig
    World = IPDWorld
    prompts = {"ipd_move": MOVE_PROMPT}
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
        }
    }
    metrics = (
        Metric("cooperation", "share of cooperative moves (J) per round, by policy; PD only",
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

    @classmethod
    def cooperated(cls, frame: Frame) -> pl.Expr:
        return cooperated(frame)

    def specs(self) -> dict[str, ActionSpec]:
        return {MOVE_SPEC.name: MOVE_SPEC}

    def strategies(self) -> dict[str, IPDStrategy]:
        return {name: IPDStrategy(name) for name in STRATEGIES}

    def default_mix(self) -> dict[str, float]:
        return dict.fromkeys(STRATEGIES, 1.0 / len(STRATEGIES))

    def world_bytes(self, n: int, edges: float) -> float:
        """Every match keeps both players' moves (int8 per round), and a step's plan copies the histories."""
        k = self.config.matches_per_agent
        pairs = edges if k is None else min(edges, n * k / 2)
        return pairs * (16 + 2 * self.config.rounds * 3) + 64.0 * n

    def prompt_variables(self, spec: str, obs: dict, context: dict, seed: int) -> dict[str, Any]:
        side, payoffs = int(obs["side"]), context["payoffs"]
        first, second = option_order(seed, shuffle=context.get("game", "pd") == "pd")
        return {
            "rules": rules_text(payoffs, side, int(context["rounds"])),
            "history": "\n".join(history_lines(obs["own"], obs["opp"], payoffs, side)),
            "round": int(context["round"]) + 1,
            "first": first,
            "second": second,
        }

    def init(self, rng: np.random.Generator) -> IPDWorld:
        _, graph = self._bound()
        k = self.config.matches_per_agent
        edges = graph.edge_list()  # a round robin plays every pair: the science needs each one
        pairs = edges if k is None else random_matchings(edges, graph.n, k, rng)
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
        table = pl.DataFrame(
            {
                "match_id": np.repeat(np.arange(m, dtype=np.int64), 2),
                "round": np.full(2 * m, t + 1, np.int32),
                "actor_id": world.pairs.reshape(-1),
                "target_id": world.pairs[:, ::-1].reshape(-1),
                "action": pl.Series(MOVES).gather(played.reshape(-1)),
                "flipped": flipped,
                "payoff_actor": actor_points,
                "payoff_target": target_points,
            }
        )
        world.round = t + 1
        summary = {"J_rate": float(1.0 - played.mean()), "mean_payoff": float(actor_points.mean())}
        return StepResult(
            world=world,
            tables={"interactions": table},
            summary=summary,
            decision_of={"interactions": np.arange(2 * m, dtype=np.int64)},
        )
