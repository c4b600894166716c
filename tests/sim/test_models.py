"""Several models in one population (`backend.models`, policies `llm@<key>`): each decision goes to
its model's endpoint under its served name and is recorded with it; the cache keeps models apart;
analysis splits by model; a mix naming no configured model is one line before any server is asked.

Two fake servers stand for two models with opposite behaviour (one always plays J, one always F),
so the records show which server answered each decision."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from analysis.cooperation import cooperation_rate
from analysis.load import load
from analysis.metrics import metric
from analysis.models import model_usage
from analysis.report import build_report
from sim.backends.config import BackendConfig
from sim.backends.fake_server import FakeOpenAIServer
from sim.config import ConfigError
from sim.preflight import CALIBRATION_DECISIONS
from sim.prepare import check_models, mix_policies
from sim.testing import assert_same_rows, merged, read_table, run_with
from tests.backends.e2e import socsim

DEAD_URL = "http://127.0.0.1:9/v1"  # nothing listens there
AGENTS = 6  # complete graph: 15 matches, both players, every round
ROUNDS = 3


@pytest.fixture
def two_models() -> Iterator[tuple[FakeOpenAIServer, FakeOpenAIServer]]:
    """A model that always cooperates (first option, J) and one that always defects (F)."""
    with FakeOpenAIServer(model="coop-model") as coop, FakeOpenAIServer(model="defect-model") as defect:
        coop.always, defect.always = 0, 1
        yield coop, defect


def models_override(coop_url: str, defect_url: str) -> str:
    return (
        f"backend.models={{coop: {{model: coop-model, base_url: '{coop_url}'}}, "
        f"defect: {{model: defect-model, base_url: '{defect_url}'}}}}"
    )


def overrides(coop: FakeOpenAIServer, defect: FakeOpenAIServer, cache: Path, *extra: str) -> list[str]:
    return [
        "scenario=ipd", "scenario.option_order=fixed", f"scenario.rounds={ROUNDS}", f"population.size={AGENTS}",
        "population.mix={llm@coop: 3, llm@defect: 2, tit_for_tat: 1}", "seed=3", "backend=vllm",
        f"backend.cache_dir={cache}", models_override(coop.base_url, defect.base_url), *extra,
    ]  # fmt: skip


def test_each_decision_goes_to_its_model_and_records_it(two_models, tmp_path):
    coop, defect = two_models
    run_dir = run_with(overrides(coop, defect, tmp_path / "cache"), tmp_path / "run")
    rows = read_table(run_dir, "interactions")
    by_policy = rows.group_by("policy").agg(pl.col("model").unique(), pl.col("action").unique(), pl.len())
    found = {r["policy"]: (r["model"], sorted(r["action"]), r["len"]) for r in by_policy.iter_rows(named=True)}
    llm_rows = {"llm@coop": 3 * (AGENTS - 1) * ROUNDS, "llm@defect": 2 * (AGENTS - 1) * ROUNDS}
    assert found["llm@coop"] == (["coop-model"], ["J"], llm_rows["llm@coop"])
    assert found["llm@defect"] == (["defect-model"], ["F"], llm_rows["llm@defect"])
    assert found["tit_for_tat"][0] == [None]  # scripted agents: no model
    assert {r["model"] for r in coop.requests} == {"coop-model"}  # routed by model, never crossed
    assert {r["model"] for r in defect.requests} == {"defect-model"}

    transcripts = read_table(run_dir, "transcripts")
    agents = pl.read_parquet(run_dir / "agents.parquet").select("agent_id", "policy")
    joined = transcripts.join(agents, on="agent_id")
    assert joined.group_by("policy", "model").len().sort("policy").rows() == [
        ("llm@coop", "coop-model", llm_rows["llm@coop"]),
        ("llm@defect", "defect-model", llm_rows["llm@defect"]),
    ]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["models"] == {"llm@coop": "coop-model", "llm@defect": "defect-model"}
    llm = manifest["totals"]["llm"]
    assert llm["calls"] == sum(llm_rows.values()) and llm["failures"] == {}
    assert llm["prompt_tokens"] == rows["prompt_tokens"].sum()
    # every HTTP request either server saw is counted once (the pre-flight's sample included)
    assert llm["http_requests"] == len(coop.requests) + len(defect.requests)
    assert set(manifest["context"]) == {"coop", "defect"}  # each model's context checked


def test_analysis_splits_cooperation_by_model(two_models, tmp_path):
    coop, defect = two_models
    run_dir = run_with(overrides(coop, defect, tmp_path / "cache"), tmp_path / "run")
    runs = load(run_dir)
    by_model = cooperation_rate(runs.interactions, by=["model"]).filter(pl.col("model").is_not_null())
    assert dict(by_model.select("model", "cooperation").rows()) == {"coop-model": 1.0, "defect-model": 0.0}
    by_policy = cooperation_rate(runs.interactions, by=["policy"])
    assert dict(by_policy.select("policy", "cooperation").rows())["llm@defect"] == 0.0
    registered = metric(runs, "cooperation").group_by("policy").agg(pl.col("cooperation").mean())
    assert {k: v for k, v in registered.rows() if k.startswith("llm")} == {"llm@coop": 1.0, "llm@defect": 0.0}
    usage = model_usage(runs.transcripts)
    assert usage.select("model", "calls", "missing_share").rows() == [
        ("coop-model", 3 * (AGENTS - 1) * ROUNDS, 0.0), ("defect-model", 2 * (AGENTS - 1) * ROUNDS, 0.0),
    ]  # fmt: skip
    page = build_report(run_dir)
    section = page.split("<h2>Language models</h2>", 1)[1].split("<h2>", 1)[0]
    assert "coop-model" in section and "defect-model" in section


def test_same_seed_same_models_for_0_and_2_shards(two_models, tmp_path, ray_session):
    coop, defect = two_models
    one = run_with(overrides(coop, defect, tmp_path / "cache0"), tmp_path / "zero")
    two = run_with(overrides(coop, defect, tmp_path / "cache2", "run.shards=2"), tmp_path / "two")  # asked anew
    agents = [pl.read_parquet(run / "agents.parquet") for run in (one, two)]
    assert agents[0].equals(agents[1])  # the same agents get the same models
    for table in ("interactions", "transcripts"):
        assert_same_rows(read_table(one, table), read_table(two, table), table)


def test_replay_from_the_cache_gives_identical_parquet(two_models, tmp_path):
    coop, defect = two_models
    cache = tmp_path / "cache"
    live = run_with(overrides(coop, defect, cache), tmp_path / "live")
    replay = run_with(
        [*overrides(coop, defect, cache), models_override(DEAD_URL, DEAD_URL), "backend.mode=replay"],
        tmp_path / "replay",
    )
    assert_same_rows(read_table(live, "interactions"), read_table(replay, "interactions"), "interactions")
    replayed = read_table(replay, "transcripts")
    assert replayed["cached"].all() and (replayed["attempts"] == 0).all()  # no HTTP at all
    assert_same_rows(read_table(live, "transcripts").drop("attempts"), replayed.drop("attempts"), "transcripts")


def test_the_same_prompts_to_another_model_are_not_answered_from_its_cache(two_models, tmp_path):
    coop, defect = two_models
    cache = tmp_path / "cache"
    first = run_with(merged(overrides(coop, defect, cache), ["population.mix={llm@coop: 6}"]), tmp_path / "first")
    asked = len(coop.requests)
    again = run_with(merged(overrides(coop, defect, cache), ["population.mix={llm@defect: 6}"]), tmp_path / "again")
    a, b = read_table(first, "transcripts"), read_table(again, "transcripts")
    a0, b0 = (t.filter(pl.col("step") == 0).sort("agent_id", "seed") for t in (a, b))  # later: other histories
    assert a0.select("agent_id", "seed", "messages").equals(b0.select("agent_id", "seed", "messages"))
    # same prompts, seeds and settings, yet every decision was asked of the other model (the cached
    # ones are the pre-flight's sample, asked before the run, in each run alike)
    assert len(defect.requests) == b.height and b["cached"].sum() == a["cached"].sum() <= CALIBRATION_DECISIONS
    assert len(coop.requests) == asked and set(b["action"]) == {'{"move": "F"}'}


def test_plain_llm_and_a_named_model_in_one_population(two_models, tmp_path):
    coop, defect = two_models
    only_coop = "backend.models={coop: {model: coop-model, base_url: '" + coop.base_url + "'}}"
    run_dir = run_with(
        merged(overrides(coop, defect, tmp_path / "cache"), [f"backend.base_url={defect.base_url}",
               "backend.model=defect-model", only_coop, "population.mix={llm: 3, llm@coop: 3}"]),
        tmp_path / "run",
    )  # fmt: skip
    rows = read_table(run_dir, "interactions")
    assert dict(rows.group_by("policy").agg(pl.col("model").first()).rows()) == {
        "llm": "defect-model", "llm@coop": "coop-model",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["population.mix={llm@coop: 3, llm@gpt-x: 3}"],
         "population.mix: 'llm@gpt-x' names no model of backend.models (choose from: llm@coop, llm@defect)"),
        (["population.mix={llm: 6}"], "population.mix: plain 'llm' needs backend.model"),
        (["backend.models={a: {model: same}, b: {model: same}}", "population.mix={llm@a: 6}"],
         "backend.models.b.model: served name 'same' is already backend.models.a's"),
        (["backend.models={a@b: {model: x}}", "population.mix={llm: 6}"], "backend.models: key 'a@b' must be"),
    ],
)  # fmt: skip
def test_bad_models_are_one_line_before_any_server(tmp_path, extra, expected):
    dead = models_override(DEAD_URL, DEAD_URL)
    args = merged(["scenario=ipd", "population.size=6", "backend=vllm", dead, f"run.dir={tmp_path / 'run'}"], extra)
    result = socsim(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written (and no server was needed to say so)


def test_a_mix_by_group_is_checked_for_models_too():
    mix = {"left": {"llm@a": 0.5, "tit_for_tat": 0.5}, "*": {"llm@zz": 1.0}}
    assert mix_policies(mix) == ["llm@a", "tit_for_tat", "llm@zz"]
    backend = BackendConfig(kind="vllm", base_url=DEAD_URL, models={"a": {}})
    with pytest.raises(ConfigError, match=r"'llm@zz' names no model of backend\.models \(choose from: llm@a\)"):
        check_models(mix_policies(mix), backend)


def test_models_served_by_one_server_share_its_concurrency(tmp_path):
    """Two names on one server: together they keep to backend.max_concurrency there (each alone would
    fill it: 2 + 2 in flight without the shared cap)."""
    with FakeOpenAIServer(model="name-a", also=("name-b",)) as server:
        server.delay_s = 0.05  # holds requests in flight long enough to overlap
        run_with(
            ["scenario=ipd", "scenario.rounds=1", "population.size=6", "population.mix={llm@a: 3, llm@b: 3}",
             "backend=vllm", f"backend.base_url={server.base_url}", "backend.max_concurrency=2",
             "backend.models={a: {model: name-a}, b: {model: name-b}}", f"backend.cache_dir={tmp_path / 'cache'}"],
            tmp_path / "run",
        )  # fmt: skip
    assert {r["model"] for r in server.requests} == {"name-a", "name-b"}
    assert server.max_in_flight == 2
