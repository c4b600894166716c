"""Per-model accounting for runs whose population mixes several language models (`backend.models`,
policies `llm@<key>`): the `transcripts` table names the served model of every call, so what each
model was asked, how often it gave no answer and what it cost is read per model. Behaviour per model
needs nothing new: every record carries the decision's `model` (and its `policy`, `llm@<key>`), so a
metric grouped by `model` or by `policy` splits by model, e.g. `cooperation_rate(interactions,
by=["model"])`.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from scenarios.tables import Frame, keys, lazy, require

USAGE_COLUMNS = ("model", "fallback_reason", "prompt_tokens", "completion_tokens", "cached", "latency_ms")


def model_usage(transcripts: Frame, by: str | Sequence[str] = ()) -> pl.DataFrame:
    """Per run, model (and `by` group): calls, the share that got no answer, tokens, the share answered
    from the cache and the mean latency of the calls that were asked. Columns: run_id, model, *by,
    calls, missing_share, prompt_tokens, completion_tokens, cached_share, mean_latency_ms."""
    group = keys(["model", *([by] if isinstance(by, str) else by)])
    require(transcripts, [*group, *USAGE_COLUMNS], "model_usage")
    return (
        lazy(transcripts)
        .group_by(group)
        .agg(
            pl.len().cast(pl.Int64).alias("calls"),
            pl.col("fallback_reason").is_not_null().cast(pl.Float64).mean().alias("missing_share"),
            pl.col("prompt_tokens").cast(pl.Int64).sum(),
            pl.col("completion_tokens").cast(pl.Int64).sum(),
            pl.col("cached").cast(pl.Float64).mean().alias("cached_share"),
            pl.col("latency_ms").filter(~pl.col("cached")).mean().alias("mean_latency_ms"),
        )
        .sort(group)
        .collect()
    )


def models_used(transcripts: Frame) -> list[str]:
    """The served models that answered calls in these runs, sorted."""
    require(transcripts, ["model"], "models_used")
    found = lazy(transcripts).select(pl.col("model").drop_nulls().unique().sort()).collect()
    return found["model"].to_list()
