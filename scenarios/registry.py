"""Where scenarios come from: every installed package's entry points in the group `socsim.scenarios`.

socsim's own scenarios are declared the same way (pyproject.toml), so a scenario outside the repo is
no different from a built-in one: `pip install my-game` (with `my_game = "my_game:MyGame"` under
`[project.entry-points."socsim.scenarios"]` and `my_game.yaml` beside the module) makes
`socsim scenario=my_game` work. Each scenario's YAML is registered with Hydra's ConfigStore as
`scenario/<name>` without importing the scenario's module, so start-up stays cheap.
"""

from __future__ import annotations

import importlib
import importlib.util
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scenarios.base import BaseScenario

GROUP = "socsim.scenarios"


class UnknownScenarioError(KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@cache
def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        found.setdefault(ep.name, ep)  # the first distribution on sys.path wins, as for imports
    return found


def names() -> list[str]:
    """Every installed scenario's name."""
    return sorted(_entry_points())


def scenario_class(name: str) -> type[BaseScenario]:
    """The scenario class registered under `name` (imports its module)."""
    try:
        ep = _entry_points()[name]
    except KeyError:
        raise UnknownScenarioError(f"unknown scenario {name!r}; installed: {', '.join(names())}") from None
    cls = ep.load()
    if getattr(cls, "name", None) != name:
        raise UnknownScenarioError(
            f"entry point {name!r} ({ep.value}) loads a scenario named {getattr(cls, 'name', None)!r}"
        )
    return cls


def config_file(name: str) -> Path | None:
    """The YAML beside the scenario's module (found without importing the module)."""
    ep = _entry_points()[name]
    spec = importlib.util.find_spec(ep.module)
    if spec is None or spec.origin is None:
        return None
    path = yaml_beside(Path(spec.origin), name)
    return path if path.is_file() else None


def yaml_beside(module_file: Path, name: str) -> Path:
    """A module file x.py has x.yaml beside it; a package keeps <scenario name>.yaml inside."""
    if module_file.name == "__init__.py":
        return module_file.with_name(f"{name}.yaml")
    return module_file.with_suffix(".yaml")


def register_configs() -> None:
    """Put every installed scenario's YAML into Hydra's ConfigStore as `scenario/<name>` (idempotent)."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    store = ConfigStore.instance()
    for name in names():
        path = config_file(name)
        if path is not None:
            store.store(group="scenario", name=name, node=OmegaConf.load(path), provider=f"socsim:{name}")


def reload() -> None:
    """Forget the cached entry points (after installing a scenario package into a running process)."""
    _entry_points.cache_clear()
    importlib.invalidate_caches()
