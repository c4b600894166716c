"""Prompts for value diffusion: a speaker argues for its position on one value, a listener reads the
argument (fenced as quoted speech) and reports its new position.

System prompt: the discussion's rules (shared by every agent), then the persona. User prompt: the
value under discussion, the agent's current position, and (listener) the partner's words. The
partner's true position is never shown to the model: it must be read from the argument.
"""

from __future__ import annotations

from typing import Any

from agents.decisions import ActionSpec
from agents.persona import Persona
from agents.prompts import Message, persona_text, quote, register

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


def value_label(name: str) -> str:
    return name.replace("_", "-")


def topic_text(name: str) -> str:
    definition = VALUE_DEFINITIONS.get(name)
    label = value_label(name)
    return f"The value under discussion is {label} ({definition})." if definition else f"The topic is {label}."


def position_text(position: float, context: dict[str, Any]) -> str:
    """The listener's own position in the answer's terms (the scenario's Likert points, or [0, 1])."""
    if context["answer"] == "likert":
        points = int(context["likert_points"])
        point = round(float(position) * (points - 1)) + 1
        return f"Your current position is {point} on a scale from 1 (not important at all) to {points} (extremely)."
    return f"Your current position is {float(position):.2f} on a scale from 0 to 1."


def _system(persona: Persona) -> Message:
    return {"role": "system", "content": f"{RULES}\n\n{persona_text(persona)}"}


@register("value_argument")
def render_value_argument(
    persona: Persona, obs: dict[str, Any], context: dict[str, Any], spec: ActionSpec, seed: int
) -> list[Message]:
    name = context["dimensions"][int(obs["dimension"])]
    limit = spec.fields[0].max_chars if spec.fields[0].kind == "text" else 240
    user = (
        f"{topic_text(name)} {position_text(obs['position'], context)}\n"
        f"You are talking with {obs['partner_name']}. In at most {limit} characters, give them one short "
        f"argument for how important {value_label(name)} is, true to your position. "
        'Reply in JSON as {"argument": "..."}.'
    )
    return [_system(persona), {"role": "user", "content": user}]


@register("value_update")
def render_value_update(
    persona: Persona, obs: dict[str, Any], context: dict[str, Any], spec: ActionSpec, seed: int
) -> list[Message]:
    name = context["dimensions"][int(obs["dimension"])]
    argument = str(obs.get("argument") or "").strip() or "(they said nothing)"
    if context["answer"] == "likert":
        ask = (
            f"Answer with one number from 1 (not important at all) to {context['likert_points']} (extremely important)."
        )
    else:
        ask = 'Reply in JSON as {"position": x} with x between 0 and 1.'
    user = (
        f"{topic_text(name)} {position_text(obs['position'], context)}\n"
        f"{quote(str(obs['partner_name']), argument)}\n"
        f"Having heard this, how important is {value_label(name)} to you now? {ask}"
    )
    return [_system(persona), {"role": "user", "content": user}]
