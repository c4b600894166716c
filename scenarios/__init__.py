"""Scenarios: one module per game or dynamic, pure seeded functions, plus their default Hydra YAML."""

from __future__ import annotations

import importlib

from scenarios.base import Scenario, ScenarioConfig, SocialGraph, StepResult

# name -> "module:Class". One line per scenario; modules are imported on first use.
REGISTRY: dict[str, str] = {
    "ipd": "scenarios.ipd:IteratedGame",
    "donor_game": "scenarios.donor_game:DonorGame",
    "value_diffusion": "scenarios.value_diffusion:ValueDiffusion",
}


def scenario_class(name: str) -> type[Scenario]:
    try:
        module, cls = REGISTRY[name].split(":")
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; known: {sorted(REGISTRY)}") from None
    return getattr(importlib.import_module(module), cls)


__all__ = ["REGISTRY", "Scenario", "ScenarioConfig", "SocialGraph", "StepResult", "scenario_class"]
