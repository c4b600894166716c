"""The LLM policy: a DecisionBatch becomes one chat request per decision, all sent concurrently, and
the replies become Decisions. A bad reply or a dead server never stops the run: after retries the
decision takes the spec's fallback and records why.

Each request carries `seed % 2**31` from the decision's seed, and its answer is cached under a key
of everything that shapes it, so the same seed gives the same actions live or from the cache.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import openai

from agents.decisions import ActionSpec, ActionSpecError, DecisionBatch, Decisions
from agents.prompts import Prompter
from sim.backends.cache import CachedResponse, ResponseCache, request_key
from sim.backends.client import EndpointPool
from sim.backends.config import BackendConfig
from sim.backends.errors import BackendError

_log = logging.getLogger(__name__)
_SEED_MOD = 2**31  # vLLM and OpenAI take a signed 32-bit seed
_MASK64 = (1 << 64) - 1
# Failures after the client's own retries: the decision falls back at once.
_FATAL = ("timeout", "connection", "server_error", "rejected")
Bounds = dict[str, tuple[float, float]]  # per-decision [lo, hi] of number fields
Messages = list[dict[str, str]]


def attempt_seed(seed: int, attempt: int) -> int:
    """Request seed of the attempt-th ask for one decision (attempt 0 uses the decision's own seed)."""
    if attempt:
        seed = ((seed ^ (attempt * 0x9E3779B97F4A7C15)) * 0xBF58476D1CE4E5B9) & _MASK64
    return seed % _SEED_MOD


@dataclass
class _Answer:
    values: dict[str, Any]
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = True
    fallback: str | None = None


class LLMPolicy:
    """Answers decisions with an OpenAI-compatible model. One instance per process (shard).

    Use `await adecide(batch)` from async code, or `decide(batch)` from sync code (a private event
    loop); finish with `aclose()` / `close()`. `totals()` gives what only the policy sees: HTTP
    requests (retries included), cache hits and the tokens they cost. Per-decision facts (fallbacks,
    tokens per answer) are in the returned Decisions, and the engine totals those from the rows."""

    def __init__(self, config: BackendConfig, prompter: Prompter) -> None:
        if config.kind == "none":
            raise BackendError("population has llm agents but backend is none; choose backend=vllm or openai")
        self.config = config
        self.prompter = prompter
        self._cache = ResponseCache(config.resolved_cache_dir()) if config.cache else None
        self._pool: EndpointPool | None = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None
        self._runner: asyncio.Runner | None = None
        self._totals: Counter[str] = Counter()
        self._warned: set[str] = set()

    # ---- public API -------------------------------------------------------------------------
    async def adecide(self, batch: DecisionBatch) -> Decisions:
        spec, n = batch.spec, len(batch)
        out = Decisions.empty(spec, n)
        if n == 0:
            return out
        if batch.seeds is None:
            raise RuntimeError("batch.seeds must be filled in by the scheduler before the LLM policy runs")
        upper = {name: np.asarray(col, dtype=np.float64) for name, col in batch.bounds.items()}
        asks = []
        for i, messages in enumerate(self.prompter.batch(batch)):
            bounds = {name: (spec.field(name).minimum, float(col[i])) for name, col in upper.items()}
            asks.append((messages, int(batch.seeds[i]), bounds))
        try:
            answers = await asyncio.gather(*(self._decide_one(spec, *ask) for ask in asks))
        finally:
            if self._cache is not None:
                self._cache.flush()
        for i, answer in enumerate(answers):
            for name, value in answer.values.items():
                out.values[name][i] = value
            out.latency_ms[i] = answer.latency_ms
            out.prompt_tokens[i] = answer.prompt_tokens
            out.completion_tokens[i] = answer.completion_tokens
            out.cached[i] = answer.cached
            out.fallback[i] = answer.fallback
        return out

    def decide(self, batch: DecisionBatch) -> Decisions:
        """Sync form of `adecide`, on an event loop kept for this policy's lifetime."""
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(self.adecide(batch))

    async def aclose(self) -> None:
        if self._pool is not None and self._pool_loop is asyncio.get_running_loop():
            await self._pool.aclose()
        self._pool = None
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    def close(self) -> None:
        """Sync form of `aclose`."""
        if self._runner is not None:
            self._runner.run(self.aclose())
            self._runner.close()
            self._runner = None
        else:
            asyncio.run(self.aclose())

    def totals(self) -> dict[str, int]:
        """calls (HTTP requests), cache_hits, prompt/completion tokens of the calls."""
        return dict(self._totals)

    # ---- one decision -----------------------------------------------------------------------
    def request(self, spec: ActionSpec, messages: Messages, seed: int, bounds: Bounds) -> dict[str, Any]:
        """The chat-completion arguments for one ask (also the cache key's content)."""
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "temperature": self.config.temperature if spec.temperature is None else spec.temperature,
            "max_tokens": spec.max_tokens,
            "seed": seed,
        }
        if spec.is_single_choice and self.config.choice_format == "vllm_choice":
            body["extra_body"] = {"structured_outputs": {"choice": list(spec.fields[0].options)}}
        else:
            schema = spec.json_schema()
            for name, (_, hi) in bounds.items():  # tighten to this decision's limit
                prop = schema["properties"][name]
                prop["maximum"] = min(prop["maximum"], hi)
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": spec.name, "schema": schema, "strict": True},
            }
        return body

    def parse(self, spec: ActionSpec, content: str, bounds: Bounds) -> dict[str, Any]:
        """Reply text -> canonical values. Raises ActionSpecError or ValueError when it does not fit."""
        if spec.is_single_choice and self.config.choice_format == "vllm_choice":
            reply: Any = {spec.fields[0].name: content.strip()}
        else:
            reply = json.loads(content, strict=False)  # xgrammar lets raw control chars into strings
        return spec.validate_reply(reply, bounds=bounds or None)

    async def _decide_one(self, spec: ActionSpec, messages: Messages, seed: int, bounds: Bounds) -> _Answer:
        answer = _Answer(values={})
        reason = "invalid_reply"
        for attempt in range(1 + self.config.invalid_retries):
            body = self.request(spec, messages, attempt_seed(seed, attempt), bounds)
            response, cached, latency_ms = await self._call(body)
            answer.latency_ms += latency_ms
            answer.prompt_tokens += response.prompt_tokens
            answer.completion_tokens += response.completion_tokens
            answer.cached = answer.cached and cached
            if response.error in _FATAL:
                reason = response.error
                break
            if response.content is not None:
                try:
                    answer.values = self.parse(spec, response.content, bounds)
                    return answer
                except (ActionSpecError, ValueError):
                    pass
        # no answer: never a substantive default (an empty reply of each field's kind, flagged)
        answer.values = {name: column[0] for name, column in Decisions.empty(spec, 1).values.items()}
        answer.fallback = reason
        return answer

    async def _call(self, body: dict[str, Any]) -> tuple[CachedResponse, bool, float]:
        """One ask: from the cache when it holds the answer, else from the server (then cached)."""
        key = request_key(body)
        if self._cache is not None:
            hit = self._cache.get(key)
            if hit is not None and (hit.error is None or self.config.mode == "replay"):
                self._totals["cache_hits"] += 1
                return hit, True, 0.0
        if self.config.mode == "replay":
            where = self._cache.path if self._cache else "(no cache)"
            raise BackendError(
                f"replay: no cached response in {where} for model {self.config.model!r}, seed {body['seed']} "
                "(rerun live first, or with the same config and seed)"
            )
        response, latency_ms = await self._ask_server(body)
        self._totals["calls"] += 1
        self._totals["prompt_tokens"] += response.prompt_tokens
        self._totals["completion_tokens"] += response.completion_tokens
        if self._cache is not None:
            self._cache.put(key, response)
        return response, False, latency_ms

    async def _ask_server(self, body: dict[str, Any]) -> tuple[CachedResponse, float]:
        pool = self._pool_for_this_loop()
        async with pool.client() as client:
            start = time.perf_counter()
            try:
                completion = await client.chat.completions.create(**body)
                content = completion.choices[0].message.content if completion.choices else None
                usage = completion.usage
                response = CachedResponse(
                    content=content,
                    error=None if content is not None else "malformed",
                    prompt_tokens=int(usage.prompt_tokens) if usage else 0,
                    completion_tokens=int(usage.completion_tokens) if usage else 0,
                )
            except Exception as exc:
                response = CachedResponse(None, self._failure(exc), 0, 0)
            return response, (time.perf_counter() - start) * 1000.0

    def _failure(self, exc: Exception) -> str:
        """Name a failed call (the fallback reason); say once per reason what the server said."""
        if isinstance(exc, openai.APITimeoutError):
            reason = "timeout"
        elif isinstance(exc, openai.APIConnectionError):
            reason = "connection"
        elif isinstance(exc, openai.APIStatusError):
            # 4xx: the server refused this request (e.g. prompt longer than --max-model-len).
            reason = "server_error" if exc.status_code >= 500 else "rejected"
        elif isinstance(exc, (openai.APIResponseValidationError, ValueError, AttributeError, TypeError, IndexError)):
            reason = "malformed"  # a 200 whose body is not a chat completion: asked again
        elif isinstance(exc, (openai.OpenAIError, httpx.HTTPError)):
            reason = "server_error"
        else:
            raise exc
        if reason not in self._warned:
            self._warned.add(reason)
            _log.warning("LLM call failed (%s, later ones of this kind not shown): %s", reason, str(exc)[:300])
        return reason

    def _pool_for_this_loop(self) -> EndpointPool:
        """HTTP clients belong to one event loop; a caller that uses a new loop per step gets new ones."""
        loop = asyncio.get_running_loop()
        if self._pool is None or self._pool_loop is not loop:
            self._pool = EndpointPool(self.config)
            self._pool_loop = loop
        return self._pool
