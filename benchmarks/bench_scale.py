"""Scale figures of issue 16 that have no peer: per-step overhead, set-up time and peak memory, a
million-agent Deffuant step, command-line start-up, and the share of a large run spent writing Parquet.

Every run goes through socsim's public entry points in a fresh process (`probe.py`: compose + run, or
the `socsim` command). Definitions:
- per-step time: the run's stepping time (manifest `wall_time_s`) / steps.
- set-up time: the `run(config)` call minus its stepping time (population, graph, world, run directory).
- peak memory: the run process's peak RSS (imports included; their share is printed as `base`).
- a step's time in a long run: the median of the run's own per-step log lines (first and last steps
  also write state snapshots).
- imports: `python -X importtime -m sim ...` (the `socsim` command's module), summed over top-level
  imports, lazy ones included.
- Parquet share: the same run with polars' Parquet writer replaced by one that writes empty files
  (probe.py --no-parquet); share = the time (or CPU) it saves / the normal run's.
Runs that may need a lot of memory are capped (RLIMIT_AS, `--memory-limit-gb`) so that today's
O(n^2) graph fails with MemoryError instead of swapping a shared machine.

    python benchmarks/bench_scale.py [--quick] [--repeats N] [--json FILE] [--only overhead setup startup parquet]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
from pathlib import Path

import procs
from figures import Figure, Reporter, Target

GROUP = "Scale"
SECTIONS = ("overhead", "setup", "startup", "parquet")


# --- the socsim workloads (the one place to change when scenario names change) --------------------


def ipd(agents: int, rounds: int) -> list[str]:
    return ["scenario=ipd", f"population.size={agents}", f"scenario.rounds={rounds}", "seed=1"]


def donor(agents: int, generations: int = 1, rounds: int = 2) -> list[str]:
    """A scripted donor game on the default (complete) graph, every agent in one generation."""
    return [
        "scenario=donor_game", "scenario.agents_per_generation=null", f"population.size={agents}",
        f"scenario.generations={generations}", f"scenario.rounds={rounds}", "seed=1",
    ]  # fmt: skip


def deffuant_sparse(agents: int, steps: int) -> list[str]:
    """Deffuant on the default ten value dimensions (from the personas) on a Watts-Strogatz graph."""
    return [
        "scenario=deffuant", f"scenario.max_steps={steps}",
        "scenario.record_every=1000", "graph=watts_strogatz", f"population.size={agents}", "seed=1",
        "run.log_every=1",
    ]  # fmt: skip


TINY_RUN = ipd(10, 10)


# --- helpers ------------------------------------------------------------------------------------


STEP_LINE = re.compile(r"^step \d+: .* in ([0-9.]+) s", re.MULTILINE)


def failed(answer: dict) -> str:
    return f"failed: {answer['error']}" if "error" in answer else ""


def per_step_ms(answer: dict) -> float | None:
    return None if "error" in answer else 1000 * answer["wall_time_s"] / answer["steps"]


# --- sections -----------------------------------------------------------------------------------


def overhead(quick: bool, repeats: int, out: Reporter) -> None:
    """Scheduler, recorder and accounting per step with almost no work: one match of many rounds;
    then whether a step costs more late in a run than early (30 agents, 435 matches)."""
    rounds = 1000 if quick else 5000
    runs = [procs.probe(ipd(2, rounds)) for _ in range(repeats)]
    values = [per_step_ms(a) for a in runs]
    out.add(Figure(
        GROUP, f"per-step overhead, scripted IPD, 2 agents x {rounds:,} rounds", procs.best(values, False), "ms/step",
        target=Target("value", "<", 0.5, "issue 16 item 1"), status=failed(runs[0]), note=f"best of {repeats}",
    ))  # fmt: skip
    short, long_ = 250, 1000
    early = procs.best([per_step_ms(procs.probe(ipd(30, short))) for _ in range(repeats)], False)
    late = procs.best([per_step_ms(procs.probe(ipd(30, long_))) for _ in range(repeats)], False)
    growth = late / early if early and late else None
    out.add(Figure(
        GROUP, f"per-step time at {long_:,} rounds / at {short} rounds, IPD 30 agents", growth, "x",
        target=Target("value", "<=", 1.2, "issue 16 item 1: independent of the round number (20% for noise)"),
        note=f"{early:.3g} vs {late:.3g} ms/step" if growth else "", status="" if growth else "failed",
    ))  # fmt: skip


def setup_and_memory(quick: bool, out: Reporter, limit_gb: float) -> None:
    """Set-up time and peak RSS of a donor game on the complete graph, and of a million agents on a
    sparse graph; the million-agent Deffuant step with ten dimensions."""
    donors = (
        [(3_000, None, None, "")]
        if quick
        else [
            (10_000, 2.0, 1024.0, "issue 16 item 5"),
            (100_000, None, None, "issue 16 item 5: runs instead of a MemoryError"),
        ]
    )
    for agents, target_s, target_mb, item in donors:
        answer = procs.probe(donor(agents), memory_limit_gb=limit_gb)
        name = f"donor game {agents:,} agents, complete graph"
        status = failed(answer)
        base = f"base {answer.get('base_rss_mb', 0):.0f} MiB after imports; cap {limit_gb:g} GiB"
        out.add(Figure(
            GROUP, f"{name}: set-up", answer.get("setup_s"), "s", status=status,
            target=Target("value", "<", target_s, item) if target_s else None,
            note="" if status else f"{answer['edges']:,} edges in the graph (implicit when complete)",
        ))  # fmt: skip
        out.add(Figure(
            GROUP, f"{name}: peak RSS", None if status else answer["peak_rss_mb"], "MiB", status=status,
            target=Target("value", "<", target_mb, item) if target_mb else None, note=base,
        ))  # fmt: skip
    agents = 100_000 if quick else 1_000_000
    answer = procs.probe(deffuant_sparse(agents, 5), memory_limit_gb=limit_gb)
    status = failed(answer)
    name = f"Deffuant {agents:,} agents, Watts-Strogatz (k=6), 10 dimensions"
    out.add(Figure(
        GROUP, f"{name}: set-up", answer.get("setup_s"), "s", status=status,
        target=Target("value", "<", 8.0, "issue 16 item 6") if agents == 1_000_000 else None,
    ))  # fmt: skip
    out.add(Figure(
        GROUP, f"{name}: peak RSS", None if status else answer["peak_rss_mb"], "MiB", status=status,
        note=f"base {answer.get('base_rss_mb', 0):.0f} MiB after imports",
    ))  # fmt: skip
    steps = [float(s) for s in STEP_LINE.findall(answer.get("stderr", ""))]
    out.add(Figure(
        GROUP, f"{name}: one step", statistics.median(steps) if steps else None, "s", status=status,
        target=Target("value", "<", 1.0, "issue 16 item 6") if agents == 1_000_000 else None,
        note=f"median of {len(steps)} steps (10 matchings each), from the run's log",
    ))  # fmt: skip


def import_seconds(importtime_stderr: str) -> float:
    """Sum of the cumulative times of top-level imports in `python -X importtime` output."""
    total_us = 0
    for line in importtime_stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, _self, cumulative, name = re.split(r"[:|]", line, maxsplit=3)
        if cumulative.strip().isdigit() and not name.startswith("  "):
            total_us += int(cumulative)
    return total_us / 1e6


def startup(quick: bool, repeats: int, out: Reporter) -> None:
    repeats = max(repeats, 3)
    helps = [procs.run_timed([procs.socsim_cli(), "--help"]).wall_s for _ in range(repeats)]
    out.add(Figure(GROUP, "`socsim --help`, whole process", min(helps), "s", note=f"best of {repeats}"))
    walls, imports = [], []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        for i in range(repeats):
            done, manifest = procs.cli_run(TINY_RUN, Path(tmp) / f"cli{i}")
            if manifest.get("status") == "completed":
                walls.append(done.wall_s)
            timed = procs.run_timed(
                [procs.PROJECT_PYTHON, "-X", "importtime", "-m", "sim", *TINY_RUN, "run.progress=false",
                 "run.log_every=0", f"run.dir={Path(tmp) / f'imp{i}'}"]
            )  # fmt: skip
            imports.append(import_seconds(timed.stderr))
    help_imports = import_seconds(
        procs.run_timed([procs.PROJECT_PYTHON, "-X", "importtime", "-m", "sim", "--help"]).stderr
    )
    out.add(Figure(GROUP, "`socsim` 10-agent IPD run, whole process", procs.best(walls, False), "s",
                   note=f"best of {repeats}"))  # fmt: skip
    out.add(Figure(
        GROUP, "imports of a 10-agent run (python -X importtime -m sim)", procs.best(imports, False), "s",
        target=Target("value", "<", 0.8, "issue 16 item 7"),
        note=f"best of {repeats}; --help imports {help_imports:.2f} s",
    ))  # fmt: skip


def parquet_share(quick: bool, repeats: int, out: Reporter) -> None:
    agents = 300 if quick else 1000
    config = ipd(agents, 10)
    normal, bare = [], []
    calls = 0
    for _ in range(repeats):
        normal.append(procs.probe(config))
        bare.append(procs.probe(config, no_parquet=True))
        calls = bare[-1].get("parquet_parts_replaced", 0)  # the parts, not only agents and graph
    status = failed(normal[0]) or failed(bare[0])
    if not status and not calls:
        status = "not measured: the recorder's parts were not written through the writers probe.py replaces"
    best_normal = min(normal, key=lambda a: a.get("run_s", float("inf")))
    best_bare = min(bare, key=lambda a: a.get("run_s", float("inf")))
    name = f"Parquet writing, scripted IPD {agents:,} agents x 10 rounds"
    if status:
        out.add(Figure(GROUP, f"{name}: share of run time", None, "%", status=status))
        return
    rows = best_normal["rows"]["interactions"]
    time_share = 100 * (best_normal["run_s"] - best_bare["run_s"]) / best_normal["run_s"]
    cpu_share = 100 * (best_normal["cpu_s"] - best_bare["cpu_s"]) / best_normal["cpu_s"]
    note = (f"{rows:,} rows, {best_normal['parquet_mb']:.0f} MB; run {best_normal['run_s']:.2f} s with, "
            f"{best_bare['run_s']:.2f} s without Parquet; best of {repeats}")  # fmt: skip
    out.add(Figure(GROUP, f"{name}: share of run time", time_share, "%", note=note))
    out.add(Figure(GROUP, f"{name}: share of CPU time", cpu_share, "%",
                   note=f"CPU {best_normal['cpu_s']:.2f} s with, {best_bare['cpu_s']:.2f} s without"))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--memory-limit-gb", type=float, default=16.0, help="address-space cap of big runs")
    args, out = procs.arguments(__doc__, parser)
    repeats = procs.repeats_of(args)
    if "overhead" in args.only:
        overhead(args.quick, repeats, out)
    if "setup" in args.only:
        setup_and_memory(args.quick, out, args.memory_limit_gb)
    if "startup" in args.only:
        startup(args.quick, repeats, out)
    if "parquet" in args.only:
        parquet_share(args.quick, repeats, out)


if __name__ == "__main__":
    main()
