"""The `socsim` command with LLM agents against the fake server: no per-request log lines at the
default log level, and no credential from backend.base_url on stdout or stderr."""

from __future__ import annotations

import json

from sim.backends.fake_server import FakeOpenAIServer
from tests.backends.e2e import socsim

SECRET = "hunter2-secret"


def test_an_llm_run_prints_no_line_per_request_and_no_credentials(tmp_path):
    with FakeOpenAIServer(model="fake-model") as server:
        url = server.base_url.replace("http://", f"http://alice:{SECRET}@")
        result = socsim(
            "scenario=ipd", "population.size=10", "population.mix={llm:10}", "scenario.rounds=3", "backend=vllm",
            f"backend.base_url={url}", "backend.model=fake-model", f"backend.cache_dir={tmp_path / 'cache'}",
            f"run.dir={tmp_path / 'run'}", cwd=tmp_path,
        )  # fmt: skip
        asked = len(server.requests)
    assert result.returncode == 0, result.stderr[-2000:]
    assert asked == 45 * 2 * 3  # every decision reached the server, through the credentialed URL
    output = result.stdout + result.stderr
    assert "HTTP Request" not in output and len(output.splitlines()) < 10, output[-2000:]
    assert SECRET not in output
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "completed"
