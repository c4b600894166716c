"""The contract every scenario inherits (PettingZoo's seed test, Axelrod's shared player test).

Subclass `ScenarioContract` in `tests/scenarios/test_<name>.py` with a small, fast `overrides` list.
It runs the scenario four times (0, 1 and 2 Ray shards with one seed; another seed in-process) and
checks: identical Parquet across executors, different rows for a different seed when the scenario
is stochastic, every declared column present with its declared type, a completed manifest whose
row totals match the files, and one-line config errors for bad values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import polars as pl
import pytest

from scenarios import scenario_class
from sim.config import ConfigError, compose
from sim.recorder import full_schemas
from sim.run import run


def read_table(run_dir: Path, table: str) -> pl.DataFrame:
    parts = sorted((run_dir / table).glob("part-*.parquet"))
    assert parts, f"{run_dir} has no {table} parts"
    return pl.concat([pl.read_parquet(p) for p in parts])


def run_with(overrides: list[str], run_dir: Path) -> Path:
    return run(compose([*overrides, f"run.dir={run_dir}", "run.progress=false", "run.log_every=0"]))


class ScenarioContract:
    overrides: ClassVar[list[str]]
    seed: ClassVar[int] = 7
    other_seed: ClassVar[int] = 8
    stochastic: ClassVar[bool] = True
    tables: ClassVar[tuple[str, ...]] = ("interactions",)
    # (override(s), space-separated; text the one-line error must contain)
    invalid: ClassVar[list[tuple[str, str]]] = []

    @pytest.fixture(scope="class")
    def runs(self, tmp_path_factory, ray_session) -> dict[str, Path]:
        base = tmp_path_factory.mktemp(type(self).__name__)
        plain = [o for o in self.overrides if not o.startswith(("seed=", "run.shards="))]
        variants = {
            "shards0": [f"seed={self.seed}", "run.shards=0"],
            "shards1": [f"seed={self.seed}", "run.shards=1"],
            "shards2": [f"seed={self.seed}", "run.shards=2"],
            "other_seed": [f"seed={self.other_seed}", "run.shards=0"],
        }
        return {name: run_with([*plain, *extra], base / name) for name, extra in variants.items()}

    def scenario_name(self) -> str:
        return next(o.split("=", 1)[1] for o in self.overrides if o.startswith("scenario="))

    def test_same_seed_same_parquet_for_0_1_2_shards(self, runs):
        for table in self.tables:
            reference = read_table(runs["shards0"], table)
            assert reference.height > 0, f"{table} is empty"
            for variant in ("shards1", "shards2"):
                other = read_table(runs[variant], table)
                assert reference.equals(other), f"{table} differs between shards0 and {variant}"

    def test_different_seed_changes_the_rows(self, runs):
        if not self.stochastic:
            pytest.skip("deterministic scenario")
        a = read_table(runs["shards0"], self.tables[0]).drop("run_id")
        b = read_table(runs["other_seed"], self.tables[0]).drop("run_id")
        assert not a.equals(b)

    def test_every_declared_column_with_its_type(self, runs):
        cls = scenario_class(self.scenario_name())
        config = json.loads((runs["shards0"] / "manifest.json").read_text())["config"]["scenario"]
        schemas = full_schemas(cls(cls.Config.model_validate(config)).table_schemas())
        for table in self.tables:
            assert read_table(runs["shards0"], table).schema == schemas[table], table
        agents = pl.read_parquet(runs["shards0"] / "agents.parquet")
        assert agents.columns[:3] == ["agent_id", "policy", "id"]

    def test_manifest_completed_with_totals_matching_files(self, runs):
        manifest = json.loads((runs["shards0"] / "manifest.json").read_text())
        assert manifest["status"] == "completed"
        assert manifest["seed"] == self.seed
        assert manifest["totals"]["steps"] > 0
        for table in self.tables:
            assert manifest["totals"]["rows"][table] == read_table(runs["shards0"], table).height
        assert {"python", "numpy", "polars"} <= set(manifest["versions"])

    def test_unknown_scenario_key_is_one_line_error(self, tmp_path):
        with pytest.raises(ConfigError, match=r"^scenario\.no_such_key: unknown key"):
            compose([*self.overrides, "+scenario.no_such_key=1", f"run.dir={tmp_path / 'x'}"])
        assert not (tmp_path / "x").exists()

    def test_invalid_values_are_one_line_errors(self, tmp_path):
        for override, expected in self.invalid:
            with pytest.raises(ConfigError) as info:
                run(compose([*self.overrides, *override.split(), f"run.dir={tmp_path / 'x'}"]))
            message = str(info.value)
            assert expected in message and "\n" not in message, message
            assert not (tmp_path / "x").exists()
