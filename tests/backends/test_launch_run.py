"""`backend.launch=true`: the run starts its own vLLM server, uses it, and stops it; the cached
answers then replay the run with no server."""

from __future__ import annotations

import httpx
import pytest

from sim.backends.server import free_port
from tests.backends.e2e import comparable, interactions, socsim

pytestmark = pytest.mark.vllm


def test_managed_server_runs_the_ipd_then_replay_matches(vllm_python, tiny_model_dir, tmp_path):
    port = free_port()
    common = [
        "scenario=ipd", "population.size=6", "population.mix={llm:6}", "backend=vllm", "backend.model=tiny",
        "seed=2", "scenario.rounds=3", f"backend.cache_dir={tmp_path / 'cache'}",
    ]  # fmt: skip
    live = socsim(
        *common, "backend.launch=true", f"backend.model_path={tiny_model_dir}", f"backend.python={vllm_python}",
        f"backend.port={port}", f"backend.server_dir={tmp_path / 'server'}", f"run.dir={tmp_path / 'live'}",
        cwd=tmp_path,
    )  # fmt: skip
    assert live.returncode == 0, live.stderr[-2000:]
    rows = interactions(tmp_path / "live")
    assert rows.height == 15 * 2 * 3 and set(rows["backend"]) == {"vllm"} and set(rows["model"]) == {"tiny"}
    assert (rows["prompt_tokens"] > 0).all() and rows["fallback_reason"].null_count() == rows.height
    with pytest.raises(httpx.ConnectError):  # the server is gone with the run
        httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=5)
    assert list((tmp_path / "server").iterdir()) == []

    replay = socsim(*common, "backend.mode=replay", f"run.dir={tmp_path / 'replay'}", cwd=tmp_path)
    assert replay.returncode == 0, replay.stderr[-2000:]
    assert comparable(interactions(tmp_path / "replay")).equals(comparable(rows))
