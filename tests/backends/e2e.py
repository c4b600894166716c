"""Helpers for end-to-end runs of the `socsim` command in tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl

SOCSIM = [sys.executable, "-m", "sim"]
VOLATILE = ("latency_ms", "cached")  # differ between a live run and its replay by design


def socsim(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run the CLI in a subprocess (as a user would), with Hydra's output dir under `cwd`."""
    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    return subprocess.run(
        [*SOCSIM, *overrides, "run.progress=false"], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def interactions(run_dir: Path) -> pl.DataFrame:
    return pl.read_parquet(run_dir / "interactions" / "*.parquet").sort("step", "match_id", "actor_id")


def comparable(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop(*VOLATILE)
