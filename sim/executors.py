"""Where decisions are computed: in this process, or on K Ray actors that each own a slice of agents.

Both run the same DecisionRunner; the driver keeps the world (the public state), so a step's result
does not depend on the executor: decisions carry their own seeds, and batches are split and merged
by index.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import socket
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

import numpy as np

from agents.decisions import DecisionBatch, Decisions
from agents.population import Population
from scenarios import ScenarioConfig
from sim.backends.config import BackendConfig
from sim.runner import DecisionRunner, group_by_code


class ShardError(RuntimeError):
    """Ray shards cannot be started (no cluster at the address, refused token, not enough resources, an
    actor that died while starting); the message is one line."""


_AUTH_HELP = (
    "Ray token authentication: set RAY_AUTH_MODE=token and give the cluster's token in RAY_AUTH_TOKEN, "
    "RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token"
)


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of `host:port` or `ray://host:port`; None for `auto` or anything else."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def _check_reachable(address: str) -> None:
    """Fail at once when nothing listens at the address: Ray itself retries for about 20 s, logging
    a line per attempt."""
    target = _host_port(os.environ.get("RAY_ADDRESS", "") if address == "auto" else address)
    if target is None:
        return
    try:
        socket.create_connection(target, timeout=10).close()
    except OSError as exc:
        raise ShardError(f"run.ray_address={address}: no Ray cluster at {target[0]}:{target[1]} ({exc})") from None


@contextmanager
def _native_log_captured() -> Iterator[Callable[[], str]]:
    """Ray's C++ client writes a warning to file descriptor 2 for every failed connection attempt (some
    20 lines for a refused token). Hold them while joining, so that a failure is one line; on success
    they are passed on unchanged."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        restored = False

        def captured() -> str:
            nonlocal restored
            sys.stderr.flush()
            os.dup2(saved, 2)
            restored = True
            sink.seek(0)
            return sink.read().decode(errors="replace")

        try:
            yield captured
        finally:
            if not restored:
                sys.stderr.flush()
                os.dup2(saved, 2)
            os.close(saved)


def _join_error(address: str, exc: BaseException, native_log: str) -> str:
    if "Unauthenticated" in native_log or "InvalidAuthToken" in native_log or "AuthenticationError" in repr(exc):
        return f"run.ray_address={address}: the Ray cluster refused this client's token ({_AUTH_HELP})"
    if isinstance(exc, ImportError) and address.startswith("ray://"):
        return f"run.ray_address={address}: Ray Client needs its extra: pip install 'ray[client]' ({exc})"
    lines = str(exc).strip().splitlines()
    return f"run.ray_address={address}: cannot join the Ray cluster ({lines[0] if lines else type(exc).__name__})"


