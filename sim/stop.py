"""The one way a run stops early on purpose: raise `RunStopped(status, exit_code, reason)`.

The step loop turns it into "checkpoint the last consistent step boundary, set the manifest's status,
exit with the code". Raised before a step's records are committed, the step is abandoned (its world
was not touched yet) and replayed on resume; raised after (a budget checked on the totals), the step
is kept. Sources:

- SIGTERM / SIGINT (`StopSignals`): status `interrupted`, exit code 128 + signal (143, 130);
- an LLM server that stays down (`BackendOutage` from sim.backends): `interrupted`, exit code 75;
- budgets: `budget_exhausted`, exit code 3.

Every status but `completed` can be resumed with `socsim-resume RUN_DIR`.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from sim.status import INTERRUPTED

EX_TEMPFAIL = 75  # sysexits.h: a temporary failure, try again later (the server came back)


class RunStopped(Exception):
    """Stop the run resumably: checkpoint, set `status`, exit with `exit_code`."""

    def __init__(self, status: str, exit_code: int, reason: str, resume_with: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.exit_code = exit_code
        self.reason = reason
        self.resume_with = resume_with  # overrides the resume needs, shown after `socsim-resume RUN_DIR`
        self.totals: Any = None  # the run totals at the boundary the run stopped at (set by the step loop)


def as_stop(exc: BaseException) -> RunStopped | None:
    """The stop an exception means, if any (a RunStopped, a Ctrl-C outside a handler, a server outage)."""
    if isinstance(exc, RunStopped):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return RunStopped(INTERRUPTED, 128 + signal.SIGINT, "interrupted (SIGINT)")
    from sim.backends.errors import BackendOutage  # raised by the backend when every server stays down

    cause = getattr(exc, "cause", None)  # a Ray shard's exception arrives wrapped (RayTaskError.cause)
    for outage in (exc, cause):
        if isinstance(outage, BackendOutage):
            return RunStopped(INTERRUPTED, EX_TEMPFAIL, f"LLM server outage: {outage}")
    return None


class StopSignals:
    """SIGTERM and SIGINT as RunStopped, delivered where the run can stop cleanly.

    A signal sets `requested`; the loop calls `check()` at each step boundary. Inside `interruptible()`
    (waiting for decisions, when the world is untouched) it is raised at once, so a long LLM step does
    not delay the stop. A second signal is raised at once wherever the run is. Handlers are installed
    only from the main thread (elsewhere Python does not deliver signals) and restored on exit.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.requested: RunStopped | None = None
        self._interruptible = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        stop = RunStopped(INTERRUPTED, 128 + signum, f"interrupted ({signal.Signals(signum).name})")
        again = self.requested is not None
        self.requested = stop
        if again or self._interruptible:
            raise stop

    def check(self) -> None:
        """At a step boundary: raise the stop a signal asked for."""
        if self.requested is not None:
            raise self.requested

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """A stretch the run can abandon (the step is replayed on resume): signals raise at once."""
        self.check()
        self._interruptible = True
        try:
            yield
        finally:
            self._interruptible = False
