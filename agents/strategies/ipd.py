"""Hand-coded repeated-game strategies (Axelrod / Akata et al. opponents), vectorised over matches.

A strategy is one function of the two histories, as in Axelrod's library: `own` and `opp` are int8
arrays [n, t] of past moves (0 = J, 1 = F; in the PD J is cooperate), `t` the round about to be
played, `u` one uniform draw per decision. It returns n moves. No loop over matches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from agents.decisions import DecisionBatch

J, F = 0, 1
Move = np.int8
StrategyFn = Callable[[np.ndarray, np.ndarray, int, np.ndarray], np.ndarray]


def _const(move: int) -> StrategyFn:
    return lambda own, opp, t, u: np.full(len(own), move, Move)


def _copy_last(opening: int) -> StrategyFn:
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


STRATEGIES: dict[str, StrategyFn] = {
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
