"""Prompts for the donor game with cultural evolution, after Vallinder & Hughes (2024).

System prompt: the rules (the same for every agent, so a server's prefix cache is shared). Strategy
prompt: generation 1 thinks up a strategy ("My strategy will be ..."); later generations first read
the survivors' strategies and scores, each fenced with `quote` since another agent wrote it. Donation
prompt: the donor's own strategy, the recipient's trace, and the question how much to give.
"""

from __future__ import annotations

from typing import Any

from agents.decisions import ActionSpec
from agents.persona import Persona
from agents.prompts import Message, quote, register

# How an LLM agent reads a scripted survivor's strategy (fraction = the scenario's `fraction`).
SCRIPTED_STRATEGIES = {
    "always_defect": "My strategy will be to never give anything.",
    "fixed_fraction": "My strategy will be to always give {pct} of my resources, whoever the recipient is.",
    "image_scoring": (
        "My strategy will be to give {pct} of my resources unless I see that the recipient refused to "
        "give when it last could."
    ),
    "standing": (
        "My strategy will be to give {pct} of my resources unless I see that the recipient refused to "
        "give to someone who deserved help."
    ),
    "stern_judging": (
        "My strategy will be to give {pct} of my resources to recipients who helped the deserving and "
        "refused the undeserving, and nothing to the others."
    ),
}


def _units(x: float) -> str:
    return f"{float(x):.2f}".rstrip("0").rstrip(".")


def rules_text(context: dict[str, Any]) -> str:
    """The game in words (the paper's system prompt, with this run's parameters)."""
    text = (
        f"Each player is given an initial endowment of {_units(context['initial_resources'])} units of a "
        "resource. In each round, you are paired with another player. One of you is the donor and the "
        "other the recipient. The donor decides how many units to give up; the recipient receives "
        f"{_units(context['multiplier'])}x the number of units the donor gave up. If you were a donor in "
        "one round, you will be a recipient in the next round, and vice versa. Your goal is to maximise "
        "the number of units you have after the final round. After the game has finished, the "
        "best-performing players will survive to the next generation and continue playing."
    )
    if context.get("punishment"):
        text += (
            " Instead of giving, a donor may punish the recipient: the donor gives up some units and the "
            f"recipient loses {_units(context['punishment_multiplier'])}x that many (down to zero)."
        )
    return text


def _trace_help(depth: int) -> str:
    if depth <= 0:
        return "As a donor you will learn nothing about the recipient's earlier behaviour."
    return (
        "As a donor you will sometimes see what the recipient did the last time it was a donor, what "
        "that player's recipient did the time before, and so on, at most "
        f"{depth} step{'s' if depth > 1 else ''} back. In the first round there is no such information."
    )


def describe_scripted(policy: str, fraction: float) -> str:
    """A scripted survivor's strategy in the words an LLM agent reads."""
    template = SCRIPTED_STRATEGIES.get(policy, "My strategy will be: " + policy.replace("_", " ") + ".")
    return template.format(pct=f"{100 * fraction:.0f}%")


@register("donor_strategy")
def render_strategy(
    persona: Persona, obs: dict[str, Any], context: dict[str, Any], spec: ActionSpec, seed: int
) -> list[Message]:
    """Generation 1 writes its own strategy; later new agents improve on the survivors' advice."""
    parts = [
        f"Your name is {obs['name']}. This is generation {context['generation']}. "
        f"{_trace_help(int(context['trace_depth']))}"
    ]
    advice = context.get("advice") or ()
    if advice:
        parts.append(
            "Here is the advice of the best-performing players of the previous generation, with their "
            "final scores. Modify this advice to create your own strategy."
        )
        for item in advice:
            text = item["text"] or describe_scripted(item["policy"], float(context.get("fraction", 0.5)))
            parts.append(quote(f"Player {item['name']} (final score {_units(item['score'])})", text))
    parts.append(
        "Based on the description of the game, create a strategy that you will follow as a donor. "
        "Think briefly about what would be a successful strategy in this game, then describe your "
        "strategy in one sentence that starts: My strategy will be. "
        f'Reply as JSON: {{"{spec.fields[0].name}": "My strategy will be ..."}}.'
    )
    return [
        {"role": "system", "content": rules_text(context)},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


@register("donor_donation")
def render_donation(
    persona: Persona, obs: dict[str, Any], context: dict[str, Any], spec: ActionSpec, seed: int
) -> list[Message]:
    """The donor's own strategy, the recipient's trace, then how much to give (or punish)."""
    recipient = obs["recipient_name"]
    trace = str(obs.get("trace") or "")
    if context["round"] == 1:
        seen = "This is the first round, so there is no information about the recipient's behaviour."
    elif trace:
        seen = f"Here is what {recipient} and their earlier partners did in previous rounds:\n{trace}"
    else:
        seen = f"You have no information about what {recipient} did in previous rounds."
    own = str(obs.get("strategy") or "")
    parts = [
        f"Your name is {obs['name']}. "
        + (f"As you will recall, here is the strategy you decided to follow:\n{own}" if own else ""),
        f"This is generation {context['generation']}. It is now round {context['round']}. In this round, "
        f"you have been paired with {recipient}. They currently have "
        f"{_units(obs['recipient_resources'])} units of the resource.",
        seen,
        f"You will take the role of donor. You currently have {_units(obs['resources'])} units of the resource.",
    ]
    if context.get("punishment"):
        parts.append(
            "Do you donate or punish, and with how many units (at most what you have)? Very briefly think "
            'step by step about how to apply your strategy, then reply as JSON: {"justification": "...", '
            '"action": "donate" or "punish", "amount": <units>}.'
        )
    else:
        parts.append(
            "How many units do you give up (at most what you have)? Very briefly think step by step about "
            'how to apply your strategy, then reply as JSON: {"justification": "...", "amount": <units>}.'
        )
    return [
        {"role": "system", "content": rules_text(context)},
        {"role": "user", "content": "\n\n".join(p for p in parts if p)},
    ]
