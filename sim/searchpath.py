"""Puts every scenario's own YAML (`scenarios/conf`) on Hydra's search path, whatever the primary
config is: socsim's, or a user's experiment file given with --config-dir/--config-name."""

from __future__ import annotations

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.plugins import Plugins
from hydra.plugins.search_path_plugin import SearchPathPlugin


class ScenarioConfigs(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="socsim-scenarios", path="pkg://scenarios.conf")
        search_path.append(provider="socsim", path="pkg://sim.conf")


def register() -> None:
    """Idempotent: Hydra keeps one instance per plugin class."""
    Plugins.instance().register(ScenarioConfigs)
