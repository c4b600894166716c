"""Ray shards against in-process on compute-bound scripted runs (issue 16 item 3): 2 shards should
reach at least 1.6x the in-process throughput on a 2-core machine.

Throughput = records (IPD moves, donor-game donations) / the run's stepping time (manifest
`wall_time_s`, which leaves out Ray's start-up; that is printed beside it). A donor game that cannot
run in-process (today the complete graph of 100,000 agents needs more memory than the machine has) is
reported as failed and its shard run skipped.

    python benchmarks/bench_shards.py [--quick] [--repeats N] [--json FILE]
"""

from __future__ import annotations

import argparse
import os

import procs
from figures import Figure, Reporter, Target

GROUP = "Ray shards"


def ipd(agents: int) -> list[str]:
    """The socsim workloads (the one place to change when scenario names change)."""
    return ["scenario=ipd", f"population.size={agents}", "scenario.rounds=10", "seed=1"]


def donor(agents: int) -> list[str]:
    return [
        "scenario=donor_game", "scenario.agents_per_generation=null", f"population.size={agents}",
        "scenario.generations=2", "seed=1",
    ]  # fmt: skip


def workloads(quick: bool) -> list[tuple[str, list[str], str]]:
    ipd_agents, donor_agents = (500, 3_000) if quick else (2_000, 100_000)
    return [
        (f"IPD {ipd_agents:,} agents x 10 rounds", ipd(ipd_agents), "moves"),
        (f"donor game {donor_agents:,} agents x 2 generations, complete graph", donor(donor_agents), "donations"),
    ]


def throughput(answer: dict) -> float | None:
    if "error" in answer:
        return None
    records = answer["rows"].get("interactions") or answer["decisions"]
    return records / answer["wall_time_s"]


def measure(
    name: str,
    config: list[str],
    unit: str,
    shards: int,
    repeats: int,
    limit_gb: float,
    with_target: bool,
    out: Reporter,
) -> None:
    ratio_name = f"{name}: {shards} shards / in-process"
    inproc, sharded, startup, busy = [], [], [], []
    for _ in range(repeats):
        first = procs.probe([*config, "run.shards=0"], memory_limit_gb=limit_gb)
        if "error" in first:
            status = f"failed in-process: {first['error']}"
            out.add(Figure(GROUP, ratio_name, None, "x", status=status))
            return
        inproc.append(throughput(first))
        busy.append(first["cpu_s"] / (first["compose_s"] + first["run_s"]))  # the CPU time counts both
        answer = procs.probe([*config, f"run.shards={shards}"])
        if "error" in answer:
            out.add(
                Figure(GROUP, f"{name}: {shards} shards / in-process", None, "x", status=f"failed: {answer['error']}")
            )
            return
        sharded.append(throughput(answer))
        startup.append(answer["setup_s"] - first["setup_s"])
    best_in, best_sharded = procs.best(inproc), procs.best(sharded)
    out.add(Figure(GROUP, f"{name}: in-process", best_in, f"{unit}/s", note=f"best of {repeats}"))
    # the in-process run already keeps cores busy (Parquet writer threads beside the stepping): no
    # number of shards can run it faster than the machine's cores over the cores it keeps busy
    cores = os.cpu_count() or 1
    out.add(Figure(
        GROUP, f"{name}: in-process, cores busy", min(busy), "cores",
        note=f"CPU time over run time, least of {repeats}; bound on any shards' speed-up here: "
        f"{cores} cores / {min(busy):.2f} = {cores / min(busy):.2f}x",
    ))  # fmt: skip
    out.add(Figure(
        GROUP, ratio_name, best_sharded / best_in, "x",
        target=Target("value", ">=", 1.6, "issue 16 item 3") if with_target else None,
        note=f"{best_sharded:,.0f} {unit}/s with {shards} shards; Ray start-up +{min(startup):.1f} s not counted",
    ))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--memory-limit-gb", type=float, default=16.0, help="address-space cap of in-process runs")
    args, out = procs.arguments(__doc__, parser)
    for name, config, unit in workloads(args.quick):
        with_target = not args.quick and args.shards == 2  # the workloads
        measure(name, config, unit, args.shards, procs.repeats_of(args), args.memory_limit_gb, with_target, out)


if __name__ == "__main__":
    main()
