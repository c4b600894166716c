"""Value debate's `anchor` (issue 13.6): what the system prompt says matters most to the agent, set
against the persona's scores and the agent's current positions (a few seconds)."""

from __future__ import annotations

import numpy as np
import pytest

from agents.prompts import Prompter
from sim.config import compose
from sim.prepare import prepare


def speak_prompts(tmp_path, anchor: str, shift: float | None = None) -> tuple[list[str], object]:
    """System prompts of the first speak step of an 8-agent debate about power and benevolence."""
    config = compose(["scenario=value_debate", "population.size=8", "population.mix={bounded_confidence:8}",
                      "scenario.dimensions=[power,benevolence]", f"scenario.anchor={anchor}", "seed=3",
                      f"run.dir={tmp_path / 'unused'}"])  # fmt: skip
    prepared = prepare(config)
    world = prepared.world
    if shift is not None:
        world.positions[:, 0] = shift  # everyone now holds power at `shift`
    batch = prepared.scenario.plan(world, 0, np.random.default_rng(0))[0]
    batch.seeds = np.arange(len(batch), dtype=np.uint64)
    prompter = Prompter(prepared.scenario, prepared.templates, prepared.population.personas)
    return [messages[0]["content"] for messages in prompter.batch(batch)], (prepared, batch)


def top_three(scores: dict[str, float]) -> list[str]:
    return [k.replace("_", "-") for k, _ in sorted(scores.items(), key=lambda kv: -kv[1])[:3]]


def test_initial_anchor_lists_the_personas_values(tmp_path):
    systems, (prepared, batch) = speak_prompts(tmp_path, "initial", shift=1.0)
    row = prepared.population.personas.row(int(batch.agent_ids[0]), named=True)
    initial = {c.removeprefix("value_"): row[c] for c in row if c.startswith("value_")}
    assert "The values that matter most to you: " + ", ".join(top_three(initial)) + "." in systems[0]
    assert "now:" not in systems[0]


def test_current_anchor_ranks_the_current_positions(tmp_path):
    """Power moved to 1.0 for everyone: under `current` it now tops every agent's list."""
    systems, (prepared, batch) = speak_prompts(tmp_path, "current", shift=1.0)
    for system, agent in zip(systems, batch.agent_ids.tolist(), strict=True):
        row = prepared.population.personas.row(agent, named=True)
        now = {c.removeprefix("value_"): row[c] for c in row if c.startswith("value_")}
        now["power"] = 1.0
        now["benevolence"] = float(prepared.world.positions[agent, 1])
        assert system.endswith("The values that matter most to you now: " + ", ".join(top_three(now)) + ".")
        assert "The values that matter most to you:" not in system
        assert row["name"] in system  # the rest of the persona stays


def test_no_anchor_states_no_values(tmp_path):
    systems, (prepared, batch) = speak_prompts(tmp_path, "none")
    assert all("values that matter most" not in s for s in systems)
    assert prepared.population.personas.row(int(batch.agent_ids[0]), named=True)["name"] in systems[0]


def test_anchor_is_recorded_and_checked(tmp_path):
    from sim.config import ConfigError

    with pytest.raises(ConfigError, match=r"^scenario\.anchor: Input should be 'current', 'initial' or 'none'"):
        compose(["scenario=value_debate", "scenario.anchor=fixed", f"run.dir={tmp_path / 'x'}"])
