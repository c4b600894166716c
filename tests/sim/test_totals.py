"""The manifest's totals agree with the rows: decisions by policy, LLM calls, tokens, HTTP requests."""

from __future__ import annotations

import json

import polars as pl

from sim.scheduler import Totals
from tests.contract import read_table, run_with


def test_manifest_totals_match_the_recorded_rows(tmp_path, fake_openai):
    run_dir = run_with(
        ["scenario=ipd", "population.size=6", "population.mix={llm:3,tit_for_tat:3}", "scenario.rounds=3", "seed=4",
         "backend=vllm", f"backend.base_url={fake_openai.base_url}", f"backend.model={fake_openai.model}",
         f"backend.cache_dir={tmp_path / 'cache'}"],
        tmp_path / "run",
    )  # fmt: skip
    rows = read_table(run_dir, "interactions")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    totals = manifest["totals"]
    assert manifest["server_versions"] == {fake_openai.base_url: None}  # no GET /version on the fake
    assert totals["decisions"] == dict(rows.group_by("policy").len().iter_rows())
    llm = rows.filter(pl.col("policy") == "llm")
    assert set(llm["backend"]) == {"vllm"} and set(rows.filter(pl.col("policy") != "llm")["backend"]) == {"scripted"}
    assert totals["llm"]["calls"] == llm.height > 0
    assert totals["llm"]["prompt_tokens"] == llm["prompt_tokens"].sum() > 0
    assert totals["llm"]["completion_tokens"] == llm["completion_tokens"].sum()
    # a cold cache, every reply valid: one request each, the pre-flight calibration's included; the
    # decisions it asked are answered from the cache in the run
    assert totals["llm"]["http_requests"] == llm.height
    assert totals["llm"]["failures"] == {} and totals["llm"]["http_failed"] == {}
    assert totals["llm"]["cached"] == llm["cached"].sum() == 8


def test_http_counters_read_back_from_the_manifest_totals():
    """A resume carries the earlier sessions' HTTP counts through the manifest: written, then read back."""
    counters = {"http_requests": 42, "http_failed.refused": 5, "http_failed.server_error": 2}
    assert Totals.http_counters(json.loads(json.dumps(Totals().as_dict(counters)))) == counters
    assert Totals.http_counters({}) == {"http_requests": 0}  # a crashed run wrote no totals
