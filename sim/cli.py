"""The `socsim` command (also `python -m sim`): Hydra composes the config, the rest is `sim.run`;
and `socsim-resume` / `socsim-fork` (see sim/resume.py).

Input errors (a bad config value, an unknown key, a broken persona file or edge list, an unreachable
server) print one line and exit with status 2, leaving no run directory behind. A run that is stopped
(SIGTERM, SIGINT, a server outage, a budget) is checkpointed and exits with the stop's code (143, 130,
75, 3); one that cannot write its directory (disk full, read-only) says so in one line and exits with 1.

`socsim -m` runs a sweep with whichever Hydra launcher is configured (`hydra/launcher=joblib`,
`submitit_local`, `submitit_slurm`, `ray`); the layout and the sweep manifest are sim.sweep's. A cell
whose input is refused fails alone: the others still run, the sweep manifest records why, and socsim
ends with one line and status 2 once the sweep is over.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import hydra
from omegaconf import DictConfig, OmegaConf

from agents.graph import EdgeListError
from agents.population import PersonaFileError
from sim.config import ConfigError, hydra_error_line, to_plain, validate_config
from sim.recorder import RunDirError

USAGE_ERROR = 2
WRITE_ERROR = 1
EMPTY_RUN_DIR = "run.dir: must be a path (leave it out to write to outputs/<date>/<time>)"

# hydra/launcher=NAME -> the extra that installs its plugin.
LAUNCHER_EXTRAS = {"joblib": "joblib", "submitit_local": "slurm", "submitit_slurm": "slurm", "ray": "ray-launcher"}


def _input_errors() -> tuple[type[BaseException], ...]:
    from sim.backends import BackendError
    from sim.checkpoint import CheckpointError
    from sim.executors import ShardError
    from sim.resume import ResumeError

    return (ConfigError, PersonaFileError, EdgeListError, RunDirError, BackendError, ShardError, ResumeError,
            CheckpointError)  # fmt: skip


def _stopped(program: str, stop: BaseException, run_dir: Path | str) -> NoReturn:
    """A stopped run: say how and how to continue, exit with the stop's code."""
    code = getattr(stop, "exit_code", 130)
    if not (Path(run_dir) / "manifest.json").exists():
        print(f"{program}: {stop} before the run started; nothing was written", file=sys.stderr)
    else:
        resume_with = " ".join(["socsim-resume", str(run_dir), getattr(stop, "resume_with", "")]).strip()
        print(f"{program}: {stop}; status={getattr(stop, 'status', 'interrupted')}; continue with: {resume_with}",
              file=sys.stderr)  # fmt: skip
    sys.exit(code)


def _remove_unused(directory: Path, stop: Path) -> None:
    """Remove an output directory Hydra made for a run that never started, if it is empty, and its empty
    parents up to `stop` (only those below `stop`: Hydra made them for outputs/<date>/<time>)."""
    path = directory.resolve()
    stop = stop.resolve()
    while path != stop and path.is_dir() and not any(path.iterdir()):
        path.rmdir()
        if stop not in path.parents:
            break
        path = path.parent


def fail(message: str) -> NoReturn:
    """Bad input: one line on stderr, exit status 2."""
    print(f"socsim: error: {message}", file=sys.stderr)
    sys.exit(USAGE_ERROR)


def _run_dir(cfg: DictConfig, hydra_cfg: DictConfig, in_sweep: bool) -> Path | None:
    """Where this run writes: the cell's directory in a sweep, else run.dir, else Hydra's output dir.
    None when run.dir is given but empty."""
    from sim import sweep

    if in_sweep:
        return sweep.cell_dir(hydra_cfg)
    if OmegaConf.is_missing(cfg.run, "dir"):
        return Path(hydra_cfg.runtime.output_dir)
    return Path(str(cfg.run.dir)) if str(cfg.run.dir or "").strip() else None


