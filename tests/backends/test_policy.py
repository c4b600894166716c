"""LLMPolicy against a fake OpenAI-compatible server over real HTTP: request shape, parsing,
bounds, missing decisions and their reasons, concurrency, the cache and replay. The fault-injection
suite (retries, outages, a server killed mid-batch) is in test_faults.py."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from sim.backends import BackendError
from sim.backends.config import BackendConfig
from sim.backends.fake_server import FakeOpenAIServer
from sim.backends.policy import LLMPolicy, attempt_seed
from tests.backends.contract import BackendContract
from tests.backends.helpers import GIVE_SPEC, decide, give_batch, move_batch, prompter


def backend(server: FakeOpenAIServer, tmp_path, **extra) -> BackendConfig:
    fields = {"kind": "vllm", "model": server.model, "base_url": server.base_url, "cache_dir": str(tmp_path)}
    return BackendConfig(**{**fields, **extra})


class TestFakeServer(BackendContract):
    @pytest.fixture
    def backend_config(self, fake_openai):
        return lambda cache_dir: backend(fake_openai, cache_dir)


def test_choice_requests_carry_seed_structured_choice_and_spec_temperature(fake_openai, tmp_path):
    batch = move_batch(8)
    out, totals = decide(backend(fake_openai, tmp_path), batch)
    by_seed = {r["seed"]: r for r in fake_openai.requests}
    assert sorted(by_seed) == sorted(int(s) % 2**31 for s in batch.seeds)
    for request in fake_openai.requests:
        assert request["structured_outputs"] == {"choice": ["J", "F"]}
        assert request["temperature"] == 0.0 and request["model"] == "fake-model"
        assert request["messages"][-1]["content"].endswith("A: Option")
    # The fake answers choice[seed % 2]: the policy must map each reply to its own decision.
    expected = np.array([int(s) % 2**31 % 2 for s in batch.seeds])
    assert np.array_equal(out.values["move"], expected)
    assert (out.prompt_tokens > 0).all() and (out.completion_tokens == 1).all()
    assert not out.cached.any() and not out.missing.any() and all(f is None for f in out.fallback_reason)
    assert totals["calls"] == 8 and totals["http_requests"] == 8 and len(out) == 8
    assert (out.attempts == 1).all() and list(out.reply) == [("J", "F")[v] for v in out.values["move"]]


def test_requests_carry_the_key_and_none_of_the_sdks_telemetry_headers(fake_openai, tmp_path, monkeypatch):
    """Every header is CPU per request on both sides; a server has no use for the SDK's telemetry."""
    monkeypatch.setenv("SOCSIM_TEST_KEY", "sk-test")
    decide(backend(fake_openai, tmp_path, api_key_env="SOCSIM_TEST_KEY"), move_batch(4))
    assert len(fake_openai.headers) == 4
    for headers in fake_openai.headers:
        assert headers["authorization"] == "Bearer sk-test" and headers["content-type"] == "application/json"
        assert headers["user-agent"].startswith("AsyncOpenAI/Python ")
        assert not [name for name in headers if name.startswith("x-stainless")], headers


def test_backend_temperature_applies_when_spec_sets_none(fake_openai, tmp_path):
    decide(backend(fake_openai, tmp_path, temperature=1.3), give_batch(2, [5, 5]))
    assert {r["temperature"] for r in fake_openai.requests} == {1.3}


def test_json_schema_request_is_tightened_to_each_decisions_bound(fake_openai, tmp_path):
    upper = np.array([0, 3, 10, 7])
    out, _ = decide(backend(fake_openai, tmp_path), give_batch(4, upper))
    maxima = sorted(r["response_format"]["json_schema"]["schema"]["properties"]["give"]["maximum"]
                    for r in fake_openai.requests)  # fmt: skip
    assert maxima == sorted(upper.tolist())
    assert not out.missing.any()
    assert (out.values["give"] >= 0).all() and (out.values["give"] <= upper).all()
    assert all(isinstance(w, str) and w.startswith("text") for w in out.values["why"])


