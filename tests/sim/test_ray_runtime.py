"""Joining Ray: which failures are asked again (Ray Client's transient start-up failure) and which are
reported at once, without a cluster (ray.init is replaced; the real joins are in test_ray_cluster)."""

from __future__ import annotations

import pytest
import ray

from sim import ray_runtime
from sim.ray_runtime import HeldStderr, ShardError, connect


@pytest.fixture
def fake_init(monkeypatch):
    """ray.init failing with the given messages, in order, then succeeding; returns the calls made."""
    calls: list[str] = []
    failures: list[str] = []

    def init(address: str, **_: object) -> None:
        calls.append(address)
        if failures:
            raise ConnectionError(failures.pop(0))

    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    monkeypatch.setattr(ray_runtime, "_check_reachable", lambda address: None)
    monkeypatch.setattr(ray_runtime.time, "sleep", lambda s: None)
    return calls, failures


def test_ray_client_start_up_failure_is_asked_again(fake_init):
    calls, failures = fake_init
    failures.append(f"ray client connection: {ray_runtime.TRANSIENT_CLIENT_FAILURE}")
    with HeldStderr() as held:
        assert connect("ray://head:10001", 2, held) is True
    assert calls == ["ray://head:10001"] * 2


def test_ray_client_gives_up_after_its_retries(fake_init):
    calls, failures = fake_init
    failures.extend([ray_runtime.TRANSIENT_CLIENT_FAILURE] * (ray_runtime.CLIENT_RETRIES + 1))
    joining = r"^run.ray_address=ray://head:10001: cannot join the Ray cluster"
    with pytest.raises(ShardError, match=joining), HeldStderr() as held:
        connect("ray://head:10001", 2, held)
    assert len(calls) == ray_runtime.CLIENT_RETRIES + 1


@pytest.mark.parametrize(
    ("address", "message"),
    [("ray://head:10001", "connection refused"), ("head:6379", ray_runtime.TRANSIENT_CLIENT_FAILURE)],
)
def test_other_failures_are_reported_at_once(fake_init, address, message):
    calls, failures = fake_init
    failures.append(message)
    with pytest.raises(ShardError), HeldStderr() as held:
        connect(address, 2, held)
    assert calls == [address]
