"""Answers decision batches for the agents a process owns: scripted policies with numpy, LLM agents
through the backend. The same runner serves the in-process executor and every Ray shard."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.decisions import DecisionBatch, Decisions
from agents.population import Population, code_mask, is_llm, model_key
from agents.prompts import Prompter, PromptTemplate
from scenarios import ScenarioConfig, scenario_class
from sim.backends.config import BackendConfig


@dataclass(frozen=True)
class DecisionSetup:
    """Everything a process needs to answer decisions (shipped once to each Ray shard)."""

    scenario: ScenarioConfig
    templates: dict[str, PromptTemplate]
    backend: BackendConfig
    population: Population
    persona_fields: tuple[str, ...] | None = None
    transcripts: bool = True  # keep each model call's messages and reply for the transcripts table


Pending = tuple[Decisions, np.ndarray, DecisionBatch]  # (the batch's answers, where the part goes, the part)


class DecisionRunner:
    def __init__(self, setup: DecisionSetup) -> None:
        game = scenario_class(setup.scenario.name)(setup.scenario)
        self.scripted = game.strategies()
        self.prompter = Prompter(game, setup.templates, setup.population.personas, setup.persona_fields)
        self.policy_names = setup.population.policy_names
        self.llm_codes = setup.population.llm_codes()
        self._dtypes: dict[str, dict[str, np.dtype]] = {}
        self._group_cache: dict[str, tuple[np.ndarray, list[tuple[int, np.ndarray]]]] = {}
        self.backend = setup.backend
        self.transcripts = setup.transcripts
        self.population = setup.population
        self._llm: dict[str | None, Any] = {}  # one LLMPolicy per model (None: the default model)
        self._shared: Any = None  # per-endpoint caps the models share (sim.backends.client.SharedSlots)

    def _llm_policy(self, policy: str) -> Any:
        """The LLM policy of the model a language-model policy names ("llm", "llm@<key>")."""
        key = model_key(policy)
        if key not in self._llm:
            from sim.backends.client import SharedSlots
            from sim.backends.policy import LLMPolicy

            self._shared = self._shared or (SharedSlots(self.backend) if self.backend.models else None)
            model = self.backend.for_model(key)
            self._llm[key] = LLMPolicy(model, self.prompter, transcripts=self.transcripts, shared=self._shared)
        return self._llm[key]

    def needs_model(self, batches: list[DecisionBatch]) -> bool:
        """True when some decision in these batches belongs to a language-model agent."""
        return bool(len(self.llm_codes)) and any(
            code_mask(b.policies, self.llm_codes).any() for b in batches if b.policies is not None
        )

    def answer_scripted(self, batches: list[DecisionBatch]) -> tuple[list[Decisions], list[Pending]]:
        """Answer every scripted decision now; return the answers and the LLM parts still to ask.

        A scripted answer costs nothing and never fails, so only its values are written into the
        batch's (blank, zero-cost) answers; a batch of one scripted policy is answered as it is."""
        answers, pending = [], []
        for batch in batches:
            assert batch.policies is not None and batch.seeds is not None, "the scheduler fills these"
            groups = self._groups(batch)
            if len(groups) == 1 and not is_llm(self.policy_names[groups[0][0]]):
                name = self.policy_names[groups[0][0]]
                values = _checked(batch, name, self.scripted[name].decide(batch))
                answers.append(Decisions.scripted(self._typed(batch, values)))
                continue
            mix = self._mix(groups)
            if mix is not None:  # several scripted policies that answer a mixed batch in one pass
                names = {code: self.policy_names[code] for code, _ in groups}
                values = _checked(batch, "+".join(names.values()), mix(batch, names, batch.policies))
                answers.append(Decisions.scripted(self._typed(batch, values)))
                continue
            out = Decisions.empty(batch.spec, len(batch))
            for code, index in groups:
                name = self.policy_names[code]
                part = batch if len(index) == len(batch) else batch.take(index)
                if is_llm(name):
                    pending.append((out, index, part))
                    continue
                for key, column in _checked(batch, name, self.scripted[name].decide(part)).items():
                    out.values[key][index] = column
            answers.append(out)
        return answers, pending

    def _mix(self, groups: list[tuple[int, np.ndarray]]) -> Any:
        """`decide_mix(batch, names by code, codes)` when every policy of these groups is scripted and
        of one kind that offers it (see scenarios.ipd.IPDStrategy); else None."""
        names = [self.policy_names[code] for code, _ in groups]
        if any(is_llm(name) for name in names):
            return None
        kinds = {type(self.scripted[name]) for name in names}
        return getattr(kinds.pop(), "decide_mix", None) if len(kinds) == 1 else None

    def _groups(self, batch: DecisionBatch) -> list[tuple[int, np.ndarray]]:
        """`group_by_code` of the batch's policies, reused while a step's policies are those of the step
        before (most scenarios ask the same agents in the same order every step: a sort saved a step)."""
        assert batch.policies is not None
        cached = self._group_cache.get(batch.spec.name)
        if cached is not None and np.array_equal(cached[0], batch.policies):
            return cached[1]
        groups = group_by_code(batch.policies)
        self._group_cache[batch.spec.name] = (batch.policies.copy(), groups)
        return groups

    def _typed(self, batch: DecisionBatch, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A scripted policy's answers in the columns' own types (those of `Decisions.empty`)."""
        dtypes = self._dtypes.get(batch.spec.name)
        if dtypes is None:
            blank = Decisions.empty(batch.spec, 0).values
            dtypes = self._dtypes[batch.spec.name] = {k: v.dtype for k, v in blank.items()}
        return {key: np.asarray(column, dtype=dtypes[key]) for key, column in values.items()}

    async def decide(self, batches: list[DecisionBatch]) -> list[Decisions]:
        """Answer every batch; LLM requests of all batches run concurrently."""
        answers, pending = self.answer_scripted(batches)
        if pending:
            names = self.policy_names
            results = await asyncio.gather(
                *(self._llm_policy(names[int(part.policies[0])]).adecide(part) for _, _, part in pending)
            )
            for (out, index, _), answer in zip(pending, results, strict=True):
                out.put(index, answer)
        return answers

    async def aclose(self) -> dict[str, int]:
        """Close the backend; return its own counters (HTTP requests incl. retries, cache hits)."""
        totals: Counter[str] = Counter()
        for policy in self._llm.values():
            await policy.aclose()
            totals.update(policy.totals())
        return dict(totals)


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
