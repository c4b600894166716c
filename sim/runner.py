"""Answers decision batches for the agents a process owns: scripted policies with numpy, LLM agents
through the backend. The same runner serves the in-process executor and every Ray shard."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from agents.decisions import DecisionBatch, Decisions
from agents.population import Population
from scenarios import ScenarioConfig, scenario_class
from sim.backends.config import BackendConfig

LLM = "llm"


class DecisionRunner:
    def __init__(self, scenario: ScenarioConfig, backend: BackendConfig, population: Population) -> None:
        self.scripted = scenario_class(scenario.name)(scenario).policies()  # type: ignore[attr-defined]
        self.policy_names = population.policy_names
        self.backend = backend
        self.population = population
        self._llm: Any = None

    def _llm_policy(self) -> Any:
        if self._llm is None:
            from sim.backends.policy import LLMPolicy

            self._llm = LLMPolicy(self.backend, self.population)
        return self._llm

    async def decide(self, batches: list[DecisionBatch]) -> list[Decisions]:
        """Answer every batch; LLM requests of all batches run concurrently."""
        answers, pending = [], []
        for batch in batches:
            assert batch.policies is not None and batch.seeds is not None, "the scheduler fills these"
            out = Decisions.empty(batch.spec, len(batch))
            for code, index in group_by_code(batch.policies):
                name = self.policy_names[code]
                part = batch if len(index) == len(batch) else batch.take(index)
                if name == LLM:
                    pending.append((out, index, self._llm_policy().adecide(part)))
                else:
                    out.put(index, Decisions.scripted(_checked(batch, name, self.scripted[name].decide(part))))
            answers.append(out)
        if pending:
            results = await asyncio.gather(*(coro for _, _, coro in pending))
            for (out, index, _), part in zip(pending, results, strict=True):
                out.put(index, part)
        return answers

    async def aclose(self) -> dict[str, int]:
        """Close the backend; return its own counters (HTTP requests incl. retries, cache hits)."""
        if self._llm is None:
            return {}
        await self._llm.aclose()
        return dict(self._llm.totals())


def group_by_code(codes: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(code, indices) for every code present, indices in order; small non-negative int codes."""
    counts = np.bincount(codes)
    present = np.flatnonzero(counts)
    if len(present) == 1:
        return [(int(present[0]), np.arange(len(codes)))]
    order = np.argsort(codes, kind="stable")
    ends = np.cumsum(counts)
    return [(int(c), order[ends[c] - counts[c] : ends[c]]) for c in present]


def _checked(batch: DecisionBatch, policy: str, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A scripted policy must answer every field of the spec; a wrong shape is a bug worth naming."""
    expected = {f.name for f in batch.spec.fields}
    if set(values) != expected:
        raise RuntimeError(
            f"policy {policy!r} answered fields {sorted(values)} for {batch.spec.name}, expected {sorted(expected)}"
        )
    return values
