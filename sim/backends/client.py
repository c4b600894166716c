"""Async OpenAI-compatible clients over one or more endpoints, with bounded concurrency per endpoint.

Each endpoint gets its own `AsyncOpenAI` (whose own retry machinery handles 5xx, timeouts and
dropped connections with backoff) and a cap on requests in flight; a request goes to the endpoint
with the fewest in flight, so a slow server gets less work.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from openai import AsyncOpenAI

from sim.backends.config import BackendConfig
from sim.backends.errors import BackendError

# A local vLLM started without --api-key accepts any key, but the client insists on one.
_LOCAL_DUMMY_KEY = "EMPTY"


def api_key(config: BackendConfig) -> str:
    """The API key from the environment variable the config names (never from config itself)."""
    key = os.environ.get(config.api_key_env)
    if key:
        return key
    if config.kind == "vllm":
        return _LOCAL_DUMMY_KEY
    raise BackendError(f"backend.api_key_env: environment variable {config.api_key_env} is not set")


class EndpointPool:
    """Least-in-flight balancing over endpoints, each capped at `max_concurrency` requests."""

    def __init__(self, config: BackendConfig) -> None:
        key = api_key(config)
        # httpx logs every request at INFO: thousands of lines per step drown the progress output.
        for name in ("httpx", "openai"):
            if logging.getLogger(name).level == logging.NOTSET:
                logging.getLogger(name).setLevel(logging.WARNING)
        self.clients = [
            AsyncOpenAI(base_url=url, api_key=key, max_retries=config.max_retries, timeout=config.timeout_s)
            for url in config.urls
        ]
        self.in_flight = [0] * len(self.clients)
        self.limit = config.max_concurrency
        self._free = asyncio.Condition()

    @asynccontextmanager
    async def client(self) -> AsyncIterator[AsyncOpenAI]:
        """Hold a slot on the least busy endpoint for the duration of one request."""
        async with self._free:
            await self._free.wait_for(lambda: min(self.in_flight) < self.limit)
            i = min(range(len(self.in_flight)), key=self.in_flight.__getitem__)
            self.in_flight[i] += 1
        try:
            yield self.clients[i]
        finally:
            async with self._free:
                self.in_flight[i] -= 1
                self._free.notify()

    async def aclose(self) -> None:
        for client in self.clients:
            await client.close()
