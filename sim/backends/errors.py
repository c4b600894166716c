"""The exceptions the backend raises for problems a user must fix or wait out (the CLI prints them as one line)."""

from __future__ import annotations

from typing import Any


class BackendError(ValueError):
    """Server unreachable, model not served, managed server failed to start, replay cache miss,
    prompts longer than the model's context."""


class BackendOutage(BackendError):
    """Every endpoint refused connections for longer than `backend.outage_timeout_s`.

    Raised out of `LLMPolicy.adecide` so the engine can checkpoint and stop resumably. Nothing
    obtained is lost: every answer received before the outage is already in the response cache
    (flushed before this propagates), so the resumed step gets it without a request; and `partial`
    holds this batch's Decisions, with `missing` set where no answer came (reason "outage")."""

    def __init__(self, reason: str, partial: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.partial = partial
