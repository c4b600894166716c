"""Context pre-check: before the first request, the longest prompt of each kind of decision is
counted against the model's context, so a run whose prompts cannot fit stops before it starts
with one line naming the parameter that makes them long (instead of the server rejecting them,
one by one, mid-run).

vLLM gives both numbers: `max_model_len` in GET /v1/models and the prompt's token count (chat
template applied) at POST /tokenize with `{"model", "messages", "add_generation_prompt": true}`.
A server without /tokenize (OpenAI's API) gets an estimate instead, and the check says so: one token
per 3 characters of message text plus 4 per message, which over-counts English text for the BPE
tokenizers of current models (about 4 characters per token), so it errs towards refusing.
A server that lists no `max_model_len` (OpenAI's API) cannot be checked; the check says that too.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import httpx

from sim.backends.client import api_key
from sim.backends.config import BackendConfig
from sim.backends.errors import BackendError
from sim.backends.redact import redact_url

_log = logging.getLogger(__name__)
_TIMEOUT_S = 10.0
CHARS_PER_TOKEN = 3  # the estimate's characters per token (see the module docstring)
TOKENS_PER_MESSAGE = 4  # role markers and separators of a chat template, per message


@dataclass(frozen=True)
class PromptSample:
    """The longest prompt a scenario can produce for one kind of decision."""

    kind: str  # the ActionSpec name
    messages: list[dict[str, str]]
    max_tokens: int  # the spec's max_tokens: the reply must fit too
    parameter: str  # the config field that makes this prompt long, e.g. "scenario.rounds"


@dataclass(frozen=True)
class PromptFit:
    kind: str
    prompt_tokens: int
    max_tokens: int
    max_model_len: int | None
    counted_by: str  # "tokenize" (the server's tokenizer) or "estimate"

    @property
    def fits(self) -> bool:
        return self.max_model_len is None or self.prompt_tokens + self.max_tokens <= self.max_model_len


def _root(base_url: str) -> str:
    return base_url.rstrip("/").removesuffix("/v1")


def max_model_len(base_url: str, model: str, key: str) -> int | None:
    """The served model's context length from GET /v1/models (vLLM lists it), None if not listed."""
    response = httpx.get(
        f"{base_url.rstrip('/')}/models", headers={"Authorization": f"Bearer {key}"}, timeout=_TIMEOUT_S
    )
    response.raise_for_status()
    for card in response.json().get("data", []):
        if card.get("id") == model and card.get("max_model_len"):
            return int(card["max_model_len"])
    return None


def count_prompt_tokens(base_url: str, model: str, key: str, messages: list[dict[str, str]]) -> int | None:
    """Tokens of `messages` with the model's chat template and generation prompt (vLLM's POST /tokenize);
    None when the server has no /tokenize."""
    response = httpx.post(
        f"{_root(base_url)}/tokenize",
        json={"model": model, "messages": messages, "add_generation_prompt": True},
        headers={"Authorization": f"Bearer {key}"},
        timeout=_TIMEOUT_S,
    )
    if response.status_code in (404, 405, 501):
        return None
    response.raise_for_status()
    return int(response.json()["count"])


def estimate_prompt_tokens(messages: list[dict[str, str]]) -> int:
    """The documented over-estimate for servers without a tokenizer endpoint."""
    return sum(math.ceil(len(str(m.get("content", ""))) / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE for m in messages)


def measure(config: BackendConfig, samples: list[PromptSample]) -> list[PromptFit]:
    """Count every sample against the first endpoint's context (all endpoints serve the same model)."""
    url, key, model = config.urls[0], api_key(config), str(config.model)
    try:
        limit = max_model_len(url, model, key)
        fits = []
        for sample in samples:
            counted = count_prompt_tokens(url, model, key, sample.messages)
            how = "tokenize" if counted is not None else "estimate"
            tokens = counted if counted is not None else estimate_prompt_tokens(sample.messages)
            fits.append(PromptFit(sample.kind, tokens, sample.max_tokens, limit, how))
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise BackendError(f"context check: backend {redact_url(url)} did not answer ({type(exc).__name__})") from None
    return fits


def check_context(config: BackendConfig, samples: list[PromptSample]) -> list[PromptFit]:
    """Raise a one-line BackendError naming the parameter when a sample prompt cannot fit the model's
    context (prompt tokens + max_tokens > max_model_len); else return the counts (for the manifest).
    Logs once when tokens were estimated or the context length is unknown."""
    fits = measure(config, samples)
    for sample, fit in zip(samples, fits, strict=True):
        if not fit.fits:
            how = "" if fit.counted_by == "tokenize" else " (estimated: the server has no /tokenize)"
            raise BackendError(
                f"{sample.parameter}: the longest {sample.kind} prompt needs {fit.prompt_tokens} tokens{how} "
                f"+ {fit.max_tokens} for the reply, more than model {config.model!r} holds "
                f"(max_model_len {fit.max_model_len}); lower {sample.parameter} or serve a longer context"
            )
    if any(f.max_model_len is None for f in fits):
        _log.warning("context check skipped: the server does not list max_model_len for %r", config.model)
    elif any(f.counted_by == "estimate" for f in fits):
        _log.warning("context check used an estimate (no /tokenize on the server): %s", _summary(fits))
    return fits


def _summary(fits: list[PromptFit]) -> str:
    return ", ".join(f"{f.kind} {f.prompt_tokens}+{f.max_tokens}/{f.max_model_len}" for f in fits)


def as_manifest(fits: list[PromptFit]) -> list[dict[str, Any]]:
    """The counts as plain data, for the run manifest."""
    return [
        {"kind": f.kind, "prompt_tokens": f.prompt_tokens, "max_tokens": f.max_tokens,
         "max_model_len": f.max_model_len, "counted_by": f.counted_by}
        for f in fits
    ]  # fmt: skip
