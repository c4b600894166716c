"""One run, start to end: build everything from the config (all input checks happen here, before any
file is written), then step the scenario while the recorder writes, and close the manifest however
the run ends: `completed`, `interrupted` (a signal or a server outage: checkpointed, resumable),
`failed` (an error, or a disk that cannot be written: resumable once fixed), or a status another stop
names (see sim/stop.py). `execute` is shared by a new run, `socsim-resume` and `socsim-fork`."""

from __future__ import annotations

import errno
import platform
import subprocess
import sys
from collections import Counter
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from sim.backends.config import BackendConfig
from sim.checkpoint import Cadence, Checkpointer
from sim.config import RunConfig
from sim.dryrun import prompter_of
from sim.executors import make_executor
from sim.preflight import Estimate, calibrate, context_samples, estimate, first_deciding_step
from sim.prepare import Prepared, prepare
from sim.recorder import Position, Recorder, check_run_dir, clear_previous_run, remove_temporaries
from sim.scheduler import StepContext, Totals, run_steps
from sim.status import COMPLETED, FAILED
from sim.stop import RunStopped, StopSignals


class RunWriteError(RuntimeError):
    """The run directory could not be written mid-run (disk full, read-only, permissions): one line."""


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in ("socsim", "numpy", "polars", "pyarrow", "networkx", "ray", "openai", "pydantic", "hydra-core"):
        with suppress(metadata.PackageNotFoundError):
            found[dist] = metadata.version(dist)
    return found


def git_sha() -> str | None:
    """The socsim source revision when running from a checkout (with +dirty for local changes)."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain"], capture_output=True, text=True, timeout=5
        )
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def recorded_config(config: RunConfig) -> dict[str, Any]:
    """The config as the manifest keeps it: credentials in the backend's URLs redacted (a resumed run
    is given them again: `socsim-resume RUN_DIR backend.base_url=...`; keys belong in the environment)."""
    from sim.backends.redact import redact_url

    data = config.model_dump(mode="json")
    backend = data["backend"]
    backend["base_url"] = redact_url(backend.get("base_url"))
    backend["endpoints"] = [redact_url(url) for url in backend.get("endpoints") or []]
    for entry in (backend.get("models") or {}).values():
        entry["base_url"] = redact_url(entry.get("base_url"))
        if entry.get("endpoints") is not None:
            entry["endpoints"] = [redact_url(url) for url in entry["endpoints"]]
    return data


def new_manifest(prepared: Prepared) -> dict[str, Any]:
    """What a new run's manifest says before it starts (the recorder adds status, process, times)."""
    config = prepared.config
    manifest: dict[str, Any] = {
        "run_id": prepared.run_id,
        "seed": config.seed,
        "scenario": config.scenario.name,
        "config": recorded_config(config),
        "versions": versions(),
        "git_sha": git_sha(),
        "agents": prepared.population.size,
        "edges": prepared.graph.n_edges,
    }
    if prepared.has_llm:
        manifest["prompts"] = {name: t.model_dump() for name, t in sorted(prepared.templates.items())}
        names = prepared.population.policy_names
        manifest["models"] = {  # the served model behind each language-model policy the agents use
            names[code]: model
            for code, model in enumerate(prepared.model_names())
            if model is not None and (prepared.population.policy_codes == code).any()
        }
    return manifest


def _calibrated(
    found: Estimate, batches: list, prepared: Prepared, backend: BackendConfig
) -> tuple[Estimate, dict[str, int]]:
    """The estimate with the time per model decision, measured on a few of the first step's decisions
    (of the first model they go to), and what asking them cost (HTTP requests, tokens: the run's
    totals include them)."""
    from agents.population import model_key
    from sim.backends.policy import LLMPolicy

    code = first_model_code(batches, prepared.population.llm_codes())
    if code is None:
        return found, {}
    model = backend.for_model(model_key(prepared.population.policy_names[code]))
    policy = LLMPolicy(model, prompter_of(prepared))
    parallel = model.max_concurrency * len(model.urls) * max(prepared.config.run.shards, 1)
    try:
        return calibrate(found, batches, prepared, policy, parallel, np.array([code])), policy.totals()
    finally:
        policy.close()


