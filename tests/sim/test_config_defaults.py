"""The YAML a user reads and the pydantic schema that validates it state the same defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import scenarios
from scenarios import scenario_class
from sim.config import PopulationConfig
from sim.graph import GraphConfig

ROOT = Path(__file__).resolve().parents[2]


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("name", sorted(scenarios.REGISTRY))
def test_scenario_yaml_equals_schema_defaults(name):
    cls = scenario_class(name)
    data = _yaml(ROOT / "scenarios" / "conf" / "scenario" / f"{name}.yaml")
    assert cls.Config.model_validate(data) == cls.Config.model_validate({"name": name})


GRAPHS = [p for p in sorted((ROOT / "sim" / "conf" / "graph").glob("*.yaml")) if p.stem != "edgelist"]  # no default


@pytest.mark.parametrize("path", GRAPHS, ids=lambda p: p.stem)
def test_graph_yaml_equals_schema_defaults(path):
    from pydantic import TypeAdapter

    data = _yaml(path)
    adapter = TypeAdapter(GraphConfig)
    assert adapter.validate_python(data) == adapter.validate_python({"kind": data["kind"]})


def test_population_yaml_equals_schema_defaults():
    assert (
        PopulationConfig.model_validate(_yaml(ROOT / "sim" / "conf" / "population" / "default.yaml"))
        == PopulationConfig()
    )
