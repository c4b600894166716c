"""The contract every scenario inherits (PettingZoo's seed test, Axelrod's shared player test), built-in
or installed from another package, and the pytest fixtures it needs.

Shipped with socsim so that a scenario package tests itself the same way: in its conftest.py,
`pytest_plugins = ["sim.testing"]`, then subclass `ScenarioContract` with a small, fast `overrides` list
(and `llm_overrides`, a mix with language-model agents, when the scenario asks decisions). It checks:
- determinism: identical Parquet with 0, 1 and 2 Ray shards; other rows for another seed;
- recorded schemas: every declared column with its declared type, totals matching the files;
- validation: one-line config errors for bad values and unknown keys, nothing written;
- declarations: the YAML lists every config field with the schema's default; every template binds;
- prompts: every kind of decision is rendered and asked (against the fake OpenAI-compatible server);
- several models: with the mix's language-model agents split between two models (`llm@a`, `llm@b`,
  two fake servers), each decision is asked of its agent's model and recorded with its served name;
- checkpoints: the world is plain data, and a world restored from its state mid-run continues
  exactly as the original does;
- resume: a run stopped after k steps (RunStopped, the engine's one stop mechanism, raised where a
  signal lands: after planning, while decisions are asked) and resumed from its checkpoint writes the
  same tables and totals as an uninterrupted run, with scripted and with language-model agents.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import polars as pl
import pytest
import yaml

from scenarios import scenario_class
from sim import seeding
from sim.backends.fake_server import FakeOpenAIServer
from sim.config import ConfigError, compose
from sim.prepare import prepare
from sim.recorder import full_schemas
from sim.resume import resume
from sim.run import run
from sim.runner import DecisionRunner
from sim.scheduler import StepContext, fill_decisions
from sim.stop import RunStopped

VOLATILE = ("latency_ms", "cached")  # how long an answer took and whether it came from the cache


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray runtime shared by every test that runs shards (starting one costs seconds)."""
    import ray

    started = False
    if not ray.is_initialized():
        # address="local": a fresh runtime of our own even when a cluster already runs on this machine
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
                 _node_ip_address="127.0.0.1")  # fmt: skip
        started = True
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    """A fake OpenAI-compatible server (see sim.backends.fake_server) for fault injection."""
    with FakeOpenAIServer(model="fake-model", hang_s=5.0) as server:
        yield server


def read_table(run_dir: Path, table: str) -> pl.DataFrame:
    parts = sorted((run_dir / table).glob("part-*.parquet"))
    assert parts, f"{run_dir} has no {table} parts"
    return pl.concat([pl.read_parquet(p) for p in parts])


def run_with(overrides: list[str], run_dir: Path) -> Path:
    return run(compose([*overrides, f"run.dir={run_dir}", "run.progress=false", "run.log_every=0"]))


def assert_same_rows(a: pl.DataFrame, b: pl.DataFrame, what: str = "table") -> None:
    """Same columns, and the same rows in any order (volatile columns aside)."""
    a, b = a.drop(VOLATILE, strict=False), b.drop(VOLATILE, strict=False)
    assert a.schema == b.schema, f"{what}: schemas differ"
    keys = [c for c, t in a.schema.items() if not isinstance(t, (pl.List, pl.Struct, pl.Array))]
    a, b = a.sort(keys, nulls_last=True, maintain_order=True), b.sort(keys, nulls_last=True, maintain_order=True)
    assert a.equals(b), f"{what}: rows differ ({a.height} vs {b.height} rows)"


def stop_after_planning(monkeypatch, cls, at_step: int) -> dict[str, int]:
    """Make the scenario's run stop once, at `at_step`, after planning (where a signal lands while the
    step's decisions are asked). Returns a dict that counts the stops raised."""
    original, longest, raised = cls.plan, cls.longest_prompts, {"stops": 0}
    sampling = [False]  # the context pre-check plans made-up worlds (longest_prompts): not the run's step

    def plan(self, world, step, rng):
        batches = original(self, world, step, rng)
        if step == at_step and not raised["stops"] and not sampling[0]:
            raised["stops"] += 1
            raise RunStopped("interrupted", 143, f"stopped by the test at step {step}")
        return batches

    def longest_prompts(self, world):
        sampling[0] = True
        try:
            return longest(self, world)
        finally:
            sampling[0] = False

    monkeypatch.setattr(cls, "plan", plan)
    monkeypatch.setattr(cls, "longest_prompts", longest_prompts)
    return raised


