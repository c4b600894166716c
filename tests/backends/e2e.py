"""Helpers for end-to-end runs of the `socsim` command in tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import polars as pl

from tests import cli

VOLATILE = ("latency_ms", "cached")  # differ between a live run and its replay by design


def socsim(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run the CLI in a subprocess (as a user would), with Hydra's output dir under `cwd`."""
    return cli.socsim(*overrides, cwd=cwd, env={**os.environ, "HYDRA_FULL_ERROR": "1"}, timeout=None)


def interactions(run_dir: Path) -> pl.DataFrame:
    return pl.read_parquet(run_dir / "interactions" / "*.parquet").sort("step", "match_id", "actor_id")


def comparable(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop(*VOLATILE)
