"""Scenarios: one module per game or dynamic (config, world, rules, specs, prompts, strategies, tables,
metrics) with its YAML beside it. Installed scenarios are found through entry points
(`scenarios.registry`); the interfaces are in `scenarios.base`.

Attributes load on first use, so `scenarios.tables` (what analysis needs to read records) stays light."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BaseScenario": "scenarios.base",
    "Metric": "scenarios.base",
    "ScenarioConfig": "scenarios.base",
    "ScriptedPolicy": "scenarios.base",
    "StepResult": "scenarios.base",
    "World": "scenarios.world",
    "names": "scenarios.registry",
    "scenario_class": "scenarios.registry",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'scenarios' has no attribute {name!r}")
