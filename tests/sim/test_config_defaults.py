"""The YAML a user reads and the pydantic schema that validates it cannot drift: every key in both
(nested models included), and the same defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, TypeAdapter

from agents.graph import GraphConfig
from scenarios import names, scenario_class
from sim.backends.config import BackendConfig
from sim.config import PopulationConfig, RunOptions

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "sim" / "conf"


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def same_keys(data: dict[str, Any], model: type[BaseModel], where: str) -> None:
    """Every field of `model` is a key of `data` and the other way round, recursively into sub-models."""
    fields = model.model_fields
    assert set(data) == set(fields), f"{where}: YAML-only {sorted(set(data) - set(fields))}, schema-only " + str(
        sorted(set(fields) - set(data))
    )
    for name, info in fields.items():
        sub = info.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel) and isinstance(data[name], dict):
            same_keys(data[name], sub, f"{where}.{name}")


@pytest.mark.parametrize("name", names())
def test_scenario_yaml_lists_every_field_with_its_default(name):
    cls = scenario_class(name)
    data = _yaml(cls.config_file())
    same_keys(data, cls.Config, f"scenario {name}")
    assert cls.Config.model_validate(data) == cls.Config.model_validate({"name": name})


GRAPHS = [p for p in sorted((CONF / "graph").glob("*.yaml")) if p.stem != "edgelist"]  # no default path


@pytest.mark.parametrize("path", GRAPHS, ids=lambda p: p.stem)
def test_graph_yaml_equals_schema_defaults(path):
    data = _yaml(path)
    adapter = TypeAdapter(GraphConfig)
    parsed = adapter.validate_python(data)
    same_keys(data, type(parsed), f"graph {path.stem}")
    assert parsed == adapter.validate_python({"kind": data["kind"]})


def test_population_yaml_equals_schema_defaults():
    data = _yaml(CONF / "population" / "default.yaml")
    same_keys(data, PopulationConfig, "population")
    assert PopulationConfig.model_validate(data) == PopulationConfig()


def test_run_yaml_equals_schema_defaults():
    data = _yaml(CONF / "run" / "default.yaml")
    same_keys(data, RunOptions, "run")
    assert RunOptions.model_validate({**data, "dir": "x"}) == RunOptions(dir="x")


@pytest.mark.parametrize("path", sorted((CONF / "backend").glob("*.yaml")), ids=lambda p: p.stem)
def test_backend_yaml_lists_every_field(path):
    """Each backend kind is a preset (openai's base_url, retries): every key, valid values."""
    data = _yaml(path)
    same_keys(data, BackendConfig, f"backend {path.stem}")
    if data["kind"] == "none":
        assert BackendConfig.model_validate(data) == BackendConfig()
