"""The `socsim` command as a user runs it: a subprocess with no standard input, its output captured."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

NO_PROGRESS = ("run.progress=false",)


def socsim(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    quiet: Sequence[str] = NO_PROGRESS,
    timeout: float | None = 300,
) -> subprocess.CompletedProcess:
    """`python -m sim ARGS QUIET` in `cwd` (Hydra's outputs land there); `env` None: this process's."""
    return subprocess.run(
        [sys.executable, "-m", "sim", *args, *quiet], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
