"""LLMPolicy against a real vLLM server (CPU, tiny random model): structured choice and JSON-schema
replies are valid, tokens are counted, answers repeat under the same seed and come back from the
cache unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from tests.backends.helpers import decide, give_batch, move_batch

pytestmark = pytest.mark.vllm


def test_choice_decisions_are_valid_counted_and_repeatable(vllm_server, tmp_path):
    batch = move_batch(60, t=3)
    first, totals = decide(vllm_server.backend(cache_dir=str(tmp_path / "a")), batch, 60)
    assert set(np.unique(first.values["move"])) <= {0, 1}
    assert sum(f is not None for f in first.fallback) <= 0.01 * len(batch)
    assert (first.prompt_tokens > 100).all() and (first.completion_tokens >= 1).all()
    assert not first.cached.any() and (first.latency_ms > 0).all() and totals["calls"] >= 60
    # Same seeds, a cold cache: the server gives the same actions (temperature 0 from the spec).
    again, _ = decide(vllm_server.backend(cache_dir=str(tmp_path / "b")), batch, 60)
    assert np.array_equal(again.values["move"], first.values["move"])
    # Warm cache: no server call, same actions and token counts.
    warm, totals = decide(vllm_server.backend(cache_dir=str(tmp_path / "a")), batch, 60)
    assert warm.cached.all() and totals.get("calls", 0) == 0
    assert np.array_equal(warm.values["move"], first.values["move"])
    assert np.array_equal(warm.prompt_tokens, first.prompt_tokens)


def test_json_schema_decisions_respect_per_decision_bounds(vllm_server, tmp_path):
    upper = np.array([0, 1, 2, 5, 10] * 4, dtype=float)
    out, _ = decide(vllm_server.backend(cache_dir=str(tmp_path)), give_batch(len(upper), upper), len(upper))
    ok = np.array([f is None for f in out.fallback])
    assert ok.mean() >= 0.95, list(out.fallback)
    assert (out.values["give"][ok] <= upper[ok]).all() and (out.values["give"] >= 0).all()
    assert all(isinstance(w, str) and len(w) <= 40 for w in out.values["why"])