def test_out_of_bound_reply_is_invalid(fake_openai, tmp_path):
    """A reply above the decision's bound is invalid even though the spec's maximum allows it."""
    config = backend(fake_openai, tmp_path, invalid_retries=0)
    policy = LLMPolicy(config, prompter(2))
    with pytest.raises(ValueError):
        policy.parse(GIVE_SPEC, '{"give": 6, "why": ""}', {"give": (0.0, 5.0)})
    policy.close()


@pytest.mark.parametrize(
    ("faults", "extra", "reason", "attempts"),
    [
        (["500"] * 3, {"max_retries": 2}, "server_error", 3),
        (["400"], {"max_retries": 2}, "rejected", 1),
        (["timeout"], {"max_retries": 0, "timeout_s": 0.3}, "timeout", 1),
        (["drop"] * 2, {"max_retries": 1}, "connection", 2),
        (["truncated"] * 2, {"max_retries": 1}, "connection", 2),
        (["invalid", "invalid"], {"invalid_retries": 1}, "invalid_reply", 2),
        (["malformed", "malformed"], {"invalid_retries": 1}, "malformed", 2),
    ],
)
def test_a_decision_that_cannot_be_had_is_missing_with_its_reason(
    fake_openai, tmp_path, faults, extra, reason, attempts
):
    batch = move_batch(4)
    seed = int(batch.seeds[1])
    fake_openai.inject(seed % 2**31, *faults)
    if "invalid" in faults:  # the re-ask after an invalid reply carries a new seed
        fake_openai.inject(attempt_seed(seed, 1), "invalid")
    out, totals = decide(backend(fake_openai, tmp_path, **extra), batch)
    assert out.missing.tolist() == [False, True, False, False]
    assert out.fallback_reason[1] == reason and out.values["move"][1] == -1  # no move stands in for it
    assert [out.fallback_reason[i] for i in (0, 2, 3)] == [None, None, None]
    assert out.attempts[1] == attempts and totals["http_requests"] == attempts + 3


@pytest.mark.parametrize(
    "faults", [["500", "500"], ["429"], ["drop"], ["truncated"], ["timeout"], ["malformed"], ["invalid"]]
)
def test_transient_faults_are_retried_to_a_valid_answer(fake_openai, tmp_path, faults):
    fake_openai.retry_after = "0.1"
    batch = move_batch(3)
    fake_openai.inject(int(batch.seeds[0]) % 2**31, *faults)
    out, _ = decide(backend(fake_openai, tmp_path, max_retries=2, invalid_retries=1, timeout_s=0.5), batch)
    assert not out.missing.any() and all(f is None for f in out.fallback_reason)
    assert out.attempts[0] == 1 + len(faults) and (out.attempts[1:] == 1).all()


def test_a_prompt_longer_than_the_context_is_missing_as_context_length(tmp_path):
    with FakeOpenAIServer(max_model_len=30) as server:
        out, _ = decide(backend(server, tmp_path), move_batch(2))
    assert out.missing.all() and list(out.fallback_reason) == ["context_length"] * 2


def test_concurrency_is_bounded_per_endpoint_and_spread_over_endpoints(tmp_path):
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        a.delay_s = b.delay_s = 0.05
        config = backend(a, tmp_path, endpoints=(b.base_url,), max_concurrency=3, cache=False)
        out, _ = decide(config, move_batch(40), n_agents=40)
        assert not out.missing.any()
        assert a.max_in_flight == 3 and b.max_in_flight == 3
        assert len(a.requests) + len(b.requests) == 40 and min(len(a.requests), len(b.requests)) >= 10


def test_warm_cache_answers_without_the_server_and_replay_matches(fake_openai, tmp_path):
    batch = move_batch(6)
    first, _ = decide(backend(fake_openai, tmp_path), batch)
    sent = len(fake_openai.requests)
    second, totals = decide(backend(fake_openai, tmp_path), batch)
    assert len(fake_openai.requests) == sent and totals.get("calls", 0) == 0 and second.cached.all()
    replay = backend(fake_openai, tmp_path, mode="replay", base_url="http://127.0.0.1:9/v1")
    third, _ = decide(replay, batch)
    for out in (second, third):
        assert np.array_equal(out.values["move"], first.values["move"])
        assert np.array_equal(out.prompt_tokens, first.prompt_tokens)


