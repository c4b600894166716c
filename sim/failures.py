"""What a run does with decisions a language model could not give, and when it stops trusting itself.

A decision is what the agent decided, or missing with its reason (`Decisions.missing`,
`fallback_reason`): never a default move. `backend.on_failure` chooses what happens next, per step:

- `abort` (the default): the decisions stay missing (each scenario documents what that means: a void
  round, a void donation...), and the failure budget decides whether the run may go on;
- `retry_step`: the whole step is asked again, with the same seeds (answers already obtained come back
  from the response cache; the failed ones are asked live), up to `RETRIES` times;
- `policy:<name>`: the missing decisions are answered by that scripted policy of the scenario, and the
  rows say so (`stand_in`), beside the reason the model gave none.

The failure budget, `backend.max_failure_rate`, counts the model's decisions that failed (stand-ins
included: the model still failed), per step and over the run. Past it, the run stops with status
`failed` (resumable: the step is asked again), so that a run is `completed` only if its results are
what the model answered, bar a share the user accepted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.decisions import DecisionBatch, Decisions
from agents.population import code_mask
from sim.status import FAILED
from sim.stop import RunStopped

RETRIES = 3
EXIT_FAILED = 1


def check_budget(
    max_rate: float, step: int, decided: int, failed: int, reasons: Counter, run_decided: int, run_failed: int
) -> None:
    """Raise RunStopped (status failed) when this step's failures, or the run's with them, exceed
    `max_rate` of the model's decisions. `run_*`: the counts before this step (from the run totals)."""
    if not failed:
        return
    why = ", ".join(f"{r} {n}" for r, n in reasons.most_common())
    limit = f"backend.max_failure_rate={max_rate:g}"
    for n_failed, n_decided, where, detail in (
        (failed, decided, f"in step {step}", f"{why}; "),
        (run_failed + failed, run_decided + decided, "so far", ""),
    ):
        if n_failed > max_rate * n_decided:
            raise RunStopped(
                FAILED, EXIT_FAILED,
                f"failure budget exceeded: {n_failed} of {n_decided} model decisions {where} got no answer "
                f"({detail}more than {limit}); fix the cause, then resume",
            )  # fmt: skip


def model_decisions(batches: list[DecisionBatch], llm_codes: np.ndarray) -> list[np.ndarray]:
    """Per batch, which decisions belong to a language-model agent."""
    return [code_mask(b.policies, llm_codes) for b in batches]


def settle(
    decide: Any,
    batches: list[DecisionBatch],
    decisions: list[Decisions],
    on_failure: str,
    stand_in: Any,
    models: list[np.ndarray],
) -> tuple[list[Decisions], list[np.ndarray], int, Counter]:
    """Apply `on_failure` to the step's missing decisions. `decide(batches)` asks the step again;
    `stand_in` is the scripted policy for `policy:<name>`. Returns the decisions, per batch the stand-in
    mask, and the model's failures (count and reasons) for the budget."""
    if on_failure == "retry_step":
        for _ in range(RETRIES):
            if not any(d.missing.any() for d in decisions):
                break
            again = decide(batches)
            for old, new in zip(decisions, again, strict=True):
                fixed = np.flatnonzero(old.missing & ~new.missing)
                if len(fixed):
                    old.put(fixed, new.take(fixed))
    failed = 0
    reasons: Counter = Counter()
    stood_in = []
    for batch, answer, model in zip(batches, decisions, models, strict=True):
        lost = answer.missing & model
        failed += int(lost.sum())
        reasons.update(str(r) for r in answer.fallback_reason[lost])
        mask = np.zeros(len(batch), bool)
        if stand_in is not None and lost.any():
            index = np.flatnonzero(lost)
            reasons_kept = answer.fallback_reason[index].copy()
            answer.put(index, Decisions.scripted(stand_in.decide(batch.take(index))))
            answer.fallback_reason[index] = reasons_kept  # why the model gave none stays on record
            mask[index] = True
        stood_in.append(mask)
    return decisions, stood_in, failed, reasons


@dataclass(frozen=True)
class FailureRules:
    """The run's `backend.on_failure`, its stand-in policy (for `policy:<name>`), the budget, and which
    policy codes are language models."""

    on_failure: str
    stand_in: Any
    max_rate: float
    llm_codes: np.ndarray
