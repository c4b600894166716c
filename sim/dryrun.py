"""`run.dry_run=true`: show what a run would send before paying for it.

Prints, for the first step that asks any decision, the exact messages three agents would receive
(language-model agents first), and the pre-flight estimate. Starts no server, needs none, writes
nothing: prompts are rendered by the same code the LLM policy uses.
"""

from __future__ import annotations

import sys
from typing import TextIO

import numpy as np

from agents.prompts import Prompter
from sim import seeding
from sim.preflight import estimate
from sim.prepare import Prepared
from sim.scheduler import StepContext, fill_decisions

SHOWN = 3
LOOKAHEAD = 8  # steps planned, at most, to find one that asks a decision


def _first_deciding_step(prepared: Prepared) -> tuple[int, list]:
    """Plan (without resolving) until a step asks decisions; rule-driven scenarios ask none."""
    config, scenario = prepared.config, prepared.scenario
    ctx = StepContext("dry-run", config.seed, prepared.population, config.backend.kind, config.backend.model)
    for step in range(min(LOOKAHEAD, scenario.max_steps(prepared.world))):
        batches = scenario.plan(prepared.world, step, seeding.rng(config.seed, "plan", step))
        if batches and sum(len(b) for b in batches):
            fill_decisions(batches, ctx, step)
            return step, batches
        break  # a step without decisions would need resolving to reach the next: stop here
    return 0, []


def dry_run(prepared: Prepared, out: TextIO = sys.stdout) -> None:
    config = prepared.config
    step, batches = _first_deciding_step(prepared)
    prompter = Prompter(prepared.scenario, prepared.templates, prepared.population.personas,
                        config.population.persona_fields)  # fmt: skip
    names = prepared.population.policy_names
    llm_codes = prepared.population.llm_codes()
    picks = []  # (batch, index) of the decisions shown, language-model agents first
    for wanted in (True, False):
        for batch in batches:
            is_llm = np.isin(batch.policies, llm_codes)
            picks += [(batch, int(i)) for i in np.flatnonzero(is_llm == wanted)]
    picks = picks[:SHOWN]
    llm_messages = [prompter.batch(b) for b in batches if np.isin(b.policies, llm_codes).any()]
    shown = {id(b): msgs for b, msgs in zip([b for b in batches if np.isin(b.policies, llm_codes).any()],
                                            llm_messages, strict=True)}  # fmt: skip
    print(f"socsim dry run: {config.scenario.name}, seed {config.seed}, run_id {prepared.run_id}", file=out)
    print("nothing is written and no server is started", file=out)
    if not picks:
        print(f"\nstep {step} asks no decisions: {config.scenario.name} is rule-driven, nothing is sent", file=out)
    for batch, i in picks:
        agent, policy = int(batch.agent_ids[i]), names[int(batch.policies[i])]
        who = (
            "language model"
            if int(batch.policies[i]) in llm_codes
            else "scripted (not sent; shown as a model would read it)"
        )
        print(f"\n--- step {step}, {batch.spec.name}, agent {agent} ({policy}: {who}) ---", file=out)
        messages = shown[id(batch)][i] if id(batch) in shown else prompter.messages(
            batch.spec.name, agent, batch.row(i), batch.context, int(batch.seeds[i]))  # fmt: skip
        for message in messages:
            print(f"[{message['role']}]\n{message['content']}", file=out)
    flat = [m for msgs in llm_messages for m in msgs]
    print("\npre-flight estimate:", file=out)
    for line in estimate(prepared, batches, flat).lines():
        print(f"  {line}", file=out)
