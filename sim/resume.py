"""Continue a run from its last checkpoint (`resume`), or branch one at a checkpointed step (`fork`).

A resume rebuilds population, graph and scenario from the config stored in the manifest (they are
deterministic in it), restores the world of the last checkpoint, removes parts written after it, and
steps on: the finished tables equal an uninterrupted run's. Only keys that do not change the results
may be overridden (where and how fast it runs: shards, servers, timeouts...).

A fork starts a new run directory from the parent's checkpoint at step t with changed scenario or
backend parameters. It is complete by itself: the parent's records of steps < t are copied in (with
the fork's run_id), its manifest says `forked_from: {run_id, step}`, and its run_id derives from the
parent's, the step and its own config. Population, graph, seed and scenario cannot change mid-run.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from scenarios import scenario_class
from sim import checkpoint, seeding
from sim.checkpoint import Checkpoint, CheckpointError
from sim.config import ConfigError, validate_config
from sim.prepare import Prepared, prepare
from sim.recorder import _atomic_write, check_run_dir, part_name
from sim.run import RunWriteError, Start, execute, new_manifest, recorded_config
from sim.scheduler import Totals
from sim.status import COMPLETED, RUNNING, describe, effective_status, now_iso

# Keys a resume may change: where and how the run executes, never what it computes.
EXECUTION_KEYS = frozenset({
    "run.shards", "run.ray_address", "run.shard_cpus", "run.progress", "run.log_every", "run.flush_rows",
    "run.checkpoint_every", "run.keep_checkpoints", "run.heartbeat_s", "run.shard_restarts",
    "backend.base_url", "backend.endpoints", "backend.api_key_env", "backend.max_concurrency",
    "backend.max_retries", "backend.mode", "backend.cache_dir", "backend.launch", "backend.python",
    "backend.model_path", "backend.host", "backend.port", "backend.server_args", "backend.kv_cache_gib",
    "backend.server_dir", "backend.max_total_tokens", "backend.max_requests", "backend.max_failure_rate",
    "run.max_wall_time_s", "run.record_transcripts",
})  # fmt: skip
# Keys a fork may not change (with every key under the groups): who is in the run, on which graph,
# with which randomness, playing what.
FORK_FIXED = frozenset({"seed", "scenario", "scenario.name"})
FORK_FIXED_GROUPS = ("population", "graph")


class ResumeError(ValueError):
    """A run that cannot be resumed or forked as asked: one line."""


def read_manifest(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResumeError(f"{run_dir}: no manifest.json (not a socsim run directory)") from None
    except (OSError, ValueError) as exc:
        raise ResumeError(f"{path}: not a readable manifest ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("config"), dict) or "run_id" not in manifest:
        raise ResumeError(f"{path}: not a socsim manifest")
    return manifest


# Fields of a model in backend.models that a resume may change (where and how it is asked).
MODEL_EXECUTION_FIELDS = frozenset({"base_url", "endpoints", "api_key_env", "max_concurrency", "max_retries"})


def is_execution_key(key: str) -> bool:
    """Execution keys (EXECUTION_KEYS, and those of each model: `backend.models.<key>.base_url`, ...)
    and any backend timeout (`backend.*timeout_s`)."""
    parts = key.split(".")
    per_model = len(parts) == 4 and parts[:2] == ["backend", "models"] and parts[3] in MODEL_EXECUTION_FIELDS
    return key in EXECUTION_KEYS or per_model or (key.startswith("backend.") and key.endswith("timeout_s"))


def parse_overrides(items: Iterable[str]) -> list[tuple[str, Any]]:
    """`key=value` items, read with Hydra's override grammar (as on the socsim command line)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    items = list(items)
    try:
        parsed = OverridesParser.create().parse_overrides(overrides=items)
    except HydraException as exc:
        raise ConfigError(str(exc).strip().splitlines()[0]) from None
    out = []
    for item, override in zip(items, parsed, strict=True):
        if override.is_delete() or override.is_add() or override.is_force_add():
            raise ConfigError(f"{item}: only key=value overrides of existing keys are accepted here")
        if override.is_sweep_override():
            raise ConfigError(f"{item}: a sweep cannot continue one run; give one value")
        out.append((override.key_or_group, override.value()))
    return out


