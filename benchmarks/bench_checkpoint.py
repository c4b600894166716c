"""Checkpoint and resume costs (issue 11 item 6): checkpoint size and time, and resume time, for a
1,000,000-agent scripted donor game and a 100,000-agent value-diffusion run, as a share of step time.

Through the `socsim` and `socsim-resume` commands, for the suite (run_all.py); bench_checkpoint_costs.py
breaks a checkpoint down (step loop and writer thread, the automatic cadence, the parts of a resume).
- step time: the run without checkpoints (`CHECKPOINTS_OFF`), manifest `wall_time_s` / steps;
- checkpoint time: the extra stepping time per checkpoint with a checkpoint every step
  (`CHECKPOINTS_EVERY_STEP`), as a share of a step;
- checkpoint size: the bytes under the run directory in paths that name a checkpoint (one checkpoint
  kept, `run.keep_checkpoints=last`);
- resume time: a command-line run stopped with SIGTERM about half-way (after its first checkpoint), then
  `socsim-resume RUN_DIR` timed whole, minus the remaining steps at the undisturbed step time.
The settings and file patterns are issue 11's, each in one constant below.

    python benchmarks/bench_checkpoint.py [--quick] [--json FILE]
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import procs
from figures import NOT_AVAILABLE, Figure, Reporter

GROUP = "Checkpoints (issue 11)"
CHECKPOINTS_OFF = ["run.checkpoint_every=1000000000"]
CHECKPOINTS_EVERY_STEP = ["run.checkpoint_every=1", "run.keep_checkpoints=last"]
CHECKPOINT_MARK = "checkpoint"  # a path under the run directory naming this is part of a checkpoint
RESUME_COMMAND = "socsim-resume"


def workloads(quick: bool) -> list[tuple[str, list[str]]]:
    """The socsim side (the one place to change when scenario names change)."""
    donors, values = (100_000, 20_000) if quick else (1_000_000, 100_000)
    return [
        (f"donor game {donors:,} agents, scripted", [
            "scenario=donor_game", "scenario.agents_per_generation=null", f"population.size={donors}",
            "scenario.generations=1", "scenario.rounds=6", "seed=1",
        ]),
        (f"value diffusion (Deffuant) {values:,} agents, Watts-Strogatz", [
            "scenario=deffuant", "graph=watts_strogatz",
            f"population.size={values}", "scenario.max_steps=20", "scenario.tolerance=1e-12", "seed=1",
        ]),
    ]  # fmt: skip


FIGURES = ("checkpoint size", "checkpoint time / step time", "resume time / step time")


def available(config: list[str]) -> str:
    """Empty when checkpoints can be configured; otherwise why not."""
    answer = procs.probe([*config, *CHECKPOINTS_EVERY_STEP], compose_only=True)
    if "error" in answer:
        reason = answer["error"].removeprefix("ConfigError: ").split(" (")[0]
        return f"{NOT_AVAILABLE} ({reason})"
    resume = Path(procs.PROJECT_PYTHON).parent / RESUME_COMMAND
    if not resume.exists():
        return f"{NOT_AVAILABLE} (no {RESUME_COMMAND} command)"
    return ""


def checkpoint_bytes(run_dir: Path) -> int:
    return sum(
        p.stat().st_size for p in run_dir.rglob("*") if p.is_file() and CHECKPOINT_MARK in str(p.relative_to(run_dir))
    )


def interrupted_run(config: list[str], run_dir: Path, stepping_s: float) -> dict:
    """Start the `socsim` command with a checkpoint every step; once its first checkpoint is on disk,
    let it step for `stepping_s` more, send SIGTERM, and return its manifest."""
    argv = [procs.socsim_cli(), *config, *CHECKPOINTS_EVERY_STEP, "run.progress=false", f"run.dir={run_dir}"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 3600
    while proc.poll() is None and time.monotonic() < deadline:
        if run_dir.exists() and checkpoint_bytes(run_dir):
            time.sleep(stepping_s)
            os.killpg(proc.pid, signal.SIGTERM)
            break
        time.sleep(0.1)
    try:
        proc.wait(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return _manifest(run_dir)


def _manifest(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}


def measure(name: str, config: list[str], out: Reporter) -> None:
    why_not = available(config)
    if why_not:
        for figure in FIGURES:
            out.add(Figure(GROUP, f"{name}: {figure}", None, "", status=why_not))
        return
    plain = procs.probe([*config, *CHECKPOINTS_OFF])
    with tempfile.TemporaryDirectory(prefix="bench-checkpoint-") as tmp:
        every = procs.probe([*config, *CHECKPOINTS_EVERY_STEP], run_dir=Path(tmp) / "every")
        failed = plain.get("error") or every.get("error")
        if failed:
            for figure in FIGURES:
                out.add(Figure(GROUP, f"{name}: {figure}", None, "", status=f"failed: {failed}"))
            return
        step_s = plain["wall_time_s"] / plain["steps"]
        size_mb = checkpoint_bytes(Path(tmp) / "every") / 1e6
        checkpoint_s = every["wall_time_s"] / every["steps"] - step_s
        out.add(Figure(GROUP, f"{name}: checkpoint size", size_mb, "MB", note="one checkpoint (keep=last)"))
        out.add(Figure(GROUP, f"{name}: checkpoint time / step time", 100 * checkpoint_s / step_s, "%",
                       note=f"step {step_s:.3g} s, checkpoint {checkpoint_s:.3g} s"))  # fmt: skip
        run_dir = Path(tmp) / "interrupted"
        manifest = interrupted_run(config, run_dir, stepping_s=plain["wall_time_s"] / 2)
        if manifest.get("status") != "interrupted":
            out.add(Figure(GROUP, f"{name}: resume time / step time", None, "%",
                           status=f"failed: the stopped run says status={manifest.get('status')!r}"))  # fmt: skip
            return
        steps_before = (manifest.get("totals") or {}).get("steps") or 0
        resumed = procs.run_timed([str(Path(procs.PROJECT_PYTHON).parent / RESUME_COMMAND), str(run_dir)])
        after = _manifest(run_dir)
        if resumed.returncode != 0 or after.get("status") != "completed":
            out.add(Figure(GROUP, f"{name}: resume time / step time", None, "%",
                           status=f"failed: {resumed.tail()}"))  # fmt: skip
            return
        remaining = plain["steps"] - steps_before
        resume_s = resumed.wall_s - remaining * step_s
        note = f"resume {resume_s:.3g} s (whole command, imports included) for {remaining} steps left"
        out.add(Figure(GROUP, f"{name}: resume time / step time", 100 * resume_s / step_s, "%", note=note))


def main() -> None:
    args, out = procs.arguments(__doc__)
    for name, config in workloads(args.quick):
        measure(name, config, out)


if __name__ == "__main__":
    main()
