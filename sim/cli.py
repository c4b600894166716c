"""The `socsim` command (also `python -m sim`): Hydra composes the config, the rest is `sim.run`;
and `socsim-resume` / `socsim-fork` (see sim/resume.py).

Input errors (a bad config value, an unknown key, a broken persona file or edge list, an unreachable
server) print one line and exit with status 2, leaving no run directory behind. A run that is stopped
(SIGTERM, SIGINT, a server outage, a budget) is checkpointed and exits with the stop's code (143, 130,
75, 3); one that cannot write its directory (disk full, read-only) says so in one line and exits with 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from omegaconf import DictConfig

from agents.graph import EdgeListError
from agents.population import PersonaFileError
from sim.config import ConfigError, hydra_error_line, to_plain, validate_config
from sim.recorder import RunDirError

USAGE_ERROR = 2
WRITE_ERROR = 1


def _input_errors() -> tuple[type[BaseException], ...]:
    from sim.backends import BackendError
    from sim.checkpoint import CheckpointError
    from sim.executors import ShardError
    from sim.resume import ResumeError

    return (ConfigError, PersonaFileError, EdgeListError, RunDirError, BackendError, ShardError, ResumeError,
            CheckpointError)  # fmt: skip


def _stopped(program: str, stop: BaseException, run_dir: Path | str) -> None:
    """A stopped run: say how and how to continue, exit with the stop's code."""
    code = getattr(stop, "exit_code", 130)
    if not (Path(run_dir) / "manifest.json").exists():
        print(f"{program}: {stop} before the run started; nothing was written", file=sys.stderr)
    else:
        print(f"{program}: {stop}; status={getattr(stop, 'status', 'interrupted')}; continue with: socsim-resume "
              f"{run_dir}", file=sys.stderr)  # fmt: skip
    sys.exit(code)


def _remove_unused(directory: str) -> None:
    """Remove the output directory Hydra made for a run that never started (and its empty parents)."""
    path, stop = Path(directory).resolve(), Path.cwd().resolve()
    while path != stop and stop in path.parents and path.is_dir() and not any(path.iterdir()):
        path.rmdir()
        path = path.parent


def _fail(message: str) -> None:
    print(f"socsim: error: {message}", file=sys.stderr)
    sys.exit(USAGE_ERROR)


@hydra.main(version_base=None, config_path="conf", config_name="config")
def _app(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from sim.run import RunWriteError, run
    from sim.stop import RunStopped

    output_dir = HydraConfig.get().runtime.output_dir
    config = None
    try:
        config = validate_config(to_plain(cfg))
        run_dir = run(config)
    except _input_errors() as exc:
        _remove_unused(output_dir)
        _fail(str(exc))
    except RunStopped as stop:
        _remove_unused(output_dir)  # stopped before it started: nothing to continue
        _stopped("socsim", stop, config.run.dir if config else output_dir)
    except RunWriteError as exc:
        print(f"socsim: error: {exc}", file=sys.stderr)
        sys.exit(WRITE_ERROR)
    except KeyboardInterrupt:  # before the run started (its own handlers turn Ctrl-C into a checkpoint)
        _remove_unused(output_dir)
        print("socsim: interrupted before the run started; nothing was written", file=sys.stderr)
        sys.exit(130)
    if config.run.dry_run:
        _remove_unused(output_dir)
        return
    print(f"socsim: run written to {run_dir}", file=sys.stderr)


def main() -> None:
    """Entry point: Hydra raises its own composition errors to us (HYDRA_FULL_ERROR) so we can
    print them in one line with the usage status, instead of Hydra's multi-line report."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from scenarios.registry import register_configs

    register_configs()
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        _app()
    except (HydraException, OmegaConfBaseException) as exc:
        _fail(hydra_error_line(exc))


def _continue(program: str, action: Callable[[], Path | None], run_dir: Path) -> None:
    from scenarios.registry import register_configs
    from sim.run import RunWriteError
    from sim.stop import RunStopped

    register_configs()
    try:
        done = action()
    except _input_errors() as exc:
        print(f"{program}: error: {exc}", file=sys.stderr)
        sys.exit(USAGE_ERROR)
    except RunStopped as stop:
        _stopped(program, stop, run_dir)
    except RunWriteError as exc:
        print(f"{program}: error: {exc}", file=sys.stderr)
        sys.exit(WRITE_ERROR)
    except KeyboardInterrupt:
        print(f"{program}: interrupted before the run continued; nothing was changed", file=sys.stderr)
        sys.exit(130)
    if done is None:
        print(f"{program}: {run_dir} has already completed; nothing to do", file=sys.stderr)
    else:
        print(f"{program}: run written to {done}", file=sys.stderr)


def resume_main(argv: list[str] | None = None) -> None:
    """`socsim-resume RUN_DIR [key=value ...]`: continue a crashed, interrupted or failed run."""
    from sim.resume import resume

    parser = argparse.ArgumentParser(
        prog="socsim-resume",
        description="Continue a crashed, interrupted or failed run from its last checkpoint. Only execution "
        "keys may be overridden (run.shards, run.ray_address, backend.base_url, backend.endpoints, timeouts...).",
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_intermixed_args(argv)  # options and key=value items in any order
    _continue("socsim-resume", lambda: resume(args.run_dir, args.overrides), args.run_dir)


def fork_main(argv: list[str] | None = None) -> None:
    """`socsim-fork RUN_DIR --at STEP --out NEW_DIR [key=value ...]`: branch a run at a checkpoint."""
    from sim.resume import fork

    parser = argparse.ArgumentParser(
        prog="socsim-fork",
        description="Start a new run from RUN_DIR's checkpoint at STEP with changed scenario or backend "
        "parameters; its steps before STEP are copied from RUN_DIR.",
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--at", type=int, required=True, metavar="STEP", help="a checkpointed step of RUN_DIR")
    parser.add_argument("--out", type=Path, required=True, metavar="NEW_DIR", help="the fork's run directory")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_intermixed_args(argv)  # options and key=value items in any order
    if args.at < 0:
        parser.error("--at: a step is 0 or more")
    _continue("socsim-fork", lambda: fork(args.run_dir, args.at, args.out, args.overrides), args.out)
