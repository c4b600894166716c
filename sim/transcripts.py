"""The `transcripts` table: every language-model call of a run, as it was asked and answered, so a
reviewer can audit a result (on by default; `run.record_transcripts=false` turns it off).

One row per model decision: the step, the agent, the kind of decision, the model, the request's seed,
the messages exactly as sent (JSON), the raw reply of the last attempt, the parsed action (JSON, null
when the decision is missing), HTTP attempts, why it failed if it did, the scripted stand-in that
answered instead (backend.on_failure=policy:<name>), tokens, latency and whether the cache answered.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from agents.decisions import DecisionBatch, Decisions

TRANSCRIPTS = "transcripts"
COLUMNS = {
    "agent_id": pl.Int64(),
    "kind": pl.String(),
    "model": pl.String(),
    "seed": pl.UInt64(),
    "messages": pl.String(),
    "reply": pl.String(),
    "action": pl.String(),
    "attempts": pl.Int32(),
    "fallback_reason": pl.String(),
    "stand_in": pl.String(),
    "prompt_tokens": pl.Int32(),
    "completion_tokens": pl.Int32(),
    "latency_ms": pl.Float64(),
    "cached": pl.Boolean(),
}


def _action(batch: DecisionBatch, decisions: Decisions, i: int) -> str | None:
    """The parsed answer as JSON, choices by their option label; None for a missing decision."""
    if decisions.missing[i]:
        return None
    out = {}
    for f in batch.spec.fields:
        value = decisions.values[f.name][i]
        if f.kind == "choice":
            out[f.name] = f.options[int(value)]
        elif f.kind == "number":
            out[f.name] = float(value)
        else:
            out[f.name] = None if value is None else str(value)
    return json.dumps(out, ensure_ascii=False)


def transcript_rows(
    batches: list[DecisionBatch],
    decisions: list[Decisions],
    models: list[np.ndarray],
    stood_in: list[np.ndarray] | None,
    model_by_code: list[str | None],
    stand_in_name: str | None,
) -> pl.DataFrame:
    """The rows of one step's model decisions (a Python loop over those decisions only); `model_by_code`:
    the served model of each policy code."""
    rows: dict[str, list] = {name: [] for name in COLUMNS}
    for b, (batch, answer, model) in enumerate(zip(batches, decisions, models, strict=True)):
        for i in np.flatnonzero(model):
            rows["agent_id"].append(int(batch.agent_ids[i]))
            rows["kind"].append(batch.spec.name)
            rows["model"].append(model_by_code[int(batch.policies[i])] if batch.policies is not None else None)
            rows["seed"].append(int(batch.seeds[i]) if batch.seeds is not None else None)
            rows["messages"].append(None if answer.messages is None else answer.messages[i])
            rows["reply"].append(None if answer.reply is None else answer.reply[i])
            rows["action"].append(_action(batch, answer, i))
            rows["attempts"].append(int(answer.attempts[i]))
            rows["fallback_reason"].append(answer.fallback_reason[i])
            rows["stand_in"].append(stand_in_name if stood_in is not None and stood_in[b][i] else None)
            rows["prompt_tokens"].append(int(answer.prompt_tokens[i]))
            rows["completion_tokens"].append(int(answer.completion_tokens[i]))
            rows["latency_ms"].append(float(answer.latency_ms[i]))
            rows["cached"].append(bool(answer.cached[i]))
    return pl.DataFrame(rows, schema=COLUMNS)