@hydra.main(version_base=None, config_path="conf", config_name="config")
def _app(cfg: DictConfig) -> Path:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from sim import sweep
    from sim.run import RunWriteError, run
    from sim.stop import RunStopped

    hydra_cfg = HydraConfig.get()
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    hydra_dir = Path(hydra_cfg.runtime.output_dir)
    run_dir = _run_dir(cfg, hydra_cfg, in_sweep)
    if run_dir is None or hydra_dir.resolve() != run_dir.resolve():
        # Hydra made its output dir relative to this process's working directory, which is not the one
        # socsim was started in when a launcher runs the cell elsewhere (a Ray worker, for one).
        _remove_unused(hydra_dir, Path.cwd())
    if run_dir is None:
        fail(EMPTY_RUN_DIR)
    cfg.run.dir = str(run_dir)
    try:
        config = validate_config(to_plain(cfg))
        written = run(config)
    except _input_errors() as exc:
        _remove_unused(run_dir, sweep.sweep_dir(hydra_cfg) if in_sweep else Path.cwd())
        if in_sweep:
            raise sweep.CellInputError(str(exc)) from None
        fail(str(exc))
    except RunStopped as stop:  # checkpointed: the whole sweep stops too (a preemption)
        _remove_unused(run_dir, sweep.sweep_dir(hydra_cfg) if in_sweep else Path.cwd())
        _stopped("socsim", stop, run_dir)
    except RunWriteError as exc:
        if in_sweep:  # the cell fails alone
            raise
        print(f"socsim: error: {exc}", file=sys.stderr)
        sys.exit(WRITE_ERROR)
    except KeyboardInterrupt:  # before the run started (its own handlers turn Ctrl-C into a checkpoint)
        _remove_unused(run_dir, sweep.sweep_dir(hydra_cfg) if in_sweep else Path.cwd())
        print("socsim: interrupted before the run started; nothing was written", file=sys.stderr)
        sys.exit(130)
    except Exception:
        if in_sweep:  # the cell fails alone; its traceback goes to the cell's log, one line to sweep.json
            traceback.print_exc()
        raise
    if config.run.dry_run:  # nothing was written: remove the directory Hydra made
        _remove_unused(run_dir, sweep.sweep_dir(hydra_cfg) if in_sweep else Path.cwd())
        return written
    print(f"socsim: run written to {written}", file=sys.stderr)
    return written


def _launcher_hint(message: str) -> str:
    """Name the extra to install when a launcher's plugin is missing."""
    for name, extra in LAUNCHER_EXTRAS.items():
        if f"hydra/launcher/{name}'" in message or f"hydra_{name.split('_')[0]}_launcher" in message:
            return f"{message} (install the launcher: pip install 'socsim[{extra}]')"
    return message


def _sweep_failed(exc: BaseException) -> NoReturn:
    """A sweep ended with failed cells, or its launcher failed: close its manifest, print one line, exit."""
    from sim import sweep

    for root in sweep.open_sweeps():
        cells = sweep.read(root)["cells"]
        if not cells:  # the launcher failed before any cell started: leave nothing behind
            sweep.abandon(root)
            continue
        cells_failed = any(c["status"] == "failed" for c in cells)
        manifest = sweep.close_sweep(root, launch_error=None if cells_failed else _one_line(exc))
        where = f"see {root / sweep.MANIFEST}"
        if not cells_failed:
            fail(f"sweep {root}: the launcher failed: {_launcher_hint(_one_line(exc))}; {where}")
        failed = [c for c in manifest["cells"] if c["status"] == "failed"]
        first = failed[0]
        print(
            f"socsim: error: sweep {root}: {len(failed)} of {len(manifest['cells'])} cells failed "
            f"(first: {first['name'] or first['num']}: {first['error']}); {where}",
            file=sys.stderr,
        )
        sys.exit(USAGE_ERROR if all(c["input_error"] for c in failed) else 1)
    fail(_launcher_hint(_one_line(exc)))


def _one_line(exc: BaseException) -> str:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from sim.sweep import error_line

    return hydra_error_line(exc) if isinstance(exc, (HydraException, OmegaConfBaseException)) else error_line(exc)


def main() -> None:
    """Entry point: Hydra raises its own composition errors to us (HYDRA_FULL_ERROR) so we can
    print them in one line with the usage status, instead of Hydra's multi-line report."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from scenarios.registry import register_configs
    from sim import sweep

    register_configs()
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    # sim/conf/hydra/launcher/ray.yaml replaces hydra-ray-launcher's defaults on purpose; Hydra 1.3 merges it
    # onto the plugin's schema of the same name and warns that a later Hydra will stop doing so (it need not).
    warnings.filterwarnings(
        "ignore", message=r"\s*'hydra/launcher/ray' is validated against ConfigStore schema", category=UserWarning
    )
    try:
        _app()
    except (KeyboardInterrupt, SystemExit) as exc:
        interrupted = isinstance(exc, KeyboardInterrupt) or exc.code == 130
        for root in sweep.open_sweeps():  # a cell or the launcher was interrupted: the sweep is over
            sweep.close_sweep(root, launch_error="interrupted" if interrupted else f"exit status {exc.code}")
        if isinstance(exc, KeyboardInterrupt):
            print("socsim: interrupted", file=sys.stderr)
            sys.exit(130)
        raise
    except Exception as exc:
        if sweep.open_sweeps():
            _sweep_failed(exc)
        if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC):
            fail(f"run.dir: {exc.filename} cannot be written ({exc.strerror})")  # Hydra could not create it
        if isinstance(exc, (HydraException, OmegaConfBaseException)):
            line = hydra_error_line(exc)
            if "Incompatible value 'None'" in line and "(hydra.run.dir)" in line:  # run.dir=null
                fail(EMPTY_RUN_DIR)
            fail(_launcher_hint(line))
        raise


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