def apply_overrides(data: dict[str, Any], overrides: list[tuple[str, Any]]) -> dict[str, Any]:
    """A copy of the config dict with each (dotted key, value) set; a key the config lacks is an error."""
    out = copy.deepcopy(data)
    for key, value in overrides:
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                raise ConfigError(f"{key}: unknown key")
        if leaf not in node:
            raise ConfigError(f"{key}: unknown key")
        if isinstance(node[leaf], dict) and not isinstance(value, dict):
            raise ConfigError(f"{key}: give its keys ({key}.<name>=...), not a config group")
        node[leaf] = value
    return out


def _stored_config(manifest: dict[str, Any], run_dir: Path, overrides: list[tuple[str, Any]]) -> dict[str, Any]:
    data = apply_overrides(manifest["config"], overrides)
    data["run"] = {**data["run"], "dir": str(run_dir), "overwrite": False, "dry_run": False}
    return data


def fork_run_id(parent_run_id: str, step: int, science_id: str) -> str:
    """A fork's own run_id: its parent, where it branched, and its own config."""
    blob = json.dumps({"parent": parent_run_id, "step": step, "science": science_id}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _expected_run_id(manifest: dict[str, Any], prepared: Prepared) -> str:
    parent = manifest.get("forked_from")
    if isinstance(parent, dict):
        return fork_run_id(str(parent["run_id"]), int(parent["step"]), prepared.run_id)
    return prepared.run_id


# ---- resume ----------------------------------------------------------------------------------------
def resume(run_dir: Path, overrides: Iterable[str] = ()) -> Path | None:
    """Continue the run in `run_dir` from its last checkpoint; None when it had already completed.

    Raises ResumeError / ConfigError (one line) when it cannot be resumed as asked; otherwise what
    `sim.run.execute` raises (RunStopped when stopped again, RunWriteError)."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    status = effective_status(manifest)
    if status == COMPLETED:
        return None
    if status == RUNNING:
        raise ResumeError(f"{run_dir} is still {describe(manifest)}; stop it first (SIGTERM checkpoints it)")
    parsed = parse_overrides(overrides)
    for key, _ in parsed:
        if key in ("run.dir", "run.overwrite", "run.dry_run"):
            raise ConfigError(f"{key}: a run is resumed where it is ({run_dir}); to branch it elsewhere, fork it")
        if not is_execution_key(key):
            raise ConfigError(
                f"{key}: would change the run's results; socsim-resume accepts only execution keys "
                f"(run.shards, run.ray_address, backend.base_url, backend.endpoints, timeouts, ...); "
                f"to change {key}, fork: socsim-fork {run_dir} --at STEP --out NEW_DIR {key}=..."
            )
    config = validate_config(_stored_config(manifest, run_dir, parsed))
    prepared = prepare(config)
    run_id = _expected_run_id(manifest, prepared)
    if run_id != manifest["run_id"]:
        raise ResumeError(
            f"{run_dir}: its stored config now gives run_id {run_id}, not {manifest['run_id']} (the socsim "
            "version or a prompt file changed what the run computes); it cannot be resumed identically"
        )
    prepared.run_id = run_id
    last = checkpoint.latest(run_dir, run_id)
    if last is None and isinstance(manifest.get("forked_from"), dict) and manifest["forked_from"].get("step"):
        raise ResumeError(f"{run_dir}: a fork without its starting checkpoint; fork again into a new directory")
    start = _start_from(prepared, last)
    start.http_before = Totals.http_counters(manifest.get("totals") or {})
    manifest = {**manifest, "config": recorded_config(config)}
    resumed = {"at": now_iso(), "step": start.step, "after": status, "overrides": list(overrides)}
    manifest["resumed"] = [*manifest.get("resumed", []), resumed]
    return execute(prepared, manifest, start)


def _start_from(prepared: Prepared, last: Checkpoint | None) -> Start:
    if last is None:  # stopped before its first checkpoint: from the start, in the same directory
        return Start(step=0, position={}, resume=True)
    world = prepared.scenario.restore(last.arrays, last.world)
    return Start(step=last.step, position=last.recorder, totals=last.totals, wall_time_s=last.wall_time_s,
                 world=world, resume=True)  # fmt: skip


# ---- fork ------------------------------------------------------------------------------------------
def fork(parent_dir: Path, at: int, out: Path, overrides: Iterable[str] = ()) -> Path:
    """A new run in `out` from the parent's checkpoint at step `at`, with `overrides` applied."""
    parent_dir, out = Path(parent_dir), Path(out)
    manifest = read_manifest(parent_dir)
    parsed = parse_overrides(overrides)
    for key, _ in parsed:
        if key in FORK_FIXED or key.split(".")[0] in FORK_FIXED_GROUPS:
            raise ConfigError(
                f"{key}: cannot change in a fork (population, graph, seed and scenario stay the parent's); "
                "start a new run instead"
            )
        if key in ("run.dir", "run.overwrite", "run.dry_run"):
            raise ConfigError(f"{key}: a fork is written to --out, a new directory")
    if out.exists() and any(out.iterdir()):
        raise ResumeError(f"--out {out}: exists and is not empty; a fork needs a new directory")
    check_run_dir(out, overwrite=False)
    config = validate_config(_stored_config(manifest, out, parsed))
    prepared = prepare(config)
    changed = [key for key, _ in parsed if key.startswith(("scenario.", "backend."))]
    _same_agents_and_graph(parent_dir, prepared, changed)
    parent_id = str(manifest["run_id"])
    found = checkpoint.steps(parent_dir)
    if at not in found and at != 0:
        raise ResumeError(
            f"--at {at}: {parent_dir} has no checkpoint at step {at} (have: {checkpoint.available(parent_dir)}); "
            "to fork at any step, run with run.checkpoint_every=1 run.keep_checkpoints=all"
        )
    parent = checkpoint.read(parent_dir, at, parent_id) if at in found else None
    run_id = fork_run_id(parent_id, at, prepared.run_id)
    prepared.run_id = run_id
    start = Start()  # at step 0 without a checkpoint: the fork's own initial world
    if parent is not None:
        arrays, data = fork_world(_initial_world(manifest, prepared), prepared.world, parent, changed)
        world = prepared.scenario.restore(arrays, data)
        start = Start(step=at, position=parent.recorder, totals=parent.totals, wall_time_s=parent.wall_time_s,
                      world=world)  # fmt: skip
        try:
            out.mkdir(parents=True, exist_ok=True)
            _copy_records(parent_dir, out, parent.recorder, run_id)
            checkpoint.write(out, Checkpoint(at, run_id, arrays, data, parent.totals, parent.recorder,
                                             parent.wall_time_s))  # fmt: skip
        except OSError as exc:
            raise RunWriteError(
                f"cannot write the fork in {out}: {exc.strerror or exc}; remove {out} and fork again"
            ) from exc
    origin = {"run_id": parent_id, "step": at, "dir": str(parent_dir), "overrides": list(overrides)}
    fork_manifest = {**new_manifest(prepared), "forked_from": origin}
    return execute(prepared, fork_manifest, start)


def _same_agents_and_graph(parent_dir: Path, prepared: Prepared, changed: list[str]) -> None:
    """A scenario parameter may not change who is in the run (e.g. a default population size)."""
    why = ", ".join(changed) or "the config"
    try:
        agents = pl.read_parquet(parent_dir / "agents.parquet")
        edges = pl.read_parquet(parent_dir / "graph.parquet")
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ResumeError(f"{parent_dir}: cannot read its agents or graph ({exc})") from None
    if not prepared.population.agents_table().equals(agents):
        raise ConfigError(
            f"{why}: changes the population ({prepared.population.size} agents or their policies differ from "
            f"the parent's {agents.height}); a fork keeps the parent's agents"
        )
    if not np.array_equal(prepared.graph.edges, edges.select("source", "target").to_numpy()):
        raise ConfigError(f"{why}: changes the social graph; a fork keeps the parent's graph")


def _initial_world(manifest: dict[str, Any], prepared: Prepared) -> Any:
    """The parent's world at step 0, built with the parent's scenario config on the (same) agents and graph."""
    parent = validate_config(manifest["config"])
    scenario = scenario_class(parent.scenario.name)(parent.scenario)
    scenario.bind(prepared.population, prepared.graph)
    return scenario.init(seeding.rng(parent.seed, "init"))


def fork_world(parent_init: Any, fork_init: Any, at: Checkpoint, changed: list[str]) -> tuple[dict, dict]:
    """The fork's world at `at`: the parent's, with what the new config sets at the start taken over.

    The two initial worlds (same seed, agents and graph) differ only where the config shapes the world.
    Where they differ, a field the run has not changed since step 0 (a bound derived from epsilon, the
    resources a new generation starts with) takes the fork's initial value; a field the run has changed
    keeps the run's value (its state carries on), unless the new config gives it another shape, which
    cannot be applied mid-run: the fork is refused."""
    why = ", ".join(changed) or "the config"
    (a_arrays, a_data), (b_arrays, b_data) = parent_init.state(), fork_init.state()
    a_data, b_data = _plain_json(a_data), _plain_json(b_data)
    if a_arrays.keys() != b_arrays.keys() or a_data.keys() != b_data.keys():
        raise ConfigError(f"{why}: cannot change mid-run (the world would hold other fields); fork at step 0")
    arrays, data = dict(at.arrays), dict(at.world)
    for name, a in a_arrays.items():
        b = b_arrays[name]
        if _same_array(a, b):
            continue
        if _same_array(a, at.arrays[name]):
            arrays[name] = b
        elif (a.shape, a.dtype) != (b.shape, b.dtype):
            raise ConfigError(_refusal(why, name, at.step, f"{b.shape} {b.dtype} instead of {a.shape} {a.dtype}"))
    for name, a in a_data.items():
        b = b_data[name]
        if a == b:
            continue
        if a == at.world.get(name):
            data[name] = b
        elif _size(a) != _size(b):
            raise ConfigError(_refusal(why, name, at.step, f"{_size(b)} entries instead of {_size(a)}"))
    return arrays, data


def _refusal(why: str, field: str, step: int, shapes: str) -> str:
    return (
        f"{why}: cannot change at step {step}: the run has changed the world's {field} since step 0 and the new "
        f"config gives it another shape ({shapes}); fork at step 0, or where {field} is as it started"
    )


def _same_array(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")


def _size(value: Any) -> int | None:
    """Entries of a list (or text array) in a world's JSON part; None for a scalar."""
    if isinstance(value, dict) and "__text__" in value:
        value = value["__text__"]
    return len(value) if isinstance(value, list) else None


def _plain_json(data: dict[str, Any]) -> dict[str, Any]:
    """As a checkpoint stores it (tuples become lists, numpy scalars plain numbers)."""
    return json.loads(json.dumps(data, default=checkpoint.json_default))


def _copy_records(parent_dir: Path, out: Path, position: dict[str, dict[str, int]], run_id: str) -> None:
    """The parent's parts up to the checkpoint, each rewritten with the fork's run_id."""
    for table, parts in position.get("parts", {}).items():
        if not parts:
            continue
        (out / table).mkdir(parents=True, exist_ok=True)
        for index in range(parts):
            source = parent_dir / table / part_name(index)
            try:
                frame = pl.read_parquet(source).with_columns(pl.lit(run_id, pl.String).alias("run_id"))
            except (OSError, pl.exceptions.PolarsError) as exc:
                raise CheckpointError(f"{source}: cannot be read ({exc}); the fork cannot copy it") from None
            _atomic_write(out / table / part_name(index),
                          lambda p, f=frame: f.write_parquet(p, compression="zstd", statistics=True))  # fmt: skip
