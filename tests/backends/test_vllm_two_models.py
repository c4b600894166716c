"""Two models in one population on a real vLLM server: the run launches one server serving the tiny
model under two names (`--served-model-name tiny-a tiny-b`, from backend.models), asks each agent's
decisions under its model's name, records the name per decision, and replays from the cache with no
server."""

from __future__ import annotations

import json

import polars as pl
import pytest

from sim.testing import assert_same_rows, read_table, run_with

pytestmark = pytest.mark.vllm

DEAD_URL = "http://127.0.0.1:9/v1"


def test_one_server_two_served_names(vllm_python, tiny_model_dir, tmp_path):
    cache = tmp_path / "cache"
    science = [
        "scenario=ipd", "scenario.rounds=2", "population.size=4", "population.mix={llm@a: 2, llm@b: 2}", "seed=5",
        "backend=vllm", f"backend.cache_dir={cache}", "backend.models={a: {model: tiny-a}, b: {model: tiny-b}}",
    ]  # fmt: skip
    live = run_with(
        [*science, "backend.launch=true", f"backend.python={vllm_python}", f"backend.model_path={tiny_model_dir}",
         f"backend.server_dir={tmp_path}"],
        tmp_path / "live",
    )  # fmt: skip
    rows = read_table(live, "interactions")
    assert rows.height == 6 * 2 * 2  # 6 matches on 4 agents, both players, 2 rounds
    assert dict(rows.group_by("policy").agg(pl.col("model").unique().sort()).rows()) == {
        "llm@a": ["tiny-a"], "llm@b": ["tiny-b"],
    }  # fmt: skip
    assert set(rows["action"]) <= {"J", "F"} and rows["fallback_reason"].null_count() == rows.height
    manifest = json.loads((live / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["models"] == {"llm@a": "tiny-a", "llm@b": "tiny-b"}
    assert set(manifest["context"]) == {"a", "b"}  # both names served, each checked against its context
    assert manifest["totals"]["llm"]["calls"] == rows.height

    replay = run_with([*science, f"backend.base_url={DEAD_URL}", "backend.mode=replay"], tmp_path / "replay")
    assert_same_rows(read_table(live, "interactions"), read_table(replay, "interactions"), "interactions")
