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
from sim.preflight import estimate, first_deciding_step
from sim.prepare import Prepared

SHOWN = 3


def prompter_of(prepared: Prepared) -> Prompter:
    return Prompter(prepared.scenario, prepared.templates, prepared.population.personas,
                    prepared.config.population.persona_fields)  # fmt: skip


def dry_run(prepared: Prepared, out: TextIO = sys.stdout) -> None:
    config = prepared.config
    step, batches = first_deciding_step(prepared)
    prompter = prompter_of(prepared)
    names = prepared.population.policy_names
    llm_codes = prepared.population.llm_codes()
    picks = []  # (batch, index) of the decisions shown, language-model agents first
    for wanted in (True, False):
        for batch in batches:
            picks += [(batch, int(i)) for i in np.flatnonzero(np.isin(batch.policies, llm_codes) == wanted)]
    print(f"socsim dry run: {config.scenario.name}, seed {config.seed}, run_id {prepared.run_id}", file=out)
    print("nothing is written and no server is started", file=out)
    if not picks:
        print(f"\nstep {step} asks no decisions: {config.scenario.name} is rule-driven, nothing is sent", file=out)
    for batch, i in picks[:SHOWN]:
        agent, code = int(batch.agent_ids[i]), int(batch.policies[i])
        who = "language model" if code in llm_codes else "scripted (not sent; shown as a model would read it)"
        print(f"\n--- step {step}, {batch.spec.name}, agent {agent} ({names[code]}: {who}) ---", file=out)
        messages = prompter.messages(batch.spec.name, agent, batch.row(i), batch.context, int(batch.seeds[i]))
        for message in messages:
            print(f"[{message['role']}]\n{message['content']}", file=out)
    print("\npre-flight estimate:", file=out)
    for line in estimate(prepared, batches, prompter).lines():
        print(f"  {line}", file=out)
