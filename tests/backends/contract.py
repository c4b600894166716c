"""The contract every LLM backend inherits (like `tests/contract.py` for scenarios).

A subclass provides a `backend_config` fixture: a factory `(cache_dir) -> BackendConfig` pointing at
a live server. The contract checks what the engine relies on, whatever serves the model: structured
replies decode into valid actions with token and latency accounting; per-decision bounds hold; the
same seeds with a cold cache give the same actions; a warm cache answers without the server; and
replay, with the server unreachable, gives the same answers.
"""

from __future__ import annotations

import numpy as np

from tests.backends.helpers import decide, give_batch, move_batch

UNREACHABLE = "http://127.0.0.1:9/v1"  # nothing listens on port 9


def _valid(out) -> np.ndarray:
    return np.array([f is None for f in out.fallback])


class BackendContract:
    def test_choice_answers_are_valid_and_accounted(self, backend_config, tmp_path):
        first, totals = decide(backend_config(tmp_path / "a"), move_batch(40, t=3), 40)
        assert set(np.unique(first.values["move"])) <= {0, 1}
        assert _valid(first).mean() >= 0.99, list(first.fallback)
        assert (first.prompt_tokens > 0).all() and (first.completion_tokens >= 1).all()
        assert not first.cached.any() and (first.latency_ms > 0).all() and totals["calls"] >= 40

    def test_same_seeds_cold_cache_same_actions(self, backend_config, tmp_path):
        batch = move_batch(40, t=3)
        first, _ = decide(backend_config(tmp_path / "a"), batch, 40)
        again, _ = decide(backend_config(tmp_path / "b"), batch, 40)
        assert np.array_equal(again.values["move"], first.values["move"])

    def test_numbers_respect_per_decision_bounds(self, backend_config, tmp_path):
        upper = np.array([0, 1, 2, 5, 10] * 4, dtype=float)
        out, _ = decide(backend_config(tmp_path), give_batch(len(upper), upper), len(upper))
        ok = _valid(out)
        assert ok.mean() >= 0.95, list(out.fallback)
        assert (out.values["give"][ok] <= upper[ok]).all() and (out.values["give"] >= 0).all()
        assert all(isinstance(w, str) and len(w) <= 40 for w in out.values["why"])

    def test_warm_cache_and_replay_without_server_give_the_same_answers(self, backend_config, tmp_path):
        batch = move_batch(30, t=2)
        live, _ = decide(backend_config(tmp_path), batch, 30)
        warm, totals = decide(backend_config(tmp_path), batch, 30)
        assert warm.cached.all() and totals.get("calls", 0) == 0
        replay_config = backend_config(tmp_path).model_copy(update={"mode": "replay", "base_url": UNREACHABLE})
        replay, _ = decide(replay_config, batch, 30)
        for answers in (warm, replay):
            assert np.array_equal(answers.values["move"], live.values["move"])
            assert np.array_equal(answers.prompt_tokens, live.prompt_tokens)
