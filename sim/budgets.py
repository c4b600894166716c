"""What a run may spend: tokens and requests of the model, and wall time. When one is reached after a
step, the run checkpoints and stops with status `budget_exhausted` (exit status 3), resumable with a
raised budget: `socsim-resume RUN_DIR backend.max_total_tokens=...`.

`backend.max_total_tokens` counts prompt and completion tokens over the whole run (resumes included);
`backend.max_requests` counts HTTP requests (retries included); `run.max_wall_time_s` counts the time
spent stepping, across resumes. The steps already taken are kept: a budget is checked between steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.status import BUDGET_EXHAUSTED
from sim.stop import RunStopped

EXIT_BUDGET = 3


@dataclass(frozen=True)
class Budgets:
    max_total_tokens: int | None = None
    max_requests: int | None = None
    max_wall_time_s: float | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.max_total_tokens, self.max_requests, self.max_wall_time_s))

    def check(self, totals: Any, wall_time_s: float | None) -> None:
        """Raise RunStopped (budget_exhausted) when a budget is reached."""
        tokens = totals.prompt_tokens + totals.completion_tokens
        spent = [
            ("backend.max_total_tokens", self.max_total_tokens, tokens, "tokens"),
            ("backend.max_requests", self.max_requests, totals.requests, "requests"),
            ("run.max_wall_time_s", self.max_wall_time_s, wall_time_s, "seconds"),
        ]
        for key, limit, used, unit in spent:
            if limit is not None and used is not None and used >= limit:
                raise RunStopped(
                    BUDGET_EXHAUSTED, EXIT_BUDGET,
                    f"budget exhausted: {key}={limit:g} reached ({used:,.0f} {unit} used after step "
                    f"{totals.steps - 1}); raise it and continue with socsim-resume RUN_DIR {key}=...",
                )  # fmt: skip
