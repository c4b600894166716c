"""LLMPolicy against a real vLLM server (CPU, tiny random model), through the backend contract."""

from __future__ import annotations

import pytest

from tests.backends.contract import BackendContract

pytestmark = pytest.mark.vllm


class TestRealVLLMServer(BackendContract):
    @pytest.fixture
    def backend_config(self, vllm_server):
        return lambda cache_dir: vllm_server.backend(cache_dir=str(cache_dir))
