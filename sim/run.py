"""One run, start to end: build everything from the config (all input checks happen here, before any
file is written), then step the scenario while the recorder writes, and close the manifest however
the run ends."""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from collections import Counter
from contextlib import suppress
from importlib import metadata
from pathlib import Path

from sim.backends.config import BackendConfig
from sim.config import RunConfig
from sim.dryrun import prompter_of
from sim.executors import make_executor
from sim.preflight import Estimate, calibrate, estimate, first_deciding_step
from sim.prepare import Prepared, prepare
from sim.recorder import Recorder, check_run_dir, clear_previous_run, full_schemas
from sim.scheduler import StepContext, run_steps


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


def _calibrated(
    found: Estimate, batches: list, prepared: Prepared, backend: BackendConfig
) -> tuple[Estimate, dict[str, int]]:
    """The estimate with the time per model decision, measured on a few of the first step's decisions,
    and what asking them cost (HTTP requests, tokens: the run's totals include them)."""
    from sim.backends.policy import LLMPolicy

    policy = LLMPolicy(backend, prompter_of(prepared))
    parallel = backend.max_concurrency * max(prepared.config.run.shards, 1)
    try:
        return calibrate(found, batches, prepared, policy, parallel), policy.totals()
    finally:
        policy.close()


def run(config: RunConfig) -> Path:
    """Run a simulation; returns the run directory. Raises ConfigError before writing on bad input."""
    from sim.backends import serving

    prepared = prepare(config)
    run_dir = Path(config.run.dir)
    if config.run.dry_run:
        from sim.dryrun import dry_run

        dry_run(prepared)
        return run_dir
    check_run_dir(run_dir, config.run.overwrite)
    _, first_batches = first_deciding_step(prepared)
    found, spent = estimate(prepared, first_batches, prompter_of(prepared)), {}
    with serving(config.backend) as backend:
        if prepared.has_llm and backend.mode == "live":
            found, spent = _calibrated(found, first_batches, prepared, backend)
        for line in found.lines():
            print(f"socsim: pre-flight: {line}", file=sys.stderr)
        recorder = Recorder(run_dir, full_schemas(prepared.scenario.tables), config.run.flush_rows)
        manifest = {
            "run_id": prepared.run_id,
            "seed": config.seed,
            "scenario": config.scenario.name,
            "config": config.model_dump(mode="json"),
            "versions": versions(),
            "git_sha": git_sha(),
            "agents": prepared.population.size,
            "edges": prepared.graph.n_edges,
        }
        manifest["estimate"] = found.as_dict()
        if prepared.has_llm:
            manifest["prompts"] = {name: t.model_dump() for name, t in sorted(prepared.templates.items())}
        if backend.kind != "none" and backend.mode != "replay":
            from sim.backends.server import server_versions

            manifest["server_versions"] = server_versions(backend)
        executor = make_executor(
            config.run.shards, prepared.decision_setup(backend),
            address=config.run.ray_address, shard_cpus=config.run.shard_cpus,
        )  # fmt: skip
        try:
            clear_previous_run(run_dir)
            recorder.start(manifest, prepared.population.agents_table(), prepared.graph)
            started = time.perf_counter()
            try:
                ctx = StepContext(prepared.run_id, config.seed, prepared.population, backend.kind, backend.model)
                totals, world = run_steps(
                    prepared.scenario, prepared.world, executor, recorder, ctx,
                    progress=config.run.progress, log_every=config.run.log_every,
                )  # fmt: skip
            except BaseException as exc:
                reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
                recorder.finish("failed", {"wall_time_s": round(time.perf_counter() - started, 3)}, error=reason)
                raise
            backend_counters = dict(Counter(executor.close()) + Counter(spent))
            recorder.manifest["outcome"] = prepared.scenario.outcome(world)
            recorder.finish(
                "completed",
                {**totals.as_dict(backend_counters), "wall_time_s": round(time.perf_counter() - started, 3)},
            )
        finally:
            executor.close()
    return run_dir