def first_model_code(batches: list, llm_codes: Any) -> int | None:
    """The policy code of the first language-model decision in `batches` (None: there is none)."""
    for batch in batches:
        asked = np.flatnonzero(np.isin(batch.policies, llm_codes))
        if len(asked):
            return int(batch.policies[asked[0]])
    return None


@dataclass
class Start:
    """Where execution begins: step 0 of a new run, or a checkpoint (a resume, or a fork's first)."""

    step: int = 0
    position: Position | None = None  # the recorder's position at the checkpoint (parts already on disk)
    totals: dict[str, Any] | None = None
    wall_time_s: float = 0.0
    world: Any = None  # the restored world (None: the prepared initial world)
    resume: bool = False  # the directory already holds this run (its manifest, agents and graph)


def run(config: RunConfig) -> Path:
    """Run a simulation; returns the run directory. Raises ConfigError before writing on bad input,
    RunStopped when stopped (checkpointed, resumable), RunWriteError when the directory fails."""
    prepared = prepare(config)
    run_dir = Path(config.run.dir)
    if config.run.dry_run:
        from sim.dryrun import dry_run

        dry_run(prepared)
        return run_dir
    check_run_dir(run_dir, config.run.overwrite)
    _, first_batches = first_deciding_step(prepared)
    found = estimate(prepared, first_batches, prompter_of(prepared))
    return execute(prepared, new_manifest(prepared), Start(), preflight=(found, first_batches))


def execute(
    prepared: Prepared, manifest: dict[str, Any], start: Start, preflight: tuple[Estimate, list] | None = None
) -> Path:
    """Step `prepared` from `start` to the end into `run.dir`, writing `manifest` (see module docstring).
    `preflight`: a new run's estimate and its first deciding step's batches (printed, calibrated on the
    live server, recorded)."""
    from sim.backends import serving

    config = prepared.config
    run_dir = Path(config.run.dir)
    spent: dict[str, int] = {}
    with StopSignals() as signals, ExitStack() as stack:
        with signals.interruptible():  # a stop while a server or the shards start: nothing to save yet
            models = prepared.model_keys()
            backend = stack.enter_context(serving(config.backend, models or ([None] if config.backend.model else [])))
            if preflight is not None and prepared.has_llm and backend.mode == "live":
                from sim.backends.context import as_manifest, check_context

                checked = {}
                for key in models:  # prompts that cannot fit a model's context: one line, before step 0
                    model = backend.for_model(key)
                    samples = context_samples(prepared, model.choice_format)
                    if samples:
                        checked[key] = as_manifest(check_context(model, samples))
                if checked:
                    manifest["context"] = checked[None] if list(checked) == [None] else checked
            if preflight is not None:
                found, first_batches = preflight
                if prepared.has_llm and backend.mode == "live":
                    found, spent = _calibrated(found, first_batches, prepared, backend)
                for line in found.lines():
                    print(f"socsim: pre-flight: {line}", file=sys.stderr)
                manifest["estimate"] = found.as_dict()
            if backend.kind != "none" and backend.mode != "replay":
                from sim.backends.server import server_versions

                manifest["server_versions"] = {
                    url: version
                    for key in models or [None]
                    for url, version in server_versions(backend.for_model(key)).items()
                }
            executor = make_executor(
                config.run.shards, prepared.decision_setup(backend), address=config.run.ray_address,
                shard_cpus=config.run.shard_cpus, restarts=config.run.shard_restarts,
            )  # fmt: skip
            stack.callback(executor.close)
        recorder = Recorder(run_dir, prepared.schemas(), config.run.flush_rows)
        checkpoints = Checkpointer(
            run_dir, prepared.run_id, prepared.scenario, config.seed, recorder,
            Cadence(config.run.checkpoint_every, prepared.has_llm), config.run.keep_checkpoints, start.wall_time_s,
        )  # fmt: skip
        try:
            if start.resume:
                recorder.reopen(manifest, start.position or {}, config.run.heartbeat_s)
            else:
                clear_previous_run(run_dir)
                recorder.start(manifest, prepared.population.agents_table(), prepared.graph,
                               config.run.heartbeat_s, start.position)  # fmt: skip
            recorder.start_heartbeat()
            checkpoints.start_clock()
            ctx = StepContext(prepared.run_id, config.seed, prepared.population, backend.kind, backend.model,
                              prepared.model_names())  # fmt: skip
            totals, world = run_steps(
                prepared.scenario, prepared.world if start.world is None else start.world, executor, recorder, ctx,
                progress=config.run.progress, log_every=config.run.log_every, start_step=start.step,
                totals=Totals.from_state(start.totals), checkpoints=checkpoints, signals=signals,
                failures=prepared.failure_rules(), budgets=prepared.budgets(),
            )  # fmt: skip
            backend_counters = dict(Counter(executor.close()) + Counter(spent))
            outcome = {"outcome": prepared.scenario.outcome(world)}
            _close(recorder, checkpoints, COMPLETED, totals.as_dict(backend_counters), None, flush=True, extra=outcome)
        except RunStopped as stop:
            totals_now = stop.totals.as_dict() if isinstance(stop.totals, Totals) else {}
            _close(recorder, checkpoints, stop.status, totals_now, stop.reason, flush=False)
            raise
        except OSError as exc:
            if not _write_failure(exc, run_dir):
                _close(recorder, checkpoints, FAILED, {}, f"{type(exc).__name__}: {exc}", flush=True)
                raise
            _close(recorder, checkpoints, FAILED, {}, f"{type(exc).__name__}: {exc}", flush=False)
            with suppress(OSError):  # a read-only directory keeps what it has
                remove_temporaries(run_dir)
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            said = "the manifest says status=failed" if recorder.closed else "the manifest could not be updated"
            raise RunWriteError(
                f"cannot write the run in {run_dir}: {exc.strerror or exc}{where}; {said}; "
                f"once fixed, continue with: socsim-resume {run_dir}"
            ) from exc
        except BaseException as exc:
            _close(recorder, checkpoints, FAILED, {}, f"{type(exc).__name__}: {exc}", flush=True)
            raise
    return run_dir


WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EFBIG})


def _write_failure(exc: OSError, run_dir: Path) -> bool:
    """An error writing the run directory (a full disk, a read-only or forbidden one), not, say, a
    connection error that happens to be an OSError too."""
    if exc.errno in WRITE_ERRNOS:
        return True
    name = getattr(exc, "filename", None)
    return bool(name) and Path(run_dir).resolve() in (Path(str(name)).resolve(), *Path(str(name)).resolve().parents)


def checkpoint_totals(checkpoints: Checkpointer) -> dict[str, Any]:
    """What checkpoints cost: the step loop's time (snapshots, waits) and the writer thread's."""
    written = list(checkpoints.written)
    return {
        "written": len(written),
        "seconds": round(checkpoints.stepping_cost_s, 3),
        "write_seconds": round(sum(seconds for _, seconds, _ in written), 3),
        "last_bytes": written[-1][2] if written else None,
    }


def _close(
    recorder: Recorder,
    checkpoints: Checkpointer,
    status: str,
    totals: dict[str, Any],
    error: str | None,
    flush: bool,
    extra: dict[str, Any] | None = None,
) -> None:
    """Close the manifest with `status` (once: a run whose closing failed is not closed again). With
    `flush`, an I/O error is raised after the manifest says failed (see Recorder.finish)."""
    if recorder.finishing:
        return
    totals = {**totals, "wall_time_s": round(checkpoints.wall_time_s(), 3)}
    try:
        recorder.finish(status, totals, error=error, flush=flush, extra=extra,
                        late_totals=lambda: {"checkpoints": checkpoint_totals(checkpoints)})  # fmt: skip
    except OSError:
        recorder.abandon()
        if status == COMPLETED:
            raise
