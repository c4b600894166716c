"""Where decisions are computed: in this process, or on K Ray actors that each own a slice of agents.

Both run the same DecisionRunner; the driver keeps the world (the public state), so a step's result
does not depend on the executor: decisions carry their own seeds, and batches are split and merged
by index.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections import Counter
from typing import Protocol

import numpy as np

from agents.decisions import DecisionBatch, Decisions
from sim.ray_runtime import HeldStderr, ShardError, connect, one_line
from sim.runner import DecisionRunner, DecisionSetup, group_by_code

__all__ = ["Executor", "InProcessExecutor", "RayExecutor", "ShardError", "ShardLost", "make_executor"]


class ShardLost(RuntimeError):
    """A shard actor died and Ray's restarts and task retries did not bring its answers back."""


class Executor(Protocol):
    def decide(self, batches: list[DecisionBatch]) -> list[Decisions]: ...

    def restart(self) -> None:
        """Replace lost workers (after ShardLost), so the run can replay from its last checkpoint."""
        ...

    def close(self) -> dict[str, int]:
        """Release shards and clients; return the backend counters summed over them. Idempotent."""
        ...


class InProcessExecutor:
    """run.shards=0: decide in the driver process, on one persistent event loop (LLM clients keep
    their connection pools) that runs in its own thread, so callers that already run a loop
    (Jupyter, async apps) can call `run()` too."""

    def __init__(self, setup: DecisionSetup) -> None:
        self.runner = DecisionRunner(setup)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="socsim-decisions", daemon=True)
        self.thread.start()

    def decide(self, batches: list[DecisionBatch]) -> list[Decisions]:
        if not self.runner.needs_model(batches):  # numpy only: no hop to the event loop's thread
            return self.runner.answer_scripted(batches)[0]
        future = asyncio.run_coroutine_threadsafe(self.runner.decide(batches), self.loop)
        try:
            return future.result()
        except BaseException:  # a stop signal abandons the step: its requests are cancelled
            future.cancel()
            raise

    def restart(self) -> None:
        """Nothing to replace: the decisions run in this process."""

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

    def __init__(self, setup: DecisionSetup, lo: int, hi: int):
        self.lo, self.hi = lo, hi
        self.runner = DecisionRunner(setup)

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
    """run.shards=K: K actors, agent slices by id; each step submits all shards, then one ray.get.

    A shard keeps no simulation state, so Ray may restart it freely: each actor is restarted up to
    `restarts` times (`max_restarts`), and a task that was in flight when its worker died is retried
    on the restarted actor (`max_task_retries`); decisions carry their seeds, so a retried task gives
    the same answers. When that is not enough, `decide` raises ShardLost; the step loop then calls
    `restart()` (fresh actors) and replays from the last checkpoint."""

    LOST = ("RayActorError", "WorkerCrashedError", "ObjectLostError", "NodeDiedError")

    def __init__(
        self,
        shards: int,
        setup: DecisionSetup,
        address: str | None = None,
        shard_cpus: float = 1.0,
        start_timeout_s: float = 300.0,
        restarts: int = 3,
    ) -> None:
        import ray

        self.ray = ray
        self.restarts = restarts
        self.lost_errors = tuple(getattr(ray.exceptions, name) for name in self.LOST)
        self.actors: list = []
        self.started_ray = False
        with HeldStderr() as held:
            try:
                self.started_ray = connect(address, shards * shard_cpus, held)
                cpus = self._start_shards(shards, shard_cpus, setup, start_timeout_s)
            except ShardError:
                self.close()  # still holding: what Ray prints about the failure goes with it
                raise
        own_runtime = self.started_ray and not address
        where = "a local Ray runtime" if own_runtime else f"the Ray cluster at {ray.get_runtime_context().gcs_address}"
        print(f"socsim: {shards} shards on {where} ({cpus:g} CPUs)", file=sys.stderr)

    def _start_shards(self, shards: int, shard_cpus: float, setup: DecisionSetup, start_timeout_s: float) -> float:
        """Create the actors and wait until each is ready; returns the cluster's CPU count."""
        ray = self.ray
        cpus = ray.cluster_resources().get("CPU", 0.0)
        if shards * shard_cpus > cpus:
            raise ShardError(
                f"run.shards={shards} x run.shard_cpus={shard_cpus} needs {shards * shard_cpus:g} CPUs "
                f"but the Ray cluster has {cpus:g}; lower run.shards or run.shard_cpus"
            )
        n = setup.population.size
        self.bounds = np.linspace(0, n, shards + 1).round().astype(np.int64)
        self.actor_class = ray.remote(num_cpus=shard_cpus, max_restarts=self.restarts,
                                      max_task_retries=self.restarts)(Shard)  # fmt: skip
        self.shared = ray.put(setup)
        self.start_timeout_s, self.shard_cpus = start_timeout_s, shard_cpus
        self._spawn()
        return cpus

    def _spawn(self) -> None:
        """One actor per agent slice, waited for until ready."""
        ray, shards, shard_cpus, start_timeout_s = self.ray, len(self.bounds) - 1, self.shard_cpus, self.start_timeout_s
        self.actors = [
            self.actor_class.remote(self.shared, int(lo), int(hi))
            for lo, hi in zip(self.bounds[:-1], self.bounds[1:], strict=True)
        ]
        try:
            ray.get([a.ready.remote() for a in self.actors], timeout=start_timeout_s)
        except ray.exceptions.GetTimeoutError:
            raise ShardError(
                f"Ray could not start {shards} shard actors with {shard_cpus} CPU each within {start_timeout_s:.0f} s; "
                "lower run.shards or run.shard_cpus"
            ) from None
        except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as exc:
            died = "run.shards: a shard actor died while starting on the Ray cluster"
            raise ShardError(f"{died}: {one_line(exc)}") from None

    def restart(self) -> None:
        """Fresh actors for every slice (the old ones are killed): after ShardLost."""
        for a in self.actors:
            self.ray.kill(a, no_restart=True)
        self._spawn()

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
        try:
            results = dict(zip(refs, self.ray.get(list(refs.values())), strict=True))
        except self.lost_errors as exc:
            raise ShardLost(f"a shard actor was lost ({type(exc).__name__})") from exc
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
    shards: int, setup: DecisionSetup, address: str | None = None, shard_cpus: float = 1.0, restarts: int = 3
) -> Executor:
    if shards == 0:
        return InProcessExecutor(setup)
    return RayExecutor(shards, setup, address=address, shard_cpus=shard_cpus, restarts=restarts)
