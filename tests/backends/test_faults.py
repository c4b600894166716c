"""Fault injection against real HTTP, checked at the policy level: faults within the retry limits
leave the answers exactly as in a fault-free run (same seeds, same cache); faults beyond them leave
nothing substantive, only a missing decision with its reason; the openai client honours
Retry-After; HTTP attempts are counted where they happen; a server killed (SIGKILL) and restarted on
the same port mid-batch is waited for; a server that stays down raises BackendOutage with the
answers obtained so far, which are also in the cache."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from sim.backends import BackendOutage
from sim.backends.config import BackendConfig
from sim.backends.fake_server import FakeOpenAIServer, valid_content
from sim.backends.policy import LLMPolicy, attempt_seed
from sim.backends.server import free_port
from tests.backends.helpers import decide, move_batch, prompter

SEED_MOD = 2**31


def backend(base_url: str, tmp_path, **extra) -> BackendConfig:
    fields = {"kind": "vllm", "model": "fake-model", "base_url": base_url, "cache_dir": str(tmp_path)}
    return BackendConfig(**{**fields, **extra})


def expected_moves(batch) -> np.ndarray:
    """What the fake server answers each decision (its reply is a function of the request's seed)."""
    choice = {"choice": ["J", "F"]}
    labels = [valid_content({"seed": int(s) % SEED_MOD, "structured_outputs": choice}) for s in batch.seeds]
    return np.array(["JF".index(label) for label in labels])


# Each fault below the limits of max_retries=2, invalid_retries=1 (a malformed body is asked again as sent).
WITHIN_LIMITS = [["500"], ["500", "500"], ["429"], ["timeout"], ["drop"], ["drop", "500"], ["truncated"], ["malformed"]]


def test_faults_within_the_retry_limits_give_the_fault_free_answers(tmp_path):
    batch = move_batch(40)
    limits = {"max_retries": 2, "invalid_retries": 1, "timeout_s": 0.5}
    with FakeOpenAIServer(hang_s=5.0, retry_after="0.1") as server:
        clean, clean_totals = decide(backend(server.base_url, tmp_path / "clean", **limits), batch, 40)
        server.requests.clear()
        for i, faults in enumerate(WITHIN_LIMITS * 3):
            server.inject(int(batch.seeds[i]) % SEED_MOD, *faults)
        faulty, totals = decide(backend(server.base_url, tmp_path / "faulty", **limits), batch, 40)
        sent = len(server.requests)
    assert not clean.missing.any() and not faulty.missing.any()
    assert np.array_equal(faulty.values["move"], clean.values["move"])
    assert np.array_equal(clean.values["move"], expected_moves(batch))
    assert list(faulty.reply) == list(clean.reply) and list(faulty.messages) == list(clean.messages)
    injected = sum(len(f) for f in WITHIN_LIMITS * 3)
    assert clean_totals["http_requests"] == 40 and totals["http_requests"] == 40 + injected == sent
    assert faulty.attempts.sum() == totals["http_requests"]
    assert totals["http_failed.status_500"] == 3 * 4 and totals["http_failed.status_429"] == 3
    assert totals["http_failed.timeout"] == 3 and totals["http_failed.dropped"] == 3 * 3
    # A warm cache answers the same, with no request at all.
    warm, warm_totals = decide(backend("http://127.0.0.1:9/v1", tmp_path / "faulty", **limits), batch, 40)
    assert np.array_equal(warm.values["move"], clean.values["move"]) and warm_totals.get("http_requests", 0) == 0


def test_faults_beyond_the_limits_leave_only_a_reason(tmp_path):
    batch = move_batch(8)
    seeds = [int(s) for s in batch.seeds]
    beyond = {
        0: (["500"] * 2, "server_error"),
        1: (["429"] * 2, "rate_limited"),
        2: (["timeout"] * 2, "timeout"),
        3: (["drop"] * 2, "connection"),
        4: (["400"], "rejected"),
        5: (["malformed"] * 2, "malformed"),
        6: (["invalid"], "invalid_reply"),
    }
    with FakeOpenAIServer(hang_s=5.0, retry_after="0.1") as server:
        for i, (faults, _) in beyond.items():
            server.inject(seeds[i] % SEED_MOD, *faults)
        server.inject(attempt_seed(seeds[6], 1), "invalid")
        out, totals = decide(backend(server.base_url, tmp_path, max_retries=1, invalid_retries=1, timeout_s=0.5), batch)
        sent = len(server.requests)
    assert out.missing.tolist() == [True] * 7 + [False]
    assert list(out.fallback_reason) == [reason for _, reason in beyond.values()] + [None]
    assert (out.values["move"][:7] == -1).all() and out.values["move"][7] in (0, 1)
    assert out.reply[5] is None and out.reply[6] == "this is not an option"  # the raw text of the last attempt
    assert totals["http_requests"] == sent == out.attempts.sum()


def test_retry_after_of_a_429_is_honoured(tmp_path):
    batch = move_batch(1)
    seed = int(batch.seeds[0]) % SEED_MOD
    with FakeOpenAIServer(retry_after="1") as server:
        server.inject(seed, "429")
        out, _ = decide(backend(server.base_url, tmp_path, max_retries=2), batch)
        times = [t for s, t in server.arrivals if s == seed]
    assert not out.missing.any() and len(times) == 2
    assert times[1] - times[0] >= 0.95  # the client's own backoff would be 0.5 s at most


@contextmanager
def fake_server_process(port: int, delay_s: float = 0.0) -> Iterator[subprocess.Popen]:
    """The fake server as its own process (own process group), on a fixed port; killed on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.backends.fake_server", "--port", str(port), "--model", "fake-model",
         "--delay-s", str(delay_s)],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert int(proc.stdout.readline()) == port
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()


def test_server_killed_and_restarted_mid_batch_is_waited_for(tmp_path):
    batch = move_batch(300)
    port = free_port()
    config = backend(f"http://127.0.0.1:{port}/v1", tmp_path, max_retries=1, max_concurrency=8, outage_timeout_s=60)
    policy = LLMPolicy(config, prompter(300))
    events: list[str] = []

    def kill_then_restart(first: subprocess.Popen) -> None:
        time.sleep(0.5)
        os.killpg(first.pid, signal.SIGKILL)  # mid-batch: 300 decisions at 8 x 20 ms take about 0.8 s
        first.wait()
        events.append("killed")
        time.sleep(3.0)  # longer than the client's retries: an outage, not a blip
        with fake_server_process(port, delay_s=0.02):
            events.append("restarted")
            done.wait(60)

    done = threading.Event()
    with fake_server_process(port, delay_s=0.02) as first:
        chaos = threading.Thread(target=kill_then_restart, args=(first,))
        chaos.start()
        try:
            out = policy.decide(batch)
            totals = policy.totals()
        finally:
            done.set()
            chaos.join()
            policy.close()
    assert events == ["killed", "restarted"]
    assert not out.missing.any(), list(out.fallback_reason)
    assert np.array_equal(out.values["move"], expected_moves(batch))
    assert totals["outage_resumes"] > 0 and totals.get("http_failed.refused", 0) > 0


def test_a_server_that_stays_down_raises_outage_with_the_answers_so_far(tmp_path):
    batch = move_batch(200)
    port = free_port()
    config = backend(f"http://127.0.0.1:{port}/v1", tmp_path, max_retries=1, max_concurrency=4, outage_timeout_s=1.5)
    policy = LLMPolicy(config, prompter(200))
    with fake_server_process(port, delay_s=0.02) as proc:
        killer = threading.Timer(0.4, lambda: os.killpg(proc.pid, signal.SIGKILL))
        killer.start()
        try:
            with pytest.raises(BackendOutage, match=r"^backend outage: no endpoint accepted connections") as err:
                policy.decide(batch)
        finally:
            killer.join()
            policy.close()
    partial = err.value.partial
    got = ~partial.missing
    assert 0 < got.sum() < 200 and "\n" not in str(err.value)
    assert set(partial.fallback_reason[~got]) <= {"outage", "connection"}
    assert np.array_equal(partial.values["move"][got], expected_moves(batch)[got])
    assert (partial.values["move"][~got] == -1).all()
    # Nothing obtained is lost: a replay of the same batch finds exactly those answers in the cache.
    replay = LLMPolicy(config.model_copy(update={"mode": "replay"}), prompter(200))
    try:
        for i in np.flatnonzero(got)[:20]:
            one = replay.decide(batch.take(np.array([i])))
            assert one.cached.all() and one.values["move"][0] == partial.values["move"][i]
    finally:
        replay.close()
