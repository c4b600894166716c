"""Prompts for the iterated PD and Battle of the Sexes, after Akata et al. (2023).

System prompt: the rules in words (shared by every agent on the same side), then the persona.
User prompt: one history line per past round, then the question, ending in "A: Option" so the
answer is a single letter. In the PD the order of the two options in the question comes from the
decision's seed (LLMs favour the first-named option).
"""

from __future__ import annotations

from typing import Any

from agents.decisions import ActionSpec
from agents.persona import Persona
from agents.prompts import Message, persona_text, register

LABELS = ("J", "F")
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
    for mine, my_label in enumerate(LABELS):
        for theirs, their_label in enumerate(LABELS):
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
            f"In round {i}, you chose Option {LABELS[int(mine)]} and the other player chose Option "
            f"{LABELS[int(theirs)]}. Thus, you won {_points(mine_pts)} points and the other player won "
            f"{_points(their_pts)} points."
        )
    return lines


def option_order(seed: int, shuffle: bool) -> tuple[str, str]:
    """("J", "F") or ("F", "J"): a fixed bit of a mixed seed, so it is reproducible per decision."""
    if not shuffle:
        return LABELS
    z = (seed * 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 31)) * 0xBF58476D1CE4E5B9) & _MASK64
    return LABELS[::-1] if (z >> 63) & 1 else LABELS


@register("ipd_move")
def render_ipd_move(
    persona: Persona, obs: dict[str, Any], context: dict[str, Any], spec: ActionSpec, seed: int
) -> list[Message]:
    side, payoffs, t = int(obs["side"]), context["payoffs"], int(context["round"])
    first, second = option_order(seed, shuffle=context.get("game", "pd") == "pd")
    system = f"{rules_text(payoffs, side, int(context['rounds']))}\n\n{persona_text(persona)}"
    user = [
        *history_lines(obs["own"], obs["opp"], payoffs, side),
        f"You are currently playing round {t + 1}.",
        f"Q: Which Option do you choose, Option {first} or Option {second}?",
        "A: Option",
    ]
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(user)}]
