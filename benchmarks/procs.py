"""Processes the benchmarks start: socsim runs (through `probe.py` or the `socsim` command), the peer
libraries' scripts in their own virtual environment, and the fake OpenAI server. Each is timed from
outside with its own resource usage (os.wait4), runs in its own process group and is ended by its id.

Standard library only, so the orchestrator stays light and the peer side never imports socsim.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from figures import Reporter

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PROJECT_PYTHON = sys.executable
PEER_VENV = Path(os.environ.get("SOCSIM_BENCH_PEERS", Path.home() / ".cache/socsim/bench-peers"))


@dataclass
class Finished:
    """A child process that ran to its end: what it printed and what it cost."""

    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    cpu_s: float  # user + system of the child itself (not of its own children)
    max_rss_mb: float

    def json(self) -> dict:
        """The last line of stdout that is a JSON object (the scripts' machine-readable answer)."""
        for line in reversed(self.stdout.splitlines()):
            line = line.strip()
            if line.startswith("{"):
                return json.loads(line)
        raise ValueError(f"no JSON line in the output (exit {self.returncode}): {self.tail()}")

    def tail(self, lines: int = 3) -> str:
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return " / ".join(text[-lines:])


def run_timed(
    argv: list[str], timeout_s: float = 3600, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Finished:
    """Run argv to completion in its own process group; wall time, CPU and peak RSS of that process
    (os.wait4 gives the child's own usage; its output goes through files, so nothing blocks)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdout=out, stderr=err, start_new_session=True, env={**os.environ, **(env or {})}, cwd=cwd or ROOT
        )
        timer = threading.Timer(timeout_s, _kill_group, (proc.pid,))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if wall >= timeout_s:
        stderr += f"\n(killed after {timeout_s:.0f} s)"
    cpu = usage.ru_utime + usage.ru_stime
    return Finished(proc.returncode, stdout, stderr, wall, cpu, usage.ru_maxrss / 1024)


def _kill_group(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def socsim_cli() -> str:
    """The project venv's `socsim` command (beside the interpreter running the benchmarks)."""
    found = Path(PROJECT_PYTHON).parent / "socsim"
    return str(found) if found.exists() else "socsim"


def probe(
    overrides: list[str],
    *,
    no_parquet: bool = False,
    memory_limit_gb: float | None = None,
    run_dir: Path | None = None,
    compose_only: bool = False,
    time_parts: bool = False,
    timeout_s: float = 3600,
) -> dict:
    """One socsim run through `probe.py` in a fresh process; returns its JSON answer (with `error` set
    when the run failed), the process's wall time and peak RSS seen from outside, and its stderr
    (the run's log lines, when `run.log_every` asks for them)."""
    argv = [PROJECT_PYTHON, str(HERE / "probe.py")]
    if no_parquet:
        argv.append("--no-parquet")
    if memory_limit_gb:
        argv += ["--memory-limit-gb", str(memory_limit_gb)]
    if run_dir:
        argv += ["--run-dir", str(run_dir)]
    if compose_only:
        argv.append("--compose-only")
    if time_parts:
        argv.append("--time-parts")
    done = run_timed([*argv, "--", *overrides], timeout_s=timeout_s)
    try:
        answer = done.json()
    except ValueError:
        answer = {"error": done.tail() or f"exit status {done.returncode}"}
    answer["process_wall_s"] = done.wall_s
    answer["process_max_rss_mb"] = done.max_rss_mb
    answer["stderr"] = done.stderr
    return answer


def peer_python() -> Path | None:
    python = PEER_VENV / "bin" / "python"
    return python if python.exists() else None


def peer_has(module: str) -> bool:
    python = peer_python()
    if python is None:
        return False
    return subprocess.run([str(python), "-c", f"import {module}"], capture_output=True).returncode == 0


def run_peer(script: str, args: list[str], timeout_s: float = 3600) -> tuple[dict, Finished]:
    """A script from benchmarks/peers/ under the peer venv's interpreter; its JSON answer and costs."""
    python = peer_python()
    if python is None:
        raise FileNotFoundError(f"no peer environment at {PEER_VENV} (run: bash benchmarks/peers/setup.sh)")
    done = run_timed([str(python), str(HERE / "peers" / script), *args], timeout_s=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed: {done.tail()}")
    return done.json(), done


@contextmanager
def fake_server(model: str = "fake") -> Iterator[str]:
    """The project's zero-latency OpenAI-compatible server in its own process; yields its base URL."""
    proc = subprocess.Popen(
        [PROJECT_PYTHON, "-m", "sim.backends.fake_server", "--port", "0", "--model", model],
        stdout=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def self_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best(values: list[float], larger_is_better: bool = True) -> float | None:
    found = [v for v in values if v is not None and v == v]
    if not found:
        return None
    return max(found) if larger_is_better else min(found)


def cli_run(overrides: list[str], run_dir: Path, timeout_s: float = 3600) -> tuple[Finished, dict]:
    """The `socsim` command as a user types it, timed whole (imports and all); returns the process
    costs and the run's manifest (empty when the run failed)."""
    argv = [socsim_cli(), *overrides, "run.progress=false", "run.log_every=0", f"run.dir={run_dir}"]
    done = run_timed(argv, timeout_s=timeout_s)
    manifest_path = run_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    return done, manifest


def arguments(doc: str, parser: argparse.ArgumentParser | None = None) -> tuple[argparse.Namespace, Reporter]:
    """A benchmark's command line: the common options (and those `parser` already has, for a benchmark
    with options of its own), and the reporter its figures go to."""
    parser = parser or argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads, one repeat (minutes, not hours)")
    parser.add_argument("--repeats", type=int, help="interleaved repeats, best taken (default: 1 quick, 3 full)")
    parser.add_argument("--json", help="append the figures to this file as JSON lines (for run_all.py)")
    args = parser.parse_args()
    return args, Reporter(args.json)


def repeats_of(args: argparse.Namespace) -> int:
    return args.repeats or (1 if args.quick else 3)