def test_replay_reproduces_missing_decisions_and_live_rerun_asks_again(fake_openai, tmp_path):
    batch = move_batch(3)
    fake_openai.inject(int(batch.seeds[2]) % 2**31, "500")
    live, _ = decide(backend(fake_openai, tmp_path, max_retries=0), batch)
    assert live.fallback_reason[2] == "server_error" and live.missing[2]
    replay, _ = decide(backend(fake_openai, tmp_path, mode="replay"), batch)
    assert list(replay.fallback_reason) == list(live.fallback_reason)
    assert replay.missing.tolist() == live.missing.tolist() and replay.values["move"][2] == -1
    rerun, totals = decide(backend(fake_openai, tmp_path, max_retries=0), batch)
    assert rerun.fallback_reason[2] is None and not rerun.missing.any() and totals["calls"] == 1


def test_replay_miss_is_one_clear_error(tmp_path):
    config = BackendConfig(kind="vllm", model="m", mode="replay", cache_dir=str(tmp_path))
    with pytest.raises(BackendError, match="replay: no cached response") as err:
        decide(config, move_batch(2))
    assert "\n" not in str(err.value)


def test_same_policy_survives_a_new_event_loop_per_batch(fake_openai, tmp_path):
    policy = LLMPolicy(backend(fake_openai, tmp_path, cache=False), prompter(4))
    first = asyncio.run(policy.adecide(move_batch(4)))
    second = asyncio.run(policy.adecide(move_batch(4)))
    asyncio.run(policy.aclose())
    assert np.array_equal(first.values["move"], second.values["move"])


def test_api_key_comes_from_the_named_env_var_and_is_not_cached(fake_openai, tmp_path, monkeypatch):
    monkeypatch.setenv("SOCSIM_TEST_KEY", "sk-secret-123")
    decide(backend(fake_openai, tmp_path, api_key_env="SOCSIM_TEST_KEY"), move_batch(2))
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"sk-secret-123" not in stored
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(BackendError, match="OPENAI_API_KEY is not set"):
        decide(BackendConfig(kind="openai", model="m", base_url=fake_openai.base_url, cache=False), move_batch(1))


def test_empty_batch_and_llm_with_backend_none(tmp_path):
    with pytest.raises(BackendError, match="backend is none"):
        LLMPolicy(BackendConfig(), prompter(2))
    config = BackendConfig(kind="vllm", model="m", base_url="http://127.0.0.1:9/v1", cache_dir=str(tmp_path))
    out, _ = decide(config, move_batch(0))
    assert len(out) == 0


def test_batches_of_two_specs_answered_concurrently_match_one_at_a_time(fake_openai, tmp_path):
    """The runner gathers every batch of a step on one policy: re-asks must keep their own batch's request."""
    moves, gives = move_batch(6), give_batch(4, [3, 5, 7, 9])
    fake_openai.inject(int(moves.seeds[2]) % 2**31, "invalid")  # re-asked with a new seed, while gives run
    policy = LLMPolicy(backend(fake_openai, tmp_path / "together", cache=False), prompter(8))

    async def both():
        return await asyncio.gather(policy.adecide(moves), policy.adecide(gives))

    together = asyncio.run(both())
    asyncio.run(policy.aclose())
    fake_openai.inject(int(moves.seeds[2]) % 2**31, "invalid")
    alone = [decide(backend(fake_openai, tmp_path / "alone", cache=False), b)[0] for b in (moves, gives)]
    for a, b in zip(together, alone, strict=True):
        assert not a.missing.any() and list(a.messages) == list(b.messages)
        for name in a.values:
            assert a.values[name].tolist() == b.values[name].tolist()
    assert together[0].attempts[2] == 2


def test_a_choice_asked_as_json_gets_room_for_the_json(fake_openai, tmp_path):
    """A move sized for a bare option ("J", two tokens) must fit {"move": "J"} when a server without
    vLLM's choice constraint is asked for a JSON schema (backend=openai's default)."""
    decide(backend(fake_openai, tmp_path, choice_format="json_schema"), move_batch(2))
    assert {r["max_tokens"] for r in fake_openai.requests} == {2 + 8 + len("move")}
    decide(backend(fake_openai, tmp_path / "b"), move_batch(2, seed0=5000))
    assert {r["max_tokens"] for r in fake_openai.requests[2:]} == {2}
