"""One socsim run in this process through the public entry points (`sim.config.compose` + `sim.run.run`),
measured from inside: import time, compose time, the run's wall time, set-up time (the run minus its
stepping, which the manifest records as `wall_time_s`), CPU time and peak RSS. Prints one JSON line.

    python benchmarks/probe.py [--no-parquet] [--memory-limit-gb G] [--run-dir DIR] -- key=value ...

`--no-parquet` replaces polars' and pyarrow's Parquet writers with ones that write an empty file, for
measuring what writing Parquet costs a run (the difference to a normal run); it counts the calls it
replaced, so a recorder that stops calling them shows up as zero calls instead of a wrong figure.
`--time-parts` times each part of rows the recorder writes (`sim.parts.write_rows`, on its writer
thread): the rows, the thread's CPU time and the wall time, summed over the run's parts; and, after
the run, the CPU time of encoding the same parts again with nothing else running (`alone_cpu_s`): what
encoding the records costs by itself. It keeps the run's rows in memory until then, and imports
pyarrow.parquet before the run, as `--no-parquet` does.
`--compose-only` checks that the overrides compose and validate (e.g. whether a config key exists yet).
`--memory-limit-gb` caps the address space (RLIMIT_AS): a run that needs more fails with MemoryError
instead of pushing a shared machine into swap or the OOM killer. Not for Ray runs (Ray maps large
regions up front).
"""

from __future__ import annotations

import time

_IMPORT_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

from sim.config import compose  # noqa: E402
from sim.run import run  # noqa: E402

IMPORT_S = time.perf_counter() - _IMPORT_START


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def disable_parquet() -> dict[str, int]:
    """Make the Parquet writers the recorder uses create empty files: polars' (agents, graph, tables
    given as DataFrames) and pyarrow's (parts of rows given as columns, sim/parts.py); returns the call
    counter. pyarrow.parquet is imported here, before the run, where a normal run imports it on its
    writer thread while it sets up (about 0.1 s of CPU the comparison leaves out)."""
    import polars as pl
    import pyarrow.parquet as pq

    calls = {"write_parquet": 0, "write_table": 0}

    def touch(self: object, file: object, *args: object, **kwargs: object) -> None:
        calls["write_parquet"] += 1
        Path(str(file)).touch()

    def touch_table(table: object, where: object, *args: object, **kwargs: object) -> None:
        calls["write_table"] += 1
        Path(str(where)).touch()

    pl.DataFrame.write_parquet = touch  # type: ignore[method-assign]
    pq.write_table = touch_table
    return calls


class PartTimer:
    """Wraps the writer of parts (the recorder looks `write_rows` up in sim.parts when it writes): each
    call adds its rows, thread CPU and wall time to `sums` and keeps its rows, so that `alone()` can
    encode every part again once the run is over, with nothing else running: the encoding's own cost,
    where the figure taken during the run also holds what the steps running beside it cost it (on a
    machine whose cores share an SMT core or a memory bus, up to twice as much)."""

    def __init__(self) -> None:
        from sim import parts

        self.sums = {"parts": 0, "rows": 0, "cpu_s": 0.0, "wall_s": 0.0}
        self.written: list[tuple[list, object]] = []
        self.write_rows = parts.write_rows
        parts.write_rows = self.timed

    def timed(self, path: Path, chunks: list, schema: object) -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        self.write_rows(path, chunks, schema)
        self.sums["cpu_s"] += time.thread_time() - cpu
        self.sums["wall_s"] += time.perf_counter() - wall
        self.sums["parts"] += 1
        self.sums["rows"] += sum(chunk.height for chunk in chunks)
        self.written.append((chunks, schema))

    def alone(self) -> float:
        """CPU seconds of encoding every part again, one after the other, in this thread alone."""
        cpu = 0.0
        with tempfile.TemporaryDirectory(prefix="socsim-parts-") as tmp:
            for chunks, schema in self.written:
                start = time.thread_time()
                self.write_rows(Path(tmp) / "part.parquet", chunks, schema)
                cpu += time.thread_time() - start
        self.written.clear()
        return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-parquet", action="store_true")
    parser.add_argument("--memory-limit-gb", type=float)
    parser.add_argument("--run-dir", help="keep the run here (default: a temporary directory, removed)")
    parser.add_argument("--compose-only", action="store_true", help="only check that the overrides compose")
    parser.add_argument("--time-parts", action="store_true", help="time the writing of each part of rows")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    answer: dict = {"import_s": IMPORT_S, "base_rss_mb": rss_mb()}
    if args.memory_limit_gb:
        limit = int(args.memory_limit_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    replaced = disable_parquet() if args.no_parquet else None
    parts = PartTimer() if args.time_parts else None
    with tempfile.TemporaryDirectory(prefix="socsim-bench-") as tmp:
        run_dir = Path(args.run_dir) if args.run_dir else Path(tmp) / "run"
        overrides = ["run.progress=false", "run.log_every=0", *args.overrides, f"run.dir={run_dir}"]
        try:
            started, cpu0 = time.perf_counter(), cpu_s()
            config = compose(overrides)
            composed = time.perf_counter()
            if args.compose_only:
                print(json.dumps({"composed": True, "compose_s": composed - started}), flush=True)
                return
            run(config)
            ended = time.perf_counter()
            answer.update(compose_s=composed - started, run_s=ended - composed, cpu_s=cpu_s() - cpu0)
            manifest = json.loads((run_dir / "manifest.json").read_text())
            totals = manifest.get("totals", {})
            answer.update(
                wall_time_s=totals.get("wall_time_s"),
                setup_s=(ended - composed) - (totals.get("wall_time_s") or 0.0),
                steps=totals.get("steps"),
                rows=totals.get("rows", {}),
                decisions=sum((totals.get("decisions") or {}).values()),
                llm_calls=(totals.get("llm") or {}).get("calls", 0),
                agents=manifest.get("agents"),
                edges=manifest.get("edges"),
                status=manifest.get("status"),
                run_dir=str(run_dir),
            )
            parquet = [p for p in run_dir.rglob("*.parquet")]
            answer["parquet_mb"] = sum(p.stat().st_size for p in parquet) / 1e6
        except BaseException as exc:  # report any failure as data: the suite goes on with the next figure
            answer["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            answer["traceback"] = traceback.format_exc(limit=3)[-1500:]
        answer["peak_rss_mb"] = rss_mb()
        if replaced is not None:
            answer["parquet_calls_replaced"] = replaced["write_parquet"] + replaced["write_table"]
            answer["parquet_parts_replaced"] = replaced["write_table"]
        if parts is not None:
            answer["part_writes"] = {**parts.sums, "alone_cpu_s": parts.alone()}
    print(json.dumps(answer), flush=True)
    sys.exit(1 if "error" in answer else 0)


if __name__ == "__main__":
    main()
