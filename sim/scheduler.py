"""The discrete-time loop: plan → decide (executor) → resolve → record, one step at a time.

A step is committed (its rows handed to the recorder, the totals counted, the step advanced) only once
it resolved, so between two steps the world, the step number, the totals and the recorder agree: that
boundary is what a checkpoint saves. A `RunStopped` (a signal, a server outage, a budget) checkpoints
the last boundary and propagates; a Ray shard lost beyond Ray's own restarts replays the run from the
last checkpoint.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from tqdm import tqdm

from agents.decisions import DecisionBatch, Decisions
from agents.population import Population, code_mask, is_llm
from scenarios.base import BaseScenario
from scenarios.rows import Codes, Column, Const, Rows
from sim import seeding
from sim.budgets import Budgets
from sim.checkpoint import Checkpointer
from sim.executors import Executor, ShardLost
from sim.failures import FailureRules, check_budget, model_decisions, settle
from sim.recorder import DECISION_COLUMNS, Recorder
from sim.stop import StopSignals, as_stop
from sim.transcripts import TRANSCRIPTS, transcript_rows

MAX_REPLAYS = 3  # shard losses before the run fails, counted until it gets past the furthest step it reached


@dataclass
class Totals:
    """Run-wide counts for the manifest: decisions by policy and LLM accounting."""

    steps: int = 0
    decisions: Counter = field(default_factory=Counter)
    llm_calls: int = 0
    llm_cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_latency_ms: float = 0.0
    fallbacks: Counter = field(default_factory=Counter)
    requests: int = 0  # HTTP attempts the model's decisions took (retries included), for the budgets

    def as_dict(self, backend_counters: dict[str, int] | None = None) -> dict[str, Any]:
        """`backend_counters`: the LLM backend's own counts (HTTP requests including retries)."""
        return {
            "steps": self.steps,
            "decisions": dict(self.decisions),
            "llm": {
                "calls": self.llm_calls,
                "http_requests": (backend_counters or {}).get("http_requests", 0),
                "http_failed": {
                    k.removeprefix("http_failed."): v
                    for k, v in (backend_counters or {}).items()
                    if k.startswith("http_failed.")
                },
                "cached": self.llm_cached,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "mean_latency_ms": round(self.llm_latency_ms / max(self.llm_calls - self.llm_cached, 1), 3),
                "failures": dict(self.fallbacks),  # decisions without an answer, by reason
            },
        }

    @staticmethod
    def http_counters(totals: dict[str, Any]) -> dict[str, int]:
        """Back from `as_dict`'s output (a manifest's totals) to the backend's HTTP counters; a run that
        crashed wrote none."""
        llm = totals.get("llm") or {}
        counters = {f"http_failed.{reason}": int(n) for reason, n in (llm.get("http_failed") or {}).items()}
        return {"http_requests": int(llm.get("http_requests", 0)), **counters}

    def state(self) -> dict[str, Any]:
        """Everything, as JSON (a checkpoint's copy of the totals)."""
        return {
            "steps": self.steps,
            "decisions": dict(self.decisions),
            "llm_calls": self.llm_calls,
            "llm_cached": self.llm_cached,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "llm_latency_ms": self.llm_latency_ms,
            "fallbacks": dict(self.fallbacks),
            "requests": self.requests,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> Totals:
        if not state:
            return cls()
        return cls(
            steps=int(state["steps"]),
            decisions=Counter(state["decisions"]),
            llm_calls=int(state["llm_calls"]),
            llm_cached=int(state["llm_cached"]),
            prompt_tokens=int(state["prompt_tokens"]),
            completion_tokens=int(state["completion_tokens"]),
            llm_latency_ms=float(state["llm_latency_ms"]),
            fallbacks=Counter(state["fallbacks"]),
            requests=int(state.get("requests", 0)),
        )


@dataclass
class StepContext:
    """What the loop needs besides the scenario and the world."""

    run_id: str
    seed: int
    population: Population
    backend_kind: str
    model: str | None
    # the served model of each policy code (None: scripted); None: `model` for every language-model policy
    models: tuple[str | None, ...] | None = None

    def model_by_code(self) -> list[str | None]:
        """The `model` column's value for each policy code."""
        if self.models is not None:
            return list(self.models)
        return [self.model if is_llm(name) else None for name in self.population.policy_names]

    def __post_init__(self) -> None:
        self.llm_codes = self.population.llm_codes()  # the language-model policies' codes, looked up once


def fill_decisions(batches: list[DecisionBatch], ctx: StepContext, step: int) -> None:
    """Give every decision its policy (unless the scenario chose) and its seed."""
    seeds = seeding.decision_seeds(ctx.seed, step, sum(len(b) for b in batches))
    offset = 0
    for batch in batches:
        if batch.policies is None:
            batch.policies = ctx.population.policy_codes[batch.agent_ids]
        batch.policies = np.asarray(batch.policies, dtype=np.int16)
        batch.seeds = seeds[offset : offset + len(batch)]
        offset += len(batch)


def _decision_meta(
    batches: list[DecisionBatch],
    decisions: list[Decisions],
    ctx: StepContext,
    stood_in: list[np.ndarray] | None = None,
    stand_in_name: str | None = None,
) -> Rows:
    """One row per decision of the step (batches concatenated): who decided how, and at what cost;
    `stand_in` names the scripted policy that answered a decision the model could not give.

    Plain columns, built from the batches' arrays without a DataFrame: the policy as codes into the
    run's policy names, what is the same for every decision of the step (backend, model, zero cost
    of scripted answers, no failure) as a constant."""
    if not batches:
        return Rows(0, dict.fromkeys(DECISION_COLUMNS, Const(None)))  # rows recorded in a step without decisions
    codes = np.concatenate([b.policies for b in batches]) if len(batches) > 1 else batches[0].policies
    n = len(codes)
    llm_codes = ctx.llm_codes
    by_model = code_mask(codes, llm_codes) if len(llm_codes) else None
    if by_model is None or not by_model.any():
        backend, model = Const("scripted"), Const(None)
    else:
        backend = Codes(by_model.astype(np.int8), ("scripted", ctx.backend_kind))
        served = tuple(ctx.model_by_code())  # the served model of each policy code (None: scripted)
        model = Const(None) if all(name is None for name in served) else Codes(codes, served)
    columns: dict[str, Column] = {
        "policy": Codes(codes, ctx.population.policy_names),
        "backend": backend,
        "model": model,
    }
    for name, zero in (("latency_ms", 0.0), ("prompt_tokens", 0), ("completion_tokens", 0), ("cached", False)):
        arrays = [getattr(d, name) for d in decisions]
        columns[name] = np.concatenate(arrays) if any(a.any() for a in arrays) else Const(zero)
    stood = stood_in is not None and any(mask.any() for mask in stood_in)
    if stood or any(d.missing.any() for d in decisions):  # a reason is given for a missing or stood-in decision
        reasons = np.concatenate([d.fallback_reason for d in decisions])
        columns["fallback_reason"] = reasons if (reasons != None).any() else Const(None)  # noqa: E711
    else:
        columns["fallback_reason"] = Const(None)
    columns["stand_in"] = _stand_in(stood_in, stand_in_name) if stood else Const(None)
    return Rows(n, columns)


def _stand_in(stood_in: list[np.ndarray], name: str | None) -> Column:
    if name is None:
        return Const(None)
    return Codes(np.where(np.concatenate(stood_in), 0, -1).astype(np.int8), (name,))


_COUNTING = np.arange(0)  # 0, 1, 2, ... (grown as needed) to compare row-to-decision maps with


def _identity(index: np.ndarray, n: int) -> bool:
    """Row i records decision i, for every row."""
    global _COUNTING
    if len(index) != n:
        return False
    if n == 0:
        return True
    if index[0] != 0 or index[-1] != n - 1:
        return False
    if len(_COUNTING) < n:
        _COUNTING = np.arange(max(n, 2 * len(_COUNTING)))
    return bool(np.array_equal(index, _COUNTING[:n]))


def _with_decisions(table: pl.DataFrame | Rows, decision_of: np.ndarray | None, meta: Rows) -> pl.DataFrame | Rows:
    """Join each row to the decision it records (`decision_of[i]`, -1 or None for none): the policy,
    model and accounting columns of that decision, nulls for rows that record none."""
    if decision_of is not None and len(decision_of) != table.height:
        raise RuntimeError(f"decision_of has {len(decision_of)} entries for a table of {table.height} rows")
    if isinstance(table, Rows):
        if decision_of is None:
            return table.with_columns(dict.fromkeys(meta.columns, Const(None)))
        if _identity(decision_of, meta.height):
            return table.with_columns(meta.columns)
        if table.height == 0 or decision_of.min() >= 0:
            return table.with_columns(meta.take(decision_of).columns)
        table = table.frame()  # some rows record no decision: nulls there, through polars
    if decision_of is None:
        decision_of = np.full(table.height, -1, np.int64)
    index = pl.Series(decision_of, dtype=pl.Int64)
    if (decision_of < 0).any():
        index = pl.select(pl.when(index >= 0).then(index)).to_series()
    frame = meta.frame(DECISION_COLUMNS)
    return pl.concat([table, frame.select(pl.all().gather(index))], how="horizontal")


def _account(totals: Totals, meta: Rows) -> None:
    """Add one step's decisions (the rows of `_decision_meta`) to the run totals."""
    if meta.height == 0:
        return
    policy = meta.columns["policy"]
    assert isinstance(policy, Codes)
    counts = np.bincount(policy.codes, minlength=len(policy.labels))
    for name, code in sorted((name, code) for code, name in enumerate(policy.labels)):
        if counts[code]:
            totals.decisions[name] += int(counts[code])
    backend = meta.columns["backend"]
    if isinstance(backend, Codes):  # some decisions went to a model

        def values(name: str) -> np.ndarray:
            column = meta.columns[name]
            return np.full(meta.height, column.value) if isinstance(column, Const) else np.asarray(column)

        llm = backend.codes == 1
        cached = values("cached").astype(bool)
        totals.llm_calls += int(llm.sum())
        totals.llm_cached += int(cached[llm].sum())
        totals.prompt_tokens += int(values("prompt_tokens")[llm].sum())
        totals.completion_tokens += int(values("completion_tokens")[llm].sum())
        totals.llm_latency_ms += float(values("latency_ms")[llm & ~cached].sum())
    reasons = meta.columns["fallback_reason"]
    if not isinstance(reasons, Const):
        for reason, count in Counter(r for r in reasons.tolist() if r is not None).most_common():
            totals.fallbacks[reason] += count


def run_steps(
    scenario: BaseScenario,
    world: Any,
    executor: Executor,
    recorder: Recorder,
    ctx: StepContext,
    progress: bool = True,
    log_every: int = 1,
    start_step: int = 0,
    totals: Totals | None = None,
    checkpoints: Checkpointer | None = None,
    signals: StopSignals | None = None,
    failures: FailureRules | None = None,
    budgets: Budgets | None = None,
) -> tuple[Totals, Any]:
    """Step from `start_step` until the scenario is done; return the totals and the final world.

    On a stop (RunStopped, or what `as_stop` maps to one) the last step boundary is checkpointed (when
    `checkpoints` is given) and a RunStopped propagates, its `.totals` those of that boundary."""
    totals = totals or Totals()
    step = start_step
    intact = True  # the world is at a step boundary (resolve may change it in place)
    replays, furthest = 0, step  # shard losses since the run last got past `furthest`
    bar = tqdm(total=scenario.max_steps(world), initial=step, unit="step", file=sys.stderr,
               disable=not progress, dynamic_ncols=True)  # fmt: skip
    try:
        while not scenario.done(world):
            if signals is not None:
                signals.check()
            recorder.check()
            started = time.perf_counter()
            batches = scenario.plan(world, step, seeding.lazy_rng(ctx.seed, "plan", step))
            fill_decisions(batches, ctx, step)
            try:
                decisions = _decide(executor, batches, signals)
            except ShardLost as lost:
                replays += 1
                if checkpoints is None or replays > MAX_REPLAYS:
                    raise
                bar.write(f"step {step}: {lost}; replaying from the last checkpoint", file=sys.stderr)
                executor.restart()
                step, world, state = checkpoints.restore()
                totals = Totals.from_state(state)
                bar.reset(total=scenario.max_steps(world))
                bar.update(step)
                continue
            stood_in, models = None, None
            if failures is not None and batches:
                models = model_decisions(batches, failures.llm_codes)
                decisions, stood_in, failed, reasons = settle(
                    lambda again: _decide(executor, again, signals), batches, decisions, failures.on_failure,
                    failures.stand_in, models,
                )  # fmt: skip
                decided = int(sum(m.sum() for m in models))
                check_budget(failures.max_rate, step, decided, failed, reasons, totals.llm_calls,
                             sum(totals.fallbacks.values()))  # fmt: skip
            intact = False
            result = scenario.resolve(world, step, batches, decisions, seeding.lazy_rng(ctx.seed, "resolve", step))
            stand_in_name = failures.on_failure.removeprefix("policy:") if failures is not None else None
            meta = _decision_meta(batches, decisions, ctx, stood_in, stand_in_name)
            if models is not None and recorder.records(TRANSCRIPTS) and any(m.any() for m in models):
                rows = transcript_rows(batches, decisions, models, stood_in, ctx.model_by_code(), stand_in_name)
                recorder.add(TRANSCRIPTS, _engine_columns(rows, ctx.run_id, step))
            for name, table in result.tables.items():
                if recorder.records_decisions(name):
                    table = _with_decisions(table, result.decision_of.get(name), meta)
                recorder.add(name, _engine_columns(table, ctx.run_id, step))
            _account(totals, meta)
            totals.requests += int(sum(d.attempts.sum() for d in decisions))
            world, step = result.world, step + 1
            totals.steps = step
            intact = True
            if log_every and ((step - 1) % log_every == 0 or scenario.done(world)):
                n = sum(len(b) for b in batches)
                stats = " ".join(f"{k}={v:.4g}" for k, v in result.summary.items())
                bar.write(
                    f"step {step - 1}: {n:,} decisions in {time.perf_counter() - started:.2f} s {stats}".rstrip(),
                    file=sys.stderr,
                )
            bar.update(1)
            if step > furthest:
                replays, furthest = 0, step
            if checkpoints is not None and not scenario.done(world):
                checkpoints.after_step(step, world, totals, time.perf_counter() - started)
            if budgets is not None and not scenario.done(world):
                budgets.check(totals, checkpoints.wall_time_s() if checkpoints is not None else None)
        for name, table in scenario.finish(world).items():
            recorder.add(name, _engine_columns(table, ctx.run_id, None))
    except BaseException as exc:
        stop = as_stop(exc)
        if stop is None:
            raise
        if intact and checkpoints is not None and not scenario.done(world):
            checkpoints.save(step, world, totals, wait=True)
        stop.totals = totals
        if stop is exc:
            raise
        raise stop from exc
    finally:
        bar.close()
    return totals, world


def _decide(executor: Executor, batches: list[DecisionBatch], signals: StopSignals | None) -> list[Decisions]:
    """The step's decisions; a stop signal meanwhile abandons the step (the world is not touched yet)."""
    if not batches:
        return []
    if signals is None:
        return executor.decide(batches)
    with signals.interruptible():
        return executor.decide(batches)


def _engine_columns(table: pl.DataFrame | Rows, run_id: str, step: int | None) -> pl.DataFrame | Rows:
    """The run id and the step on every row (constants of rows given as columns: written once a part)."""
    if "step" not in table.columns and step is None:
        raise RuntimeError("tables from finish() must carry their own step column")
    if isinstance(table, Rows):
        extra: dict[str, Column] = {"run_id": Const(run_id)}
        if "step" not in table.columns:
            extra["step"] = Const(step)
        return table.with_columns(extra)
    columns = [pl.lit(run_id, pl.String).alias("run_id")]
    if "step" not in table.columns:
        columns.append(pl.lit(step, pl.Int64).alias("step"))
    return table.with_columns(columns)