def merged(base: list[str], extra: list[str]) -> list[str]:
    """`base` with the keys `extra` sets replaced by `extra`'s values (Hydra would merge two dict values)."""
    keys = {o.split("=", 1)[0] for o in extra}
    return [o for o in base if o.split("=", 1)[0] not in keys] + list(extra)


def fake_backend(server, cache_dir: Path) -> list[str]:
    """Overrides that point a run's LLM agents at a FakeOpenAIServer."""
    return ["backend=vllm", f"backend.base_url={server.base_url}", f"backend.model={server.model}",
            f"backend.cache_dir={cache_dir}"]  # fmt: skip


def split_llm(override: str) -> str:
    """A `population.mix={llm:N,...}` override with its language-model agents split between the models
    `llm@a` and `llm@b` (other overrides unchanged)."""
    if not override.startswith("population.mix="):
        return override
    match = re.search(r"\bllm:\s*(\d+)", override)
    if match is None:
        return override
    n = int(match.group(1))
    return override.replace(match.group(0), f"llm@a: {n - n // 2}, llm@b: {n // 2}")


def asked_spec(request: dict, specs: dict) -> str:
    """Which spec a chat request asks: the JSON schema's name, or the spec with those choices."""
    schema = (request.get("response_format") or {}).get("json_schema") or {}
    if schema.get("name"):
        return schema["name"]
    choice = (request.get("structured_outputs") or {}).get("choice")
    return next(n for n, spec in specs.items() if spec.is_single_choice and list(spec.fields[0].options) == choice)