def connect_ray(address: str | None, cpus_needed: float) -> bool:
    """Connect this process to Ray; True when it did (and so must disconnect or shut down at the end).

    With an address (`auto`, `host:port`, `ray://host:port`) it joins that cluster as Ray documents,
    token authentication included (RAY_AUTH_MODE=token, RAY_AUTH_TOKEN...), and never passes resources:
    a joining driver may not. Without one it starts a private local runtime (`address="local"`), even when
    a cluster already runs on this machine or RAY_ADDRESS names one: only `run.ray_address` joins.
    A process already connected (a Ray task launched by the Ray sweep launcher) keeps its connection."""
    import ray

    if ray.is_initialized():
        return False
    common = {"logging_level": logging.WARNING, "log_to_driver": True}
    if not address:
        cpus = max(os.cpu_count() or 1, math.ceil(cpus_needed))
        try:
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, **common)
        except Exception as exc:
            raise ShardError(f"run.shards: cannot start a local Ray runtime ({_one_line(exc)})") from None
        print(f"socsim: started a local Ray runtime with {cpus} CPUs", file=sys.stderr)
        return True
    _check_reachable(address)
    with _native_log_captured() as native_log:
        try:
            ray.init(address=address, **common)
        except Exception as exc:
            raise ShardError(_join_error(address, exc, native_log())) from None
        passed_on = native_log()
    sys.stderr.write(passed_on)
    cpus = ray.cluster_resources().get("CPU", 0.0)
    gcs = ray.get_runtime_context().gcs_address
    print(f"socsim: joined the Ray cluster at {gcs} ({cpus:g} CPUs)", file=sys.stderr)
    return True


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _why(exc: BaseException) -> str:
    """The line that says why an actor died: Ray's message spans many lines, the cause's comes last."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    causes = [line for line in lines if re.match(r"^[\w.]*(Error|Exception)\b", line)]
    return causes[-1] if causes else (lines[0] if lines else type(exc).__name__)


class Executor(Protocol):
    def decide(self, batches: list[DecisionBatch]) -> list[Decisions]: ...

    def close(self) -> dict[str, int]:
        """Release shards and clients; return the backend counters summed over them. Idempotent."""
        ...


class InProcessExecutor:
    """run.shards=0: decide in the driver process, on one persistent event loop (LLM clients keep
    their connection pools) that runs in its own thread, so callers that already run a loop
    (Jupyter, async apps) can call `run()` too."""

    def __init__(self, scenario: ScenarioConfig, backend: BackendConfig, population: Population) -> None:
        self.runner = DecisionRunner(scenario, backend, population)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="socsim-decisions", daemon=True)
        self.thread.start()

    def decide(self, batches: list[DecisionBatch]) -> list[Decisions]:
        return asyncio.run_coroutine_threadsafe(self.runner.decide(batches), self.loop).result()

    def close(self) -> dict[str, int]:
        if self.loop.is_closed():
            return {}
        try:
            return asyncio.run_coroutine_threadsafe(self.runner.aclose(), self.loop).result()
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join()
            self.loop.close()


class Shard:
    """A Ray actor owning agents [lo, hi): it answers their decisions. It keeps no simulation state
    (the world lives on the driver), so restarting or checkpointing a shard needs nothing of it."""

    def __init__(self, scenario: ScenarioConfig, backend: BackendConfig, population: Population, lo: int, hi: int):
        self.lo, self.hi = lo, hi
        self.runner = DecisionRunner(scenario, backend, population)

    def ready(self) -> tuple[int, int]:
        return self.lo, self.hi

    async def decide(self, batches: list[DecisionBatch]) -> list[Decisions]:
        for batch in batches:
            if len(batch) and (batch.agent_ids.min() < self.lo or batch.agent_ids.max() >= self.hi):
                raise RuntimeError(f"shard [{self.lo}, {self.hi}) got a decision of an agent it does not own")
        return await self.runner.decide(batches)

    async def close(self) -> dict[str, int]:
        return await self.runner.aclose()


class RayExecutor:
    """run.shards=K: K actors, agent slices by id; each step submits all shards, then one ray.get."""

    def __init__(
        self,
        shards: int,
        scenario: ScenarioConfig,
        backend: BackendConfig,
        population: Population,
        address: str | None = None,
        shard_cpus: float = 1.0,
        start_timeout_s: float = 300.0,
    ) -> None:
        import ray

        self.ray = ray
        self.actors: list = []
        self.started_ray = connect_ray(address, shards * shard_cpus)
        cpus = ray.cluster_resources().get("CPU", 0.0)
        if shards * shard_cpus > cpus:
            self.close()
            raise ShardError(
                f"run.shards={shards} x run.shard_cpus={shard_cpus} needs {shards * shard_cpus:g} CPUs "
                f"but the Ray cluster has {cpus:g}; lower run.shards or run.shard_cpus"
            )
        n = population.size
        self.bounds = np.linspace(0, n, shards + 1).round().astype(np.int64)
        actor = ray.remote(num_cpus=shard_cpus)(Shard)
        shared = ray.put(population)
        self.actors = [
            actor.remote(scenario, backend, shared, int(lo), int(hi))
            for lo, hi in zip(self.bounds[:-1], self.bounds[1:], strict=True)
        ]
        try:
            ray.get([a.ready.remote() for a in self.actors], timeout=start_timeout_s)
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise ShardError(
                f"Ray could not start {shards} shard actors with {shard_cpus} CPU each within {start_timeout_s:.0f} s; "
                "lower run.shards or run.shard_cpus"
            ) from None
        except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as exc:
            self.close()
            raise ShardError(f"run.shards: a shard actor died while starting on the Ray cluster: {_why(exc)}") from None

    def decide(self, batches: list[DecisionBatch]) -> list[Decisions]:
        k = len(self.actors)
        routes: list[list[tuple[int, np.ndarray]]] = [[] for _ in range(k)]
        for b, batch in enumerate(batches):
            owner = np.searchsorted(self.bounds, batch.agent_ids, side="right") - 1
            for shard, index in group_by_code(owner):
                routes[shard].append((b, index))
        refs = {
            s: self.actors[s].decide.remote([batches[b].take(index) for b, index in routes[s]])
            for s in range(k)
            if routes[s]
        }
        results = dict(zip(refs, self.ray.get(list(refs.values())), strict=True))
        answers = [Decisions.empty(batch.spec, len(batch)) for batch in batches]
        for s, parts in results.items():
            for (b, index), part in zip(routes[s], parts, strict=True):
                answers[b].put(index, part)
        return answers

    def close(self) -> dict[str, int]:
        counters: Counter[str] = Counter()
        try:
            if self.actors:
                for part in self.ray.get([a.close.remote() for a in self.actors], timeout=60):
                    counters.update(part)
        except Exception:  # a dead actor must not hide the run's own error
            pass
        for a in self.actors:
            self.ray.kill(a)
        self.actors = []
        if self.started_ray:
            self.ray.shutdown()
            self.started_ray = False
        return dict(counters)


def make_executor(
    shards: int,
    scenario: ScenarioConfig,
    backend: BackendConfig,
    population: Population,
    address: str | None = None,
    shard_cpus: float = 1.0,
) -> Executor:
    if shards == 0:
        return InProcessExecutor(scenario, backend, population)
    return RayExecutor(shards, scenario, backend, population, address=address, shard_cpus=shard_cpus)
