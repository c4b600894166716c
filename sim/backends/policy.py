"""The LLM policy: a DecisionBatch becomes one chat request per decision, asked concurrently, and the
replies become Decisions.

A decision that cannot be obtained (the openai client's retries spent, the re-asks for replies
that do not fit the spec spent) is returned as missing, with the reason, never as a move the agent
did not make; the engine decides what a missing decision does to the run (`backend.on_failure`).
A server that refuses every connection is waited for (outage.py), then `BackendOutage` is raised.

Each request carries `seed % 2**31` from the decision's seed, and its answer is cached under the
hash of the request as sent, so the same seed gives the same actions live or from the cache.
Every decision also returns its transcript: the messages as sent (JSON), the raw reply, the HTTP
attempts it took, tokens, latency and whether it came from the cache.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import openai

from agents.decisions import ActionSpec, ActionSpecError, DecisionBatch, Decisions
from agents.prompts import Prompter
from sim.backends.cache import CachedResponse, ResponseCache, canonical_json, request_key
from sim.backends.client import EndpointPool, SharedSlots
from sim.backends.config import BackendConfig
from sim.backends.errors import BackendError, BackendOutage
from sim.backends.loops import new_event_loop
from sim.backends.outage import OutageWatch
from sim.backends.redact import redact_text
from sim.backends.transport import CURRENT_TALLY, Tally

_log = logging.getLogger(__name__)
_SEED_MOD = 2**31  # vLLM and OpenAI take a signed 32-bit seed
_MASK64 = (1 << 64) - 1
# Failures after the client's own retries that a re-ask with a new seed would not cure.
FATAL = frozenset({"timeout", "connection", "server_error", "rate_limited", "rejected", "context_length"})
# Every fallback_reason a missing decision can carry. Re-asks: an invalid reply is asked again with a
# new seed, a malformed body with the same request; "outage": not asked before BackendOutage.
REASONS = (*sorted(FATAL), "invalid_reply", "malformed", "outage")
_MAX_OUTAGE_RESUMES = 3  # asks of one decision interrupted by outages before it counts as failed
_MESSAGES_SLOT = '"messages":0'
_SEED_SLOT = '"seed":0'
Bounds = dict[str, tuple[float, float]]  # per-decision [lo, hi] of number fields
Messages = list[dict[str, str]]


def attempt_seed(seed: int, attempt: int) -> int:
    """Request seed of the attempt-th ask for one decision (attempt 0 uses the decision's own seed)."""
    if attempt:
        seed = ((seed ^ (attempt * 0x9E3779B97F4A7C15)) * 0xBF58476D1CE4E5B9) & _MASK64
    return seed % _SEED_MOD


def _with_messages(fields: dict[str, Any], seed: Any) -> dict[str, Any]:
    """The body's key order, the same on every path: the fields, then the messages, then the seed."""
    return {**{k: v for k, v in fields.items() if k != "seed"}, "messages": 0, "seed": seed}


def json_overhead(spec: ActionSpec, choice_format: str) -> int:
    """Tokens a JSON reply needs beyond the spec's own answer: a single choice the spec sizes for a
    bare option (two tokens for "J") must fit `{"move": "J"}` when it is asked as a JSON schema."""
    as_bare_choice = spec.is_single_choice and choice_format == "vllm_choice"
    if spec.is_free_text or as_bare_choice or not spec.is_single_choice:
        return 0
    return 8 + len(spec.fields[0].name)


def encode_body(fields: dict[str, Any], messages_json: str) -> bytes:
    """The request body as sent and hashed: `fields` plus the messages, already serialised once."""
    text = canonical_json(_with_messages(fields, fields["seed"]))
    return text.replace(_MESSAGES_SLOT, '"messages":' + messages_json, 1).encode()


class BodyTemplate:
    """The serialised request of a batch's decisions with the messages and seed left open: a batch
    without per-decision bounds serialises its constant fields once (what `encode_body` gives, faster)."""

    def __init__(self, fields: dict[str, Any]) -> None:
        text = canonical_json(_with_messages(fields, 0))
        head, rest = text.split(_MESSAGES_SLOT, 1)
        middle, tail = rest.split(_SEED_SLOT, 1)
        self.head, self.middle, self.tail = head + '"messages":', middle + '"seed":', tail

    def body(self, messages_json: str, seed: int) -> bytes:
        return f"{self.head}{messages_json}{self.middle}{seed}{self.tail}".encode()


@dataclass(slots=True)
class _Job:
    messages_json: str
    seed: int
    bounds: Bounds
    template: BodyTemplate | None  # the batch's, when it has no per-decision bounds
    body: bytes = b""  # the first ask's body and cache key (later asks have their own seeds)
    key: str = ""


@dataclass(slots=True)
class _Answer:
    values: dict[str, Any] | None = None  # None: missing
    reason: str | None = None
    reply: str | None = None
    attempts: int = 0
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = True


class LLMPolicy:
    """Answers decisions with an OpenAI-compatible model. One instance per process (shard).

    Use `await adecide(batch)` from async code, or `decide(batch)` from sync code (a private event
    loop); finish with `aclose()` / `close()`. `transcripts=False` leaves the messages and reply
    columns of the Decisions empty (run.record_transcripts=false). `totals()` gives what only the
    policy sees: asks sent, HTTP attempts (retries included) and failed attempts by outcome, cache
    hits and tokens. Per-decision facts (missing and why, tokens) are in the returned Decisions."""

    def __init__(
        self, config: BackendConfig, prompter: Prompter, transcripts: bool = True, shared: SharedSlots | None = None
    ) -> None:
        if config.kind == "none":
            raise BackendError("population has llm agents but backend is none; choose backend=vllm or openai")
        self.config = config
        self.prompter = prompter
        self.transcripts = transcripts
        self._shared = shared  # endpoint caps shared with the process's other models (backend.models)
        self._cache = ResponseCache(config.resolved_cache_dir()) if config.cache else None
        self._pool: EndpointPool | None = None
        self._watch: OutageWatch | None = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None
        self._runner: asyncio.Runner | None = None
        self._totals: Counter[str] = Counter()
        self._warned: set[str] = set()

    # ---- public API -------------------------------------------------------------------------
    async def adecide(self, batch: DecisionBatch) -> Decisions:
        """Answer every decision of the batch; raises BackendOutage (with the partial answers) when
        the server stays down, BackendError on a replay miss."""
        spec, n = batch.spec, len(batch)
        if n == 0:
            return Decisions.unanswered(spec, 0)
        if batch.seeds is None:
            raise RuntimeError("batch.seeds must be filled in by the scheduler before the LLM policy runs")
        jobs = self._jobs(batch)
        answers: list[_Answer | None] = [None] * n
        try:
            await self._answer_all(spec, jobs, answers)
        except BackendOutage as exc:
            raise BackendOutage(exc.reason, self._decisions(spec, jobs, answers, unanswered="outage")) from None
        finally:
            if self._cache is not None:
                self._cache.flush()
        return self._decisions(spec, jobs, answers)

    def decide(self, batch: DecisionBatch) -> Decisions:
        """Sync form of `adecide`, on an event loop kept for this policy's lifetime."""
        if self._runner is None:
            self._runner = asyncio.Runner(loop_factory=new_event_loop)
        return self._runner.run(self.adecide(batch))

    async def aclose(self) -> None:
        if self._pool is not None and self._pool_loop is asyncio.get_running_loop():
            await self._pool.aclose()
        self._pool = self._watch = None
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
        """calls (asks sent to a server), http_requests (HTTP attempts, client retries included),
        http_failed.<outcome> (failed attempts: status_500, status_429, timeout, refused, dropped),
        cache_hits, outages, and the prompt/completion tokens of the calls."""
        return dict(self._totals)

    def request(self, spec: ActionSpec, seed: int, bounds: Bounds) -> dict[str, Any]:
        """The chat-completion fields of one ask, all but the messages (also the cache key's content)."""
        fields: dict[str, Any] = {
            "model": self.config.model,
            "temperature": self.config.temperature if spec.temperature is None else spec.temperature,
            "max_tokens": spec.max_tokens + self._json_overhead(spec),
            "seed": seed,
        }
        if spec.is_free_text:  # the papers' free completion: no structured outputs at all
            pass
        elif spec.is_single_choice and self.config.choice_format == "vllm_choice":
            fields["structured_outputs"] = {"choice": list(spec.fields[0].options)}
        else:
            schema = spec.json_schema()
            for name, (_, hi) in bounds.items():  # tighten to this decision's limit
                prop = schema["properties"][name]
                prop["maximum"] = min(prop["maximum"], hi)
            fields["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": spec.name, "schema": schema, "strict": True},
            }
        return fields

    def _json_overhead(self, spec: ActionSpec) -> int:
        return json_overhead(spec, self.config.choice_format)

    def parse(self, spec: ActionSpec, content: str, bounds: Bounds) -> dict[str, Any]:
        """Reply text -> canonical values. Raises ActionSpecError or ValueError when it does not fit."""
        if spec.is_free_text:
            return spec.parse_free_text(content, bounds or None)
        if spec.is_single_choice and self.config.choice_format == "vllm_choice":
            reply: Any = {spec.fields[0].name: content.strip()}
        else:
            reply = json.loads(content, strict=False)  # xgrammar lets raw control chars into strings
        return spec.validate_reply(reply, bounds=bounds or None)

    # ---- a batch ----------------------------------------------------------------------------
    def _jobs(self, batch: DecisionBatch) -> list[_Job]:
        spec = batch.spec
        upper = {name: np.asarray(col, dtype=np.float64) for name, col in batch.bounds.items()}
        template = None  # one per batch: batches of several specs may be answered concurrently
        if not upper:
            fields = self.request(spec, 0, {})
            template = BodyTemplate(fields)
            if template.body("[]", 1) != encode_body({**fields, "seed": 1}, "[]"):  # a field that reads like a slot
                template = None
        jobs = []
        for i, messages in enumerate(self.prompter.batch(batch)):
            seed = int(batch.seeds[i])  # type: ignore[index]
            bounds = {name: (spec.field(name).minimum, float(col[i])) for name, col in upper.items()}
            job = _Job(canonical_json(messages), seed, bounds, template)
            job.body, job.key = self._body(spec, job, 0)
            jobs.append(job)
        return jobs

    async def _answer_all(self, spec: ActionSpec, jobs: list[_Job], answers: list[_Answer | None]) -> None:
        """Workers (max_concurrency per endpoint) take decisions in order until none is left: a
        faster endpoint comes back sooner and so answers more of them."""
        prefetched = self._cache.get_many([job.key for job in jobs]) if self._cache is not None else {}
        order = iter(range(len(jobs)))
        if self.config.mode == "replay":
            endpoints, limit = 1, 1  # answers come from the cache: nothing to wait for, one worker
        else:
            pool = self._pool_for_this_loop()
            endpoints, limit = len(pool), pool.limit

        async def work(endpoint: int) -> None:
            for i in order:
                answers[i] = await self._decide_one(spec, jobs[i], endpoint, prefetched)

        workers = [asyncio.create_task(work(w % endpoints)) for w in range(min(len(jobs), endpoints * limit))]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise

    def _decisions(
        self, spec: ActionSpec, jobs: list[_Job], answers: list[_Answer | None], unanswered: str = "not_asked"
    ) -> Decisions:
        out = Decisions.unanswered(spec, len(jobs))
        names = [f.name for f in spec.fields]
        columns = [out.values[name] for name in names]
        for i, answer in enumerate(answers):
            if answer is None:
                out.fallback_reason[i] = unanswered
                continue
            if answer.values is not None:
                for name, column in zip(names, columns, strict=True):
                    column[i] = answer.values[name]
                out.missing[i] = False
            else:
                out.fallback_reason[i] = answer.reason
            out.latency_ms[i] = answer.latency_ms
            out.prompt_tokens[i] = answer.prompt_tokens
            out.completion_tokens[i] = answer.completion_tokens
            out.cached[i] = answer.cached
            out.attempts[i] = answer.attempts
        if self.transcripts:
            out.messages = np.array([job.messages_json for job in jobs], dtype=object)
            out.reply = np.array([None if a is None else a.reply for a in answers], dtype=object)
        return out

    # ---- one decision -----------------------------------------------------------------------
    def _body(self, spec: ActionSpec, job: _Job, attempt: int) -> tuple[bytes, str]:
        if attempt == 0 and job.key:
            return job.body, job.key
        seed = attempt_seed(job.seed, attempt)
        if job.template is not None:
            body = job.template.body(job.messages_json, seed)
        else:
            body = encode_body(self.request(spec, seed, job.bounds), job.messages_json)
        return body, request_key(body)

    async def _decide_one(
        self, spec: ActionSpec, job: _Job, endpoint: int, prefetched: dict[str, CachedResponse]
    ) -> _Answer:
        answer = _Answer()
        tally = Tally()
        token = CURRENT_TALLY.set(tally)
        seed_attempt = 0  # a new seed only after an invalid reply: a malformed body is asked again as it was
        try:
            for _ in range(1 + self.config.invalid_retries):
                body, key = self._body(spec, job, seed_attempt)
                hit = None
                if self._cache is not None:
                    hit = prefetched.get(key) if key == job.key else self._cache.get(key)
                response, cached, latency_ms = await self._call(body, key, endpoint, hit)
                answer.latency_ms += latency_ms
                answer.prompt_tokens += response.prompt_tokens
                answer.completion_tokens += response.completion_tokens
                answer.cached = answer.cached and cached
                answer.reply = response.content
                answer.reason = response.error
                if response.error in FATAL:
                    break
                if response.content is not None:
                    try:
                        answer.values = self.parse(spec, response.content, job.bounds)
                        answer.reason = None
                        break
                    except (ActionSpecError, ValueError):
                        answer.reason = "invalid_reply"
                        seed_attempt += 1
        finally:
            CURRENT_TALLY.reset(token)
        answer.attempts = tally.attempts
        return answer

    async def _call(
        self, body: bytes, key: str, endpoint: int, hit: CachedResponse | None
    ) -> tuple[CachedResponse, bool, float]:
        """One ask: from the cache when it holds the answer (`hit`), else from the server (then cached).
        A cached failure is reused only by replay; a live run asks again."""
        replay = self.config.mode == "replay"
        if hit is not None and (hit.error is None or replay):
            self._totals["cache_hits"] += 1
            return hit, True, 0.0
        if replay:
            where = self._cache.path if self._cache else "(no cache)"
            seed = json.loads(body)["seed"]
            raise BackendError(
                f"replay: no cached response in {where} for model {self.config.model!r}, seed {seed} "
                "(rerun live first, or with the same config and seed)"
            )
        response, latency_ms = await self._ask_server(body, endpoint)
        totals = self._totals
        totals["calls"] += 1
        totals["prompt_tokens"] += response.prompt_tokens
        totals["completion_tokens"] += response.completion_tokens
        if self._cache is not None:
            self._cache.put(key, response)
        return response, False, latency_ms

    async def _ask_server(self, body: bytes, endpoint: int) -> tuple[CachedResponse, float]:
        pool, watch = self._pool_for_this_loop(), self._watch
        assert watch is not None
        resumes = 0
        while True:
            await watch.hold()
            asked_at, start = time.monotonic(), time.perf_counter()
            try:
                response = await pool.ask(endpoint, body)
            except openai.APITimeoutError as exc:
                response = CachedResponse(None, self._failure(exc))
            except openai.APIConnectionError as exc:
                if resumes < _MAX_OUTAGE_RESUMES and await watch.overlapped(asked_at):
                    resumes += 1
                    self._totals["outage_resumes"] += 1
                    continue
                response = CachedResponse(None, self._failure(exc))
            except openai.OpenAIError as exc:
                response = CachedResponse(None, self._failure(exc))
            return response, (time.perf_counter() - start) * 1000.0

    def _failure(self, exc: Exception) -> str:
        """Name a failed ask (the decision's fallback_reason); say once per reason what the server said."""
        if isinstance(exc, openai.APITimeoutError):
            reason = "timeout"
        elif isinstance(exc, openai.APIConnectionError):
            reason = "connection"
        elif isinstance(exc, openai.RateLimitError):
            reason = "rate_limited"
        elif isinstance(exc, openai.APIStatusError):
            if exc.status_code >= 500:
                reason = "server_error"
            elif "context length" in str(exc).lower() or "max_model_len" in str(exc).lower():
                reason = "context_length"  # vLLM: the prompt plus max_tokens exceed the model's context
            else:
                reason = "rejected"  # 4xx: the server refused this request
        else:
            reason = "server_error"
        if reason not in self._warned:
            self._warned.add(reason)
            _log.warning(
                "LLM call failed (%s; later ones of this kind not shown): %s", reason, redact_text(str(exc))[:300]
            )
        return reason

    def _pool_for_this_loop(self) -> EndpointPool:
        """HTTP clients belong to one event loop; a caller that uses a new loop per step gets new ones."""
        loop = asyncio.get_running_loop()
        if self._pool is None or self._pool_loop is not loop:
            self._pool = EndpointPool(self.config, self._totals, self._shared)
            self._watch = OutageWatch(self._pool, self.config.outage_timeout_s)
            self._pool_loop = loop
        return self._pool
