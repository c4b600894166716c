"""Decisions a model could not give, through the whole engine against a real HTTP server with injected
faults: never a default move, `backend.on_failure` (abort, retry_step, policy:<name>), the failure
budget (a failed, resumable run), the transcripts table, true accounting, and credentials redacted."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from sim import seeding
from sim.config import compose
from sim.resume import resume
from sim.run import run
from sim.stop import RunStopped
from tests.contract import read_table

TIMING = ["latency_ms", "cached", "attempts", "run_id"]  # how an answer arrived, not what it was
BASE = ["scenario=ipd", "population.size=4", "population.mix={llm:4}", "scenario.rounds=3", "seed=5",
        "backend.max_retries=0", "backend.invalid_retries=0", "run.progress=false", "run.log_every=0"]  # fmt: skip


def backend(server, cache: Path) -> list[str]:
    return ["backend=vllm", f"backend.base_url={server.base_url}", f"backend.model={server.model}",
            f"backend.cache_dir={cache}"]  # fmt: skip


def go(server, tmp_path: Path, name: str, *extra: str) -> Path:
    return run(compose([*BASE, *backend(server, tmp_path / f"cache-{name}"), *extra, f"run.dir={tmp_path / name}"]))


def request_seed(step: int, index: int, n: int = 12) -> int:
    """The request seed of decision `index` of `step` (six matches, two players each)."""
    return int(seeding.decision_seeds(5, step, n)[index]) % 2**31


def same_rows(a: Path, b: Path, table: str = "interactions") -> bool:
    x, y = (read_table(d, table).drop([c for c in TIMING if c in read_table(d, table).columns]) for d in (a, b))
    keys = [c for c in ("step", "actor_id", "target_id") if c in x.columns]
    return x.sort(keys).equals(y.sort(keys))


@pytest.fixture
def reference(fake_openai, tmp_path) -> Path:
    return go(fake_openai, tmp_path, "reference")


def test_a_failed_decision_over_budget_fails_the_run_resumably(fake_openai, tmp_path, reference):
    fake_openai.inject(request_seed(1, 3), "500")
    with pytest.raises(RunStopped) as stopped:
        go(fake_openai, tmp_path, "run")
    assert stopped.value.status == "failed" and stopped.value.exit_code != 0
    assert "failure budget exceeded: 1 of 12 model decisions in step 1 got no answer (server_error 1" in str(
        stopped.value
    )
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "failure budget exceeded" in manifest["error"]
    assert read_table(tmp_path / "run", "interactions")["step"].unique().to_list() == [0]  # step 1 not recorded
    # the server is healthy again: resuming finishes the run with exactly the fault-free tables
    resume(tmp_path / "run")
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["status"] == "completed"
    assert same_rows(tmp_path / "run", reference)


def test_below_the_budget_a_failed_decision_is_missing_never_a_move(fake_openai, tmp_path):
    fake_openai.inject(request_seed(1, 3), "500")
    run_dir = go(fake_openai, tmp_path, "run", "backend.max_failure_rate=0.5")
    rows = read_table(run_dir, "interactions")
    lost = rows.filter(pl.col("fallback_reason").is_not_null())
    assert lost.height == 1 and lost["fallback_reason"].item() == "server_error" and lost["action"].item() is None
    voided = rows.filter((pl.col("step") == 1) & (pl.col("match_id") == lost["match_id"].item()))
    assert voided["payoff_actor"].is_null().all()  # the round is void for both players, not a default move
    transcript = read_table(run_dir, "transcripts").filter(pl.col("fallback_reason").is_not_null())
    assert transcript.height == 1 and transcript["action"].item() is None and transcript["attempts"].item() == 1
    totals = json.loads((run_dir / "manifest.json").read_text())["totals"]["llm"]
    assert totals["failures"] == {"server_error": 1} and totals["http_failed"] == {"status_500": 1}


def test_retry_step_asks_the_step_again_and_gets_the_fault_free_tables(fake_openai, tmp_path, reference):
    fake_openai.inject(request_seed(1, 3), "500")
    fake_openai.inject(request_seed(2, 7), "timeout")
    run_dir = go(fake_openai, tmp_path, "run", "backend.on_failure=retry_step", "backend.timeout_s=0.5")
    assert same_rows(run_dir, reference)
    totals = json.loads((run_dir / "manifest.json").read_text())["totals"]["llm"]
    ref = json.loads((reference / "manifest.json").read_text())["totals"]["llm"]
    assert totals["http_requests"] == ref["http_requests"] + 2  # the two failed attempts, counted where they happened
    assert totals["http_failed"] == {"status_500": 1, "timeout": 1} and totals["failures"] == {}


def test_a_scripted_stand_in_is_recorded_as_such(fake_openai, tmp_path):
    fake_openai.inject(request_seed(1, 3), "500")
    run_dir = go(fake_openai, tmp_path, "run", "backend.on_failure=policy:tit_for_tat", "backend.max_failure_rate=0.5")
    rows = read_table(run_dir, "interactions")
    stood_in = rows.filter(pl.col("stand_in").is_not_null())
    assert stood_in.height == 1 and stood_in["stand_in"].item() == "tit_for_tat"
    assert stood_in["fallback_reason"].item() == "server_error" and stood_in["action"].item() in ("J", "F")
    assert rows.filter(pl.col("stand_in").is_null())["fallback_reason"].is_null().all()


def test_transcripts_hold_every_call_as_sent_and_answered(fake_openai, tmp_path):
    run_dir = go(fake_openai, tmp_path, "run")
    transcripts = read_table(run_dir, "transcripts")
    assert transcripts.height == 36 and transcripts["fallback_reason"].is_null().all()
    sent = {r["seed"]: r for r in fake_openai.requests}
    for row in transcripts.iter_rows(named=True):
        request = sent[row["seed"] % 2**31]
        assert json.loads(row["messages"]) == request["messages"]
        assert json.loads(row["action"])["move"] == row["reply"]
        assert row["attempts"] == (0 if row["cached"] else 1)  # the pre-flight calibration's answers are cached
    quiet = go(fake_openai, tmp_path, "quiet", "run.record_transcripts=false")
    assert not (quiet / "transcripts").exists() and same_rows(quiet, run_dir)


def test_credentials_in_the_url_are_never_written(fake_openai, tmp_path, capfd):
    url = fake_openai.base_url.replace("http://", "http://socsim:hunter2@")
    run_dir = run(compose([*BASE, "backend=vllm", f"backend.base_url={url}", f"backend.model={fake_openai.model}",
                           f"backend.cache_dir={tmp_path / 'c'}", f"run.dir={tmp_path / 'run'}"]))  # fmt: skip
    written = "".join(p.read_text(errors="replace") for p in run_dir.rglob("*.json"))
    assert "hunter2" not in written and "***@127.0.0.1" in written
    out, err = capfd.readouterr()
    assert "hunter2" not in out + err
    assert not any(b"hunter2" in p.read_bytes() for p in run_dir.rglob("*.parquet"))


def test_an_unknown_stand_in_is_a_one_line_config_error(fake_openai, tmp_path):
    from sim.config import ConfigError

    with pytest.raises(ConfigError, match=r"backend\.on_failure: policy:nobody is not a scripted policy of ipd"):
        go(fake_openai, tmp_path, "run", "backend.on_failure=policy:nobody")
    assert not (tmp_path / "run").exists()


def test_faults_the_client_retries_leave_the_fault_free_tables(fake_openai, tmp_path, reference):
    fake_openai.inject(request_seed(0, 1), "500", "500")
    fake_openai.inject(request_seed(1, 5), "drop")
    fake_openai.inject(request_seed(2, 9), "malformed")
    run_dir = go(fake_openai, tmp_path, "run", "backend.max_retries=2", "backend.invalid_retries=1")
    assert same_rows(run_dir, reference)
    rows = read_table(run_dir, "interactions")
    assert rows["fallback_reason"].is_null().all()
    totals = json.loads((run_dir / "manifest.json").read_text())["totals"]["llm"]
    assert totals["failures"] == {} and sum(totals["http_failed"].values()) >= 3


def test_the_report_shows_dialogues_beside_personas(fake_openai, tmp_path):
    from analysis import load
    from analysis.report import build_report

    fake_openai.inject(request_seed(2, 0), "500")
    run_dir = go(fake_openai, tmp_path, "run", "backend.max_failure_rate=0.5")
    assert load(run_dir).transcripts.collect().height == 36
    page = build_report(run_dir)
    assert "Dialogues with the model" in page and page.count("<h4>step ") == 6
    assert "Persona: name " in page and "A: Option" in page and "no answer: server_error" in page