class ScenarioContract:
    overrides: ClassVar[list[str]]
    llm_overrides: ClassVar[list[str]] = []  # a small mix with llm agents (scenarios that ask decisions)
    seed: ClassVar[int] = 7
    other_seed: ClassVar[int] = 8
    stochastic: ClassVar[bool] = True
    tables: ClassVar[tuple[str, ...]] = ("interactions",)
    checkpoint_steps: ClassVar[int] = 3  # steps run before the world is saved and restored
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

    def config(self, tmp_path: Path, *extra: str):
        return compose([*self.overrides, f"seed={self.seed}", *extra, f"run.dir={tmp_path / 'unused'}"])

    # ---- determinism and records ------------------------------------------------------------------------
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
        schemas = full_schemas(scenario_class(self.scenario_name()).tables)
        for table in self.tables:
            assert read_table(runs["shards0"], table).schema == schemas[table], table
        agents = pl.read_parquet(runs["shards0"] / "agents.parquet")
        assert agents.columns[:3] == ["agent_id", "policy", "id"]

    def test_manifest_completed_with_totals_matching_files(self, runs):
        manifest = json.loads((runs["shards0"] / "manifest.json").read_text())
        assert manifest["status"] == "completed"
        assert manifest["seed"] == self.seed and manifest["scenario"] == self.scenario_name()
        assert manifest["totals"]["steps"] > 0
        for table in self.tables:
            assert manifest["totals"]["rows"][table] == read_table(runs["shards0"], table).height
        assert {"python", "numpy", "polars"} <= set(manifest["versions"])
        assert isinstance(manifest["outcome"], dict)

    # ---- validation ----------------------------------------------------------------------------------
    def test_unknown_scenario_key_is_one_line_error(self, tmp_path):
        with pytest.raises(ConfigError, match=r"^scenario\.no_such_key: unknown key"):
            compose([*self.overrides, "+scenario.no_such_key=1", f"run.dir={tmp_path / 'x'}"])
        assert not (tmp_path / "x").exists()

    def test_invalid_values_are_one_line_errors(self, tmp_path):
        for override, expected in self.invalid:
            with pytest.raises(ConfigError) as info:
                run(compose([*merged(self.overrides, override.split()), f"run.dir={tmp_path / 'x'}"]))
            message = str(info.value)
            assert expected in message and "\n" not in message, message
            assert not (tmp_path / "x").exists()

    # ---- declarations ----------------------------------------------------------------------------------
    def test_yaml_lists_every_config_field_with_its_default(self):
        cls = scenario_class(self.scenario_name())
        data = yaml.safe_load(cls.config_file().read_text())
        assert set(data) == set(cls.Config.model_fields), "the YAML and the schema name different keys"
        assert cls.Config.model_validate(data) == cls.Config.model_validate({"name": cls.name})

    def test_every_spec_has_a_template_whose_variables_are_bound(self, tmp_path):
        prepared = prepare(self.config(tmp_path))
        assert set(prepared.templates) == set(prepared.scenario.specs())
        for name, prompt in prepared.scenario.prompts.items():
            assert name in prepared.scenario.specs(), f"a prompt for {name!r}, which no spec asks"
            assert prompt.template.fields() - {"persona_text"} <= set(prompt.variables) | {
                f"persona.{c}" for c in prepared.population.columns
            }

    def test_every_kind_of_decision_is_rendered_and_asked(self, tmp_path, fake_openai):
        if not self.llm_overrides:
            pytest.skip("the scenario asks no decisions")
        overrides = merged(self.overrides, [*self.llm_overrides, *fake_backend(fake_openai, tmp_path / "c")])
        run_dir = run_with(overrides, tmp_path / "run")
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "completed"
        specs = prepare(compose([*overrides, f"run.dir={tmp_path / 'unused'}"])).scenario
        asked = {asked_spec(r, specs.specs()) for r in fake_openai.requests}
        assert asked == set(specs.specs()) == set(manifest["prompts"])
        for request in fake_openai.requests:
            assert request["messages"] and all(m["content"].strip() for m in request["messages"])

    def test_each_agent_is_asked_and_recorded_under_its_model(self, tmp_path):
        if not self.llm_overrides:
            pytest.skip("the scenario asks no decisions")
        with FakeOpenAIServer(model="model-a") as a, FakeOpenAIServer(model="model-b") as b:
            models = f"backend.models={{a: {{model: model-a, base_url: '{a.base_url}'}}, " \
                     f"b: {{model: model-b, base_url: '{b.base_url}'}}}}"  # fmt: skip
            overrides = merged(self.overrides, [*map(split_llm, self.llm_overrides), "backend=vllm", models,
                                                f"backend.cache_dir={tmp_path / 'cache'}"])  # fmt: skip
            run_dir = run_with(overrides, tmp_path / "run")
        assert {r["model"] for r in a.requests} == {"model-a"} and {r["model"] for r in b.requests} == {"model-b"}
        policies = pl.read_parquet(run_dir / "agents.parquet").select("agent_id", "policy")
        calls = read_table(run_dir, "transcripts").join(policies, on="agent_id")
        expected = pl.col("policy").replace_strict({"llm@a": "model-a", "llm@b": "model-b"}, default=None)
        assert calls.height and calls.filter(pl.col("model") != expected).is_empty()
        assert set(calls["model"]) == {"model-a", "model-b"}
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "completed" and manifest["models"] == {"llm@a": "model-a", "llm@b": "model-b"}
        for table in self.tables:
            rows = read_table(run_dir, table)
            if {"policy", "model"} <= set(rows.columns):
                decided = rows.filter(pl.col("policy").str.starts_with("llm@"))
                assert decided.filter(pl.col("model") != expected).is_empty(), table

    # ---- checkpoints ------------------------------------------------------------------------------------
    def test_world_restored_from_its_state_continues_identically(self, tmp_path):
        """Step k times, save the world as plain data, restore it into a fresh scenario, and step both to
        the end: the same rows, and the same state at every step."""
        config = self.config(tmp_path)
        original, copy = prepare(config), prepare(config)
        runner = DecisionRunner(original.decision_setup())
        ctx = StepContext(original.run_id, config.seed, original.population, "none", None)

        def step(prepared, world, t):
            batches = prepared.scenario.plan(world, t, seeding.rng(config.seed, "plan", t))
            fill_decisions(batches, ctx, t)
            decisions = runner.answer_scripted(batches)[0]
            return prepared.scenario.resolve(world, t, batches, decisions, seeding.rng(config.seed, "resolve", t))

        world, t = original.world, 0
        while t < self.checkpoint_steps and not original.scenario.done(world):
            world = step(original, world, t).world
            t += 1
        arrays, data = world.state()
        json.dumps(data)  # the non-array part is plain JSON
        restored = copy.scenario.restore({k: np.array(v) for k, v in arrays.items()}, json.loads(json.dumps(data)))
        assert restored.same_state(world)
        while not original.scenario.done(world):
            a, b = step(original, world, t), step(copy, restored, t)
            assert a.tables.keys() == b.tables.keys()
            for name in a.tables:
                assert a.tables[name].equals(b.tables[name]), f"step {t}: {name} differs after a restore"
            world, restored = a.world, b.world
            assert restored.same_state(world), f"step {t}: the restored world diverged"
            t += 1
        assert copy.scenario.done(restored)

    # ---- resume ---------------------------------------------------------------------------------------
    def _interrupt_and_resume(self, overrides: list[str], run_dir: Path, monkeypatch) -> None:
        """Stop at step k (checkpoint_steps, or the last step of a shorter run), then resume."""
        prepared = prepare(compose([*overrides, f"run.dir={run_dir}"]))
        k = min(self.checkpoint_steps, prepared.scenario.max_steps(prepared.world) - 1)
        raised = stop_after_planning(monkeypatch, scenario_class(self.scenario_name()), k)
        with pytest.raises(RunStopped):
            run_with([*overrides, "run.checkpoint_every=2"], run_dir)
        assert raised["stops"] == 1, f"the run ended before step {k}: lower checkpoint_steps"
        stopped = json.loads((run_dir / "manifest.json").read_text())
        assert stopped["status"] == "interrupted" and stopped["last_checkpoint"] == k
        assert resume(run_dir, ["run.progress=false", "run.log_every=0"]) == run_dir
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "completed" and manifest["resumed"][0]["step"] == k

    def _assert_same_run(self, resumed: Path, reference: Path) -> None:
        for table in self.tables:
            assert_same_rows(read_table(resumed, table), read_table(reference, table), table)
        a, b = (json.loads((d / "manifest.json").read_text())["totals"] for d in (resumed, reference))
        assert a["steps"] == b["steps"] and a["decisions"] == b["decisions"] and a["rows"] == b["rows"]
        assert a["llm"]["calls"] == b["llm"]["calls"] and a["llm"]["failures"] == b["llm"]["failures"]

    def test_interrupted_run_resumes_to_the_same_tables(self, runs, tmp_path, monkeypatch):
        plain = [o for o in self.overrides if not o.startswith(("seed=", "run.shards="))]
        run_dir = tmp_path / "stopped"
        self._interrupt_and_resume([*plain, f"seed={self.seed}", "run.shards=0"], run_dir, monkeypatch)
        self._assert_same_run(run_dir, runs["shards0"])

    def test_interrupted_llm_run_resumes_to_the_same_tables(self, tmp_path, fake_openai, monkeypatch):
        """Answers come from a deterministic server (the fake answers from the request's seed); the
        stopped run has a cache of its own, so the resumed steps are asked again, not replayed."""
        if not self.llm_overrides:
            pytest.skip("the scenario asks no decisions")
        base = merged(self.overrides, [*self.llm_overrides, f"seed={self.seed}"])
        reference = run_with([*base, *fake_backend(fake_openai, tmp_path / "cache-a")], tmp_path / "reference")
        run_dir = tmp_path / "stopped"
        self._interrupt_and_resume([*base, *fake_backend(fake_openai, tmp_path / "cache-b")], run_dir, monkeypatch)
        self._assert_same_run(run_dir, reference)
