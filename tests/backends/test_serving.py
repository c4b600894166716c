"""serving(): preflight against real HTTP, and the managed-server life cycle (start, wait, log tail
on failure, stop on every exit path) driven through a stand-in interpreter, so it runs without vLLM.
The real vLLM launch is covered in test_vllm_integration.py."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from sim.backends import BackendError, serving
from sim.backends.config import BackendConfig

FAKE_VLLM = """#!/bin/bash
# Stands in for `python -m vllm.entrypoints.openai.api_server --model M --served-model-name N --port P ...`
echo "$VLLM_CPU_KVCACHE_SPACE|$VLLM_CACHE_ROOT|$TMPDIR|$@" > {record}
while [ $# -gt 0 ]; do
  case "$1" in --port) port=$2;; --served-model-name) name=$2;; esac; shift
done
{behaviour}
"""


def fake_interpreter(tmp_path: Path, behaviour: str) -> tuple[str, Path]:
    record = tmp_path / "launch.txt"
    script = tmp_path / "python"
    script.write_text(FAKE_VLLM.format(record=record, behaviour=behaviour))
    script.chmod(0o755)
    return str(script), record


def launch_config(tmp_path: Path, python: str, **extra) -> BackendConfig:
    fields = {
        "kind": "vllm", "model": "served-name", "launch": True, "python": python, "model_path": "/models/x",
        "server_dir": str(tmp_path / "servers"), "startup_timeout_s": 60.0,
    }  # fmt: skip
    return BackendConfig(**{**fields, **extra})


SERVE = f'exec {sys.executable} -m sim.backends.fake_server --port "$port" --model "$name"'


def answers(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/models", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_kind_none_and_replay_need_no_server():
    none = BackendConfig()
    with serving(none) as resolved:
        assert resolved is none
    replay = BackendConfig(kind="vllm", model="m", mode="replay", base_url="http://127.0.0.1:9/v1")
    with serving(replay) as resolved:
        assert resolved is replay


def test_preflight_passes_and_keeps_the_config(fake_openai):
    config = BackendConfig(kind="vllm", model="fake-model", base_url=fake_openai.base_url)
    with serving(config) as resolved:
        assert resolved.base_url == fake_openai.base_url


def test_preflight_fails_in_one_line_when_unreachable_or_model_missing(fake_openai):
    with (
        pytest.raises(BackendError, match="is not reachable") as err,
        serving(BackendConfig(kind="vllm", model="m", base_url="http://127.0.0.1:9/v1")),
    ):
        pass
    assert "\n" not in str(err.value)
    with (
        pytest.raises(BackendError, match="does not serve model 'other'"),
        serving(BackendConfig(kind="vllm", model="other", base_url=fake_openai.base_url)),
    ):
        pass
    with (
        pytest.raises(BackendError, match="base_url is not set"),
        serving(BackendConfig(kind="vllm", model="m")),
    ):
        pass


def test_managed_server_starts_with_its_own_folder_and_stops(tmp_path):
    python, record = fake_interpreter(tmp_path, SERVE)
    config = launch_config(tmp_path, python, port=0, kv_cache_gib=2)
    with serving(config) as resolved:
        assert answers(resolved.base_url)
        kv, cache_root, tmpdir, args = record.read_text().strip().split("|", 3)
        assert kv == "2" and Path(cache_root).is_relative_to(tmp_path / "servers")
        assert Path(tmpdir).is_dir() and len(tmpdir) < 40  # short: vLLM's IPC socket paths live there
        assert "-m vllm.entrypoints.openai.api_server --model /models/x --served-model-name served-name" in args
        assert '--structured-outputs-config {"backend":"xgrammar","disable_any_whitespace":true}' in args
    assert not answers(resolved.base_url)
    assert list((tmp_path / "servers").iterdir()) == [] and not Path(tmpdir).exists()  # folders removed


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_managed_server_stops_when_the_run_fails_or_is_interrupted(tmp_path, error):
    python, _ = fake_interpreter(tmp_path, SERVE)
    with pytest.raises(error), serving(launch_config(tmp_path, python)) as resolved:
        assert answers(resolved.base_url)
        raise error()
    assert not answers(resolved.base_url)


def test_server_that_dies_reports_the_log_tail(tmp_path):
    python, _ = fake_interpreter(tmp_path, 'echo "ValueError: no such model /models/x" >&2; exit 3')
    with (
        pytest.raises(BackendError, match=r"exited with code 3 .*ValueError: no such model") as err,
        serving(launch_config(tmp_path, python)),
    ):
        pass
    assert "\n" not in str(err.value)


def test_server_that_never_answers_times_out_with_the_log_tail(tmp_path):
    python, _ = fake_interpreter(tmp_path, 'echo "loading weights"; sleep 60')
    with (
        pytest.raises(BackendError, match=r"did not answer .* within 1 s; log: loading weights"),
        serving(launch_config(tmp_path, python, startup_timeout_s=1.0)),
    ):
        pass


def test_launch_with_a_missing_interpreter_is_one_clear_error(tmp_path):
    with (
        pytest.raises(BackendError, match=r"interpreter .* not found"),
        serving(launch_config(tmp_path, str(tmp_path / "nope" / "python"))),
    ):
        pass


def test_config_requires_model_and_model_path():
    with pytest.raises(ValueError, match=r"backend\.model is required"):
        BackendConfig(kind="vllm")
    with pytest.raises(ValueError, match=r"needs backend\.model_path"):
        BackendConfig(kind="vllm", model="m", launch=True)
