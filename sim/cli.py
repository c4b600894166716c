"""The `socsim` command (also `python -m sim`): Hydra composes the config, the rest is `sim.run`.

Input errors (a bad config value, an unknown key, a broken persona file or edge list, an unreachable
server) print one line and exit with status 2, leaving no run directory behind.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from agents.graph import EdgeListError
from agents.population import PersonaFileError
from sim.config import ConfigError, hydra_error_line, to_plain, validate_config
from sim.recorder import RunDirError

USAGE_ERROR = 2


def _input_errors() -> tuple[type[BaseException], ...]:
    from sim.backends import BackendError
    from sim.executors import ShardError

    return (ConfigError, PersonaFileError, EdgeListError, RunDirError, BackendError, ShardError)


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

    from sim.run import run

    output_dir = HydraConfig.get().runtime.output_dir
    try:
        config = validate_config(to_plain(cfg))
        run_dir = run(config)
    except _input_errors() as exc:
        _remove_unused(output_dir)
        _fail(str(exc))
    except KeyboardInterrupt:
        print("socsim: interrupted; the manifest records status=failed", file=sys.stderr)
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
