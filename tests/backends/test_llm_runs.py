"""The IPD with LLM agents end to end through the engine against a real vLLM server: valid actions
with token counts, replay from the cache with no server, one-line errors, and mixed populations
giving the same records in-process and on Ray shards."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from sim.config import compose
from sim.preflight import CALIBRATION_DECISIONS
from sim.run import run
from tests.backends.e2e import comparable, interactions, socsim

pytestmark = pytest.mark.vllm

DEAD_URL = "http://127.0.0.1:9/v1"  # nothing listens there: replay must not need a server


@pytest.fixture(scope="module")
def live_run(vllm_server, tmp_path_factory) -> tuple[Path, Path]:
    """`socsim scenario=ipd 'population.mix={llm:20}' backend=vllm ...` against the real server."""
    root = tmp_path_factory.mktemp("llm-ipd")
    result = socsim(
        "scenario=ipd", "population.mix={llm:20}", *vllm_server.overrides(), "seed=1",
        "scenario.rounds=5", f"run.dir={root / 'live'}", f"backend.cache_dir={root / 'cache'}", cwd=root,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return root / "live", root / "cache"


def test_llm_run_records_valid_actions_tokens_and_no_fallbacks(live_run, vllm_server):
    run_dir, _ = live_run
    rows = interactions(run_dir)
    assert rows.height == 190 * 2 * 5  # complete graph on 20 agents, 5 rounds, both players
    assert set(rows["backend"]) == {"vllm"} and set(rows["model"]) == {vllm_server.model}
    assert set(rows["policy"]) == {"llm"} and set(rows["action"]) <= {"J", "F"}
    assert (rows["prompt_tokens"] > 0).all() and (rows["completion_tokens"] > 0).all()
    assert rows["fallback_reason"].null_count() >= 0.99 * rows.height
    assert rows["cached"].sum() <= CALIBRATION_DECISIONS  # only the pre-flight's sample comes from the cache
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert manifest["totals"]["llm"]["calls"] == rows.height
    assert manifest["totals"]["llm"]["http_requests"] >= rows.height  # every decision asked at least once
    assert manifest["server_versions"] == {vllm_server.base_url: "0.32.0"}
    assert manifest["totals"]["llm"]["prompt_tokens"] == rows["prompt_tokens"].sum()


def test_replay_with_no_server_writes_identical_interactions(live_run, vllm_server, tmp_path):
    run_dir, cache = live_run
    replay_dir = tmp_path / "replay"
    result = socsim(
        "scenario=ipd", "population.mix={llm:20}", "backend=vllm", f"backend.base_url={DEAD_URL}",
        f"backend.model={vllm_server.model}", "seed=1", "scenario.rounds=5", "backend.mode=replay",
        f"run.dir={replay_dir}", f"backend.cache_dir={cache}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    live, replay = interactions(run_dir), interactions(replay_dir)
    assert replay["cached"].all()
    assert comparable(replay).equals(comparable(live))


def test_replay_miss_and_unknown_model_fail_in_one_line(vllm_server, tmp_path):
    miss = socsim(
        "scenario=ipd", "population.size=4", "population.mix={llm:4}", "backend=vllm",
        f"backend.model={vllm_server.model}", "backend.mode=replay", f"backend.cache_dir={tmp_path / 'empty'}",
        f"run.dir={tmp_path / 'miss'}", cwd=tmp_path,
    )  # fmt: skip
    assert miss.returncode == 2
    assert miss.stderr.strip().splitlines()[-1].startswith("socsim: error: replay: no cached response")
    wrong = socsim(
        "scenario=ipd", "population.size=4", "population.mix={llm:4}", "backend=vllm",
        f"backend.base_url={vllm_server.base_url}", "backend.model=not-served", f"run.dir={tmp_path / 'w'}",
        cwd=tmp_path,
    )  # fmt: skip
    assert wrong.returncode == 2 and not (tmp_path / "w").exists()
    assert f"does not serve model 'not-served' (it serves ['{vllm_server.model}'])" in wrong.stderr


@pytest.mark.ray
def test_mixed_population_same_records_in_process_and_on_two_shards(vllm_server, ray_session, tmp_path):
    """LLM and scripted agents in one run; each run asks the server afresh (own cache)."""
    frames = {}
    for shards in (0, 2):
        config = compose([
            "scenario=ipd", "population.size=10", "population.mix={llm:6,tit_for_tat:4}", *vllm_server.overrides(),
            "seed=3", "scenario.rounds=4", f"run.shards={shards}", f"run.dir={tmp_path / f'run{shards}'}",
            f"backend.cache_dir={tmp_path / f'cache{shards}'}", "run.progress=false",
        ])  # fmt: skip
        frames[shards] = interactions(run(config))
    rows = frames[0]
    assert max(rows["cached"].sum(), frames[2]["cached"].sum()) <= CALIBRATION_DECISIONS  # the pre-flight's
    by_policy = rows.group_by("policy").agg(pl.col("backend").unique(), pl.col("prompt_tokens").min())
    backends = dict(zip(by_policy["policy"], by_policy["backend"].to_list(), strict=True))
    assert backends == {"llm": ["vllm"], "tit_for_tat": ["scripted"]}
    assert rows.filter(pl.col("policy") == "llm")["prompt_tokens"].min() > 0
    assert (
        rows.filter(pl.col("policy") == "llm")["fallback_reason"].null_count()
        >= 0.99 * rows.filter(pl.col("policy") == "llm").height
    )
    assert comparable(frames[2]).equals(comparable(rows))


def test_prompts_longer_than_the_context_stop_before_the_first_decision(vllm_server, tmp_path):
    """The IPD's last round shows the whole history: 300 rounds cannot fit the server's 2,048 tokens.
    Counted with the server's own tokenizer before step 0: one line naming the parameter, nothing written."""
    run_dir = tmp_path / "long"
    done = socsim(
        "scenario=ipd", "population.size=2", "population.mix={llm:2}", *vllm_server.overrides(),
        "scenario.rounds=300", f"run.dir={run_dir}", cwd=tmp_path,
    )  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and not run_dir.exists(), done.stderr[-2000:]
    assert lines[-1].startswith("socsim: error: scenario.rounds: the longest ipd_move prompt needs "), lines
    assert "max_model_len 2048" in lines[-1] and "lower scenario.rounds" in lines[-1]
