"""The contract every LLM backend inherits (like `tests/contract.py` for scenarios).

A subclass provides a `backend_config` fixture: a factory `(cache_dir) -> BackendConfig` pointing at
a live server. The contract checks what the engine relies on, whatever serves the model: structured
replies decode into valid actions with token, latency and HTTP-attempt accounting and a transcript;
per-decision bounds hold; the same seeds with a cold cache give the same actions; a warm cache
answers without the server; replay, with the server unreachable, gives the same answers; and the
server's context length and tokenizer are readable for the context pre-check.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from sim.backends import BackendError
from sim.backends.context import PromptSample, check_context
from tests.backends.helpers import decide, give_batch, move_batch

UNREACHABLE = "http://127.0.0.1:9/v1"  # nothing listens on port 9


def _valid(out) -> np.ndarray:
    return ~out.missing


class BackendContract:
    def test_choice_answers_are_valid_and_accounted(self, backend_config, tmp_path):
        first, totals = decide(backend_config(tmp_path / "a"), move_batch(40, t=3), 40)
        ok = _valid(first)
        assert ok.mean() >= 0.99, list(first.fallback_reason)
        assert set(np.unique(first.values["move"][ok])) <= {0, 1} and (first.values["move"][~ok] == -1).all()
        assert (first.prompt_tokens > 0).all() and (first.completion_tokens >= 1).all()
        assert not first.cached.any() and (first.latency_ms > 0).all() and totals["calls"] >= 40
        assert (first.attempts >= 1).all() and totals["http_requests"] == first.attempts.sum()

    def test_transcripts_hold_the_messages_as_sent_and_the_raw_reply(self, backend_config, tmp_path):
        out, _ = decide(backend_config(tmp_path), move_batch(6, t=2), 6)
        for i in range(6):
            messages = json.loads(out.messages[i])
            assert messages[-1]["role"] == "user" and isinstance(messages[-1]["content"], str)
            assert out.reply[i].strip() == ("J", "F")[out.values["move"][i]]

    def test_same_seeds_cold_cache_same_actions(self, backend_config, tmp_path):
        batch = move_batch(40, t=3)
        first, _ = decide(backend_config(tmp_path / "a"), batch, 40)
        again, _ = decide(backend_config(tmp_path / "b"), batch, 40)
        assert np.array_equal(again.values["move"], first.values["move"])

    def test_numbers_respect_per_decision_bounds(self, backend_config, tmp_path):
        upper = np.array([0, 1, 2, 5, 10] * 4, dtype=float)
        out, _ = decide(backend_config(tmp_path), give_batch(len(upper), upper), len(upper))
        ok = _valid(out)
        assert ok.mean() >= 0.95, list(out.fallback_reason)
        assert (out.values["give"][ok] <= upper[ok]).all() and (out.values["give"] >= 0).all()
        assert all(isinstance(w, str) and len(w) <= 40 for w in out.values["why"])

    def test_warm_cache_and_replay_without_server_give_the_same_answers(self, backend_config, tmp_path):
        batch = move_batch(30, t=2)
        live, _ = decide(backend_config(tmp_path), batch, 30)
        warm, totals = decide(backend_config(tmp_path), batch, 30)
        assert warm.cached.all() and totals.get("calls", 0) == 0 and totals.get("http_requests", 0) == 0
        assert (warm.attempts == 0).all() and list(warm.reply) == list(live.reply)
        replay_config = backend_config(tmp_path).model_copy(update={"mode": "replay", "base_url": UNREACHABLE})
        replay, _ = decide(replay_config, batch, 30)
        for answers in (warm, replay):
            assert np.array_equal(answers.values["move"], live.values["move"])
            assert np.array_equal(answers.prompt_tokens, live.prompt_tokens)

    def test_context_pre_check_reads_the_servers_context_and_tokenizer(self, backend_config, tmp_path):
        config = backend_config(tmp_path)
        short = [{"role": "user", "content": "Pick J or F."}]
        long = [{"role": "user", "content": "word " * 5000}]
        (fit,) = check_context(config, [PromptSample("ipd_move", short, 2, "scenario.rounds")])
        assert fit.counted_by == "tokenize" and 0 < fit.prompt_tokens < 100 and fit.max_model_len >= 256
        with pytest.raises(BackendError, match=r"^scenario\.rounds: the longest ipd_move prompt needs") as err:
            check_context(config, [PromptSample("ipd_move", long, 2, "scenario.rounds")])
        assert "\n" not in str(err.value)
