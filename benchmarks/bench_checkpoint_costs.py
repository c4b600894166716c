"""Checkpoint and resume costs, as a share of step time, through the engine (records written to Parquet):
a 1,000,000-agent scripted donor game and a 100,000-agent Deffuant value-diffusion run on a Watts-Strogatz
graph (10 Schwartz values per agent).

For each workload, three runs of the same seed:
- no checkpoints (`run.checkpoint_every=0`): the step time (the manifest's stepping wall time / steps);
- a checkpoint after every step (`run.checkpoint_every=1`): what one checkpoint costs the step loop
  (queueing the buffered rows as parts, snapshotting the world: its arrays copied, the rest encoded as
  JSON) and the writer thread (npz and JSON written, fsynced, renamed, beside the next steps), and its size;
- the default (`run.checkpoint_every=null`, automatic), on a longer run of the same workload (the
  automatic cadence writes nothing in the first minute): how many checkpoints it wrote and their share
  of the run's stepping time (the cadence keeps it at or under 5% by construction);
then the steps a resume takes before stepping again, from the last checkpoint of the second run: rebuild
population, graph and scenario from the stored config (`prepare`), read the checkpoint, restore the world.

    python benchmarks/bench_checkpoint_costs.py [--donors 1000000] [--values 100000] [--long 20] [--quick] 2> /dev/null
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from sim import checkpoint
from sim.checkpoint import AUTO_MIN_INTERVAL_S, OVERHEAD_FACTOR
from sim.config import compose, validate_config
from sim.prepare import prepare
from sim.run import run

QUIET = ["run.progress=false", "run.log_every=0"]


def workloads(donors: int, values: int, long: int) -> list[tuple[str, list[str], list[str]]]:
    """(name, overrides, the longer run's extra overrides)."""
    return [
        (f"donor game, {donors:,} agents, scripted, complete graph", [
            "scenario=donor_game", "scenario.agents_per_generation=null", f"population.size={donors}",
            "scenario.generations=1", "scenario.rounds=6", "seed=1",
        ], [f"scenario.rounds={6 * long}"]),
        (f"Deffuant, {values:,} agents x 10 values, Watts-Strogatz k=10", [
            "scenario=deffuant", "graph=watts_strogatz", "graph.k=10", f"population.size={values}",
            "scenario.max_steps=30", "scenario.tolerance=1e-12", "seed=1",
        ], [f"scenario.max_steps={30 * long}"]),
    ]  # fmt: skip


def execute(overrides: list[str], run_dir: Path) -> dict:
    run(compose([*overrides, *QUIET, f"run.dir={run_dir}"]))
    return json.loads((run_dir / "manifest.json").read_text())


def resume_set_up(run_dir: Path) -> dict[str, float]:
    """What `socsim-resume` does before its first step, timed part by part."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    began = time.perf_counter()
    prepared = prepare(validate_config(manifest["config"]))
    prepared_at = time.perf_counter()
    last = checkpoint.latest(run_dir, manifest["run_id"])
    read_at = time.perf_counter()
    prepared.scenario.restore(last.arrays, last.world)
    restored_at = time.perf_counter()
    return {"prepare": prepared_at - began, "read": read_at - prepared_at, "restore": restored_at - read_at}


def measure(name: str, overrides: list[str], longer: list[str], tmp: Path) -> None:
    print(f"\n{name}", flush=True)
    plain = execute([*overrides, "run.checkpoint_every=0"], tmp / "plain")
    steps = plain["totals"]["steps"]
    step_s = plain["totals"]["wall_time_s"] / steps
    print(f"  step time (no checkpoints)            {step_s:8.3f} s   ({steps} steps, {plain['agents']:,} agents)")

    every = execute([*overrides, "run.checkpoint_every=1", "run.keep_checkpoints=last"], tmp / "every")
    written = every["totals"]["checkpoints"]
    per_checkpoint = written["seconds"] / written["written"]
    overhead = every["totals"]["wall_time_s"] / steps - step_s
    writing = written["write_seconds"] / written["written"]
    print(
        f"  one checkpoint, in the step loop      {per_checkpoint:8.3f} s   = {100 * per_checkpoint / step_s:5.1f}% "
        f"of a step ({written['written']} written; stepping slower by {overhead:.3f} s a step)"
    )
    print(f"  one checkpoint, writer thread         {writing:8.3f} s   (npz + JSON + fsync + rename, beside the steps)")
    print(f"  checkpoint size                       {written['last_bytes'] / 1e6:8.1f} MB")
    bound = per_checkpoint / max(AUTO_MIN_INTERVAL_S, OVERHEAD_FACTOR * per_checkpoint)
    print(
        f"  automatic cadence, by its rule        {100 * bound:8.2f} % of run time at most (one checkpoint per "
        f"{max(AUTO_MIN_INTERVAL_S, OVERHEAD_FACTOR * per_checkpoint):.0f} s of stepping)"
    )

    auto = execute([*overrides, *longer], tmp / "auto")
    automatic = auto["totals"]["checkpoints"]
    share = 100 * automatic["seconds"] / auto["totals"]["wall_time_s"]
    print(
        f"  automatic cadence                     {automatic['written']:8d} checkpoint(s) = {share:5.1f}% of "
        f"{auto['totals']['wall_time_s']:.1f} s of stepping ({auto['totals']['steps']} steps)"
    )

    parts = resume_set_up(tmp / "every")
    total = sum(parts.values())
    detail = ", ".join(f"{k} {v:.3f} s" for k, v in parts.items())
    print(
        f"  resume before stepping                {total:8.3f} s   = {100 * total / step_s:5.1f}% of a step ({detail})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--donors", type=int, default=1_000_000)
    parser.add_argument("--values", type=int, default=100_000)
    parser.add_argument("--long", type=int, default=20, help="the automatic-cadence run is this many times longer")
    parser.add_argument("--quick", action="store_true", help="100,000 donors and 20,000 value agents")
    args = parser.parse_args()
    donors, values = (100_000, 20_000) if args.quick else (args.donors, args.values)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall times grow with it)")
    with tempfile.TemporaryDirectory(prefix="bench-checkpoint-") as tmp:
        for i, (name, overrides, longer) in enumerate(workloads(donors, values, args.long)):
            measure(name, overrides, longer, Path(tmp) / str(i))


if __name__ == "__main__":
    main()
