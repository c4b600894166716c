"""One run, start to end: build everything from the config (all input checks happen here, before any
file is written), then step the scenario while the recorder writes, and close the manifest however
the run ends."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import time
from contextlib import suppress
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from agents.population import Population, allocate_mix, assign_policies, load_personas, sample_personas
from scenarios import Scenario, SocialGraph, scenario_class
from sim import seeding
from sim.config import ConfigError, PopulationConfig, RunConfig
from sim.executors import make_executor
from sim.graph import build_graph
from sim.recorder import Recorder, check_run_dir, clear_previous_run, full_schemas
from sim.runner import LLM
from sim.scheduler import StepContext, run_steps


@dataclass
class Prepared:
    """Everything a run needs, built and checked before the run directory is touched."""

    config: RunConfig
    run_id: str
    scenario: Scenario
    population: Population
    graph: SocialGraph
    world: Any


def policy_universe(scenario: Scenario) -> tuple[str, ...]:
    """Every policy a run may use, in a fixed order (codes in the records index this)."""
    return (*sorted(scenario.policies()), LLM)


DEFAULT_POPULATION_SIZE = 20


def build_population(config: PopulationConfig, scenario: Scenario, seed: int, llm_available: bool) -> Population:
    """Personas (from the file, or sampled) and a policy per agent. Size: `population.size`, else the
    persona file's length, else the scenario's default, else 20."""
    if config.source:
        personas = load_personas(config.source)
        if config.size is not None and personas.height != config.size:
            raise ConfigError(
                f"population.size: is {config.size} but {config.source} holds {personas.height} personas; "
                f"set population.size={personas.height} (or null)"
            )
    else:
        size = config.size or scenario.default_population_size() or DEFAULT_POPULATION_SIZE
        personas = sample_personas(config.sampler, size, seeding.rng(seed, "personas"))
    size = personas.height
    universe = policy_universe(scenario)
    mix = dict(config.mix or {}) or scenario.default_mix()
    try:
        counts = allocate_mix(mix, size)
        codes = assign_policies(counts, universe, seeding.rng(seed, "policies"))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if counts.get(LLM, 0) and not llm_available:
        raise ConfigError("population.mix: 'llm' agents need a model; choose backend=vllm or backend=openai")
    return Population(personas=personas, policy_names=universe, policy_codes=codes)


def run_id_of(config: RunConfig) -> str:
    """Same science (scenario, graph, population, model, seed) → same id, however it was executed."""
    blob = json.dumps(config.science_dict(), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def prepare(config: RunConfig) -> Prepared:
    """Build scenario, population, graph and world; any bad input raises ConfigError (or a file error)."""
    scenario = scenario_class(config.scenario.name)(config.scenario)  # type: ignore[attr-defined]
    population = build_population(config.population, scenario, config.seed, config.backend.kind != "none")
    try:
        graph = build_graph(
            config.graph, population.size, seeding.int_seed(config.seed, "graph"),
            population.personas.get_column("id").to_list(),
        )  # fmt: skip
        world = scenario.init(population, graph, seeding.rng(config.seed, "init"))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return Prepared(config, run_id_of(config), scenario, population, graph, world)


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


def run(config: RunConfig) -> Path:
    """Run a simulation; returns the run directory. Raises ConfigError before writing on bad input."""
    from sim.backends import serving

    prepared = prepare(config)
    run_dir = Path(config.run.dir)
    check_run_dir(run_dir, config.run.overwrite)
    with serving(config.backend) as backend:
        recorder = Recorder(run_dir, full_schemas(prepared.scenario.table_schemas()), config.run.flush_rows)
        manifest = {
            "run_id": prepared.run_id,
            "seed": config.seed,
            "scenario": config.scenario.name,  # type: ignore[attr-defined]
            "config": config.model_dump(mode="json"),
            "versions": versions(),
            "git_sha": git_sha(),
            "agents": prepared.population.size,
            "edges": len(prepared.graph.edges),
        }
        if backend.kind != "none" and backend.mode != "replay":
            from sim.backends.server import server_versions

            manifest["server_versions"] = server_versions(backend)
        executor = make_executor(
            config.run.shards, config.scenario, backend, prepared.population,
            address=config.run.ray_address, shard_cpus=config.run.shard_cpus,
        )  # fmt: skip
        try:
            clear_previous_run(run_dir)
            recorder.start(manifest, prepared.population.agents_table(), prepared.graph.edges)
            started = time.perf_counter()
            try:
                ctx = StepContext(prepared.run_id, config.seed, prepared.population, backend.kind, backend.model)
                totals = run_steps(
                    prepared.scenario, prepared.world, executor, recorder, ctx,
                    progress=config.run.progress, log_every=config.run.log_every,
                )  # fmt: skip
            except BaseException as exc:
                reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
                recorder.finish("failed", {"wall_time_s": round(time.perf_counter() - started, 3)}, error=reason)
                raise
            backend_counters = executor.close()
            recorder.finish(
                "completed",
                {**totals.as_dict(backend_counters), "wall_time_s": round(time.perf_counter() - started, 3)},
            )
        finally:
            executor.close()
    return run_dir
