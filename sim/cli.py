"""The `socsim` command (also `python -m sim`): Hydra composes the config, the rest is `sim.run`.

Input errors (a bad config value, an unknown key, a broken persona file or edge list, an unreachable
server) print one line and exit with status 2, leaving no run directory behind.

`socsim -m` runs a sweep with whichever Hydra launcher is configured (`hydra/launcher=joblib`,
`submitit_local`, `submitit_slurm`, `ray`); the layout and the sweep manifest are sim.sweep's. A cell
whose input is refused fails alone: the others still run, the sweep manifest records why, and socsim
ends with one line and status 2 once the sweep is over.
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import NoReturn

import hydra
from omegaconf import DictConfig, OmegaConf

from agents.graph import EdgeListError
from agents.population import PersonaFileError
from sim.config import ConfigError, hydra_error_line, to_plain, validate_config
from sim.recorder import RunDirError

USAGE_ERROR = 2
EMPTY_RUN_DIR = "run.dir: must be a path (leave it out to write to outputs/<date>/<time>)"

# hydra/launcher=NAME -> the extra that installs its plugin.
LAUNCHER_EXTRAS = {"joblib": "joblib", "submitit_local": "slurm", "submitit_slurm": "slurm", "ray": "ray-launcher"}


def _input_errors() -> tuple[type[BaseException], ...]:
    from sim.backends import BackendError
    from sim.executors import ShardError

    return (ConfigError, PersonaFileError, EdgeListError, RunDirError, BackendError, ShardError)


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
    from sim.run import run

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
    except KeyboardInterrupt:
        print("socsim: interrupted; the manifest records status=failed", file=sys.stderr)
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
        if isinstance(exc, (HydraException, OmegaConfBaseException)):
            line = hydra_error_line(exc)
            if "Incompatible value 'None'" in line and "(hydra.run.dir)" in line:  # run.dir=null
                fail(EMPTY_RUN_DIR)
            fail(_launcher_hint(line))
        raise
