"""Waiting out a server that is down: every endpoint refusing connections is an outage, not a
stream of failed decisions.

One shared wait per policy: the first request that fails with a connection error after the
client's retries starts it, every other request joins it (and new requests hold back while it
runs). It probes GET /models on every endpoint with exponential backoff until one answers, then
the requests that failed during the outage are asked again. After `outage_timeout_s` it raises
`BackendOutage`, so the engine can checkpoint and stop resumably.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sim.backends.client import EndpointPool
from sim.backends.errors import BackendOutage
from sim.backends.redact import redact_url

_log = logging.getLogger(__name__)
FIRST_PROBE_DELAY_S = 0.25
MAX_PROBE_DELAY_S = 8.0


class OutageWatch:
    """Shared outage state of one EndpointPool (one event loop)."""

    def __init__(self, pool: EndpointPool, timeout_s: float) -> None:
        self.pool = pool
        self.timeout_s = timeout_s
        self.last_outage_end = -1.0  # time.monotonic() when the last outage ended
        self._wait: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> bool:
        return self._wait is not None and not self._wait.done()

    async def hold(self) -> None:
        """Before sending: wait while an outage is being waited out (raises BackendOutage if it lasts)."""
        if self.waiting:
            await asyncio.shield(self._wait)  # type: ignore[arg-type]

    async def overlapped(self, asked_at: float) -> bool:
        """After a connection failure of a request sent at `asked_at` (monotonic): whether the server
        was down meanwhile. If no endpoint answers now, wait until one does (or raise BackendOutage)."""
        if not self.waiting and self.last_outage_end < asked_at:
            if any(await asyncio.gather(*(self.pool.answers(e) for e in range(len(self.pool))))):
                return False  # the server is up: this request's failure is its own
            if not self.waiting:
                self._wait = asyncio.get_running_loop().create_task(self._wait_until_up())
        if self.waiting:
            await asyncio.shield(self._wait)  # type: ignore[arg-type]
        return True

    async def _wait_until_up(self) -> None:
        urls = ", ".join(str(redact_url(u)) for u in self.pool.urls)
        _log.warning("LLM server down (%s): waiting up to %g s for it to come back", urls, self.timeout_s)
        start = time.monotonic()
        delay = FIRST_PROBE_DELAY_S
        while True:
            remaining = self.timeout_s - (time.monotonic() - start)
            if remaining <= 0:
                raise BackendOutage(
                    f"backend outage: no endpoint accepted connections for {self.timeout_s:g} s ({urls}); "
                    "the run can resume from its last checkpoint once the server is back"
                )
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, MAX_PROBE_DELAY_S)
            if any(await asyncio.gather(*(self.pool.answers(e) for e in range(len(self.pool))))):
                self.last_outage_end = time.monotonic()
                _log.warning("LLM server back after %.1f s", self.last_outage_end - start)
                return
