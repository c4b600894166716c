"""Run every benchmark and write one Markdown table of figures, peer figures, ratios and targets.

    python benchmarks/run_all.py [--quick] [--repeats N] [--only ipd scale ...] [--out benchmarks/RESULTS.md]

Each benchmark runs as its own process (and is runnable alone: `python benchmarks/bench_ipd.py --help`);
its figures come back as JSON lines and end up in the table, with pass/fail against the targets of
issue 16 (and issue 11 for checkpoints). Peers (Axelrod, ndlib) come from their own environment,
made by `bash benchmarks/peers/setup.sh`; without it the table shows socsim's figures alone.
A benchmark that crashes shows as a failed row; the others still run.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import procs
from figures import Figure, markdown_report, read_figures

BENCHMARKS = {
    "ipd": ("bench_ipd.py", "IPD vs Axelrod"),
    "bounded_confidence": ("bench_bounded_confidence.py", "Bounded confidence vs ndlib"),
    "scale": ("bench_scale.py", "Scale"),
    "graphs": ("bench_graphs.py", "Graphs vs networkx"),
    "shards": ("bench_shards.py", "Ray shards"),
    "llm": ("bench_llm_scaling.py", "LLM decisions"),
    "checkpoint": ("bench_checkpoint.py", "Checkpoints (issue 11)"),
}
NOTES = [
    "Ratios are socsim over the peer on rates (more is better), so above 1 means socsim is faster.",
    "Deffuant is measured in pair updates per second (one meeting of two neighbours drawn, moved or not); "
    "HK in agent updates per second.",
    "ndlib's HKModel is timed for speed only: it is not Hegselmann-Krause (it leaves the agent itself out of "
    "the average and writes back one node per iteration, ndlib issue #263), so it is never used as a reference.",
    "Scores: every player's total over matches between two deterministic strategies is compared with "
    "Axelrod's; socsim's defect_once has no Axelrod counterpart and is left out of the IPD workloads.",
    "Quick mode shrinks some workloads; a target is attached only where the workload is the one the issue names.",
]


def run_benchmark(script: str, args: argparse.Namespace, json_path: Path) -> tuple[int, float]:
    """The benchmark as its own process group, its output streamed to ours; (exit status, seconds)."""
    argv = [procs.PROJECT_PYTHON, str(procs.HERE / script), "--json", str(json_path)]
    if args.quick:
        argv.append("--quick")
    if args.repeats:
        argv += ["--repeats", str(args.repeats)]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=procs.ROOT, start_new_session=True)
    try:
        status = proc.wait()
    except KeyboardInterrupt:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
        raise
    return status, time.perf_counter() - started


def peer_versions() -> str:
    python = procs.peer_python()
    if python is None:
        return f"not installed ({procs.PEER_VENV}; run bash benchmarks/peers/setup.sh)"
    code = (
        "from importlib.metadata import version as v\n"
        "print(', '.join(f'{d} {v(d)}' for d in ('axelrod', 'ndlib', 'networkx')))"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return done.stdout.strip() or f"unreadable ({done.stderr.strip().splitlines()[-1:]})"


def git_revision() -> str:
    done = subprocess.run(
        ["git", "-C", str(procs.ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def machine() -> str:
    memory = ""
    if Path("/proc/meminfo").exists():
        total_kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {total_kb / 2**20:.0f} GiB"
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores{memory}, Python {platform.python_version()}"
    )


def load_average() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg()) + " (1/5/15 min)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads, one repeat: a few minutes")
    parser.add_argument(
        "--repeats", type=int, help="interleaved repeats per figure, best taken (default 1 quick, 3 full)"
    )
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these benchmarks")
    parser.add_argument("--out", default=str(procs.HERE / "RESULTS.md"), help="the Markdown file to write")
    args = parser.parse_args()

    figures: list[Figure] = []
    durations: list[str] = []
    load_before = load_average()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="socsim-bench-") as tmp:
        for key in args.only or list(BENCHMARKS):
            script, group = BENCHMARKS[key]
            print(f"\n== {key} ({script}) ==", flush=True)
            json_path = Path(tmp) / f"{key}.jsonl"
            status, seconds = run_benchmark(script, args, json_path)
            found = read_figures(json_path)
            figures += found
            durations.append(f"{key} {seconds:.0f} s")
            if status != 0:
                figures.append(Figure(group, f"{script} crashed", None, "", status=f"failed: exit status {status}"))
    header = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python benchmarks/run_all.py"
        + (" --quick" if args.quick else "")
        + (f" --repeats {args.repeats}" if args.repeats else ""),
        "socsim": git_revision(),
        "machine": machine(),
        "peers": peer_versions(),
        "time": f"{time.perf_counter() - started:.0f} s ({', '.join(durations)})",
        "load average": f"{load_before} at the start, {load_average()} at the end (other work on the machine "
        "slows both sides; repeats are interleaved and the best kept)",
    }
    report = markdown_report(figures, header, NOTES)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report, encoding="utf-8")
    print("\n" + report)
    print(f"written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
