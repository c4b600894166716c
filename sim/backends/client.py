"""OpenAI-compatible clients over one or more endpoints, with bounded concurrency per endpoint.

Each endpoint gets its own `AsyncOpenAI` (whose retry machinery handles 5xx, 429 with Retry-After,
timeouts and dropped connections with backoff) over a counting transport (see transport.py) and a
semaphore capping its requests in flight. Requests go through the client's generic `post` with the
body already serialised and the raw HTTP response back: the typed `chat.completions.create` path
re-validates every request against its TypedDicts and builds pydantic models of every reply, which
cost more CPU than the rest of a decision together.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections import Counter
from typing import Any

import httpx2
from openai import DEFAULT_TIMEOUT, APIStatusError, AsyncOpenAI, omit

from sim.backends.cache import CachedResponse
from sim.backends.config import BackendConfig
from sim.backends.errors import BackendError
from sim.backends.transport import CHAT_PATH, AioHttpTransport, CountingTransport

# A local vLLM started without --api-key accepts any key, but the client insists on one.
_LOCAL_DUMMY_KEY = "EMPTY"
# Loggers of the HTTP stack that log every request at INFO (Hydra's root handler would print them).
HTTP_LOGGERS = ("httpx", "httpx2", "httpcore", "httpcore2", "openai", "aiohttp")
_PROBE_TIMEOUT_S = 5.0
# The SDK's telemetry headers (platform, runtime) are of no use to a vLLM server, and every header
# costs CPU per request in httpx2's header handling; they are left out.
NO_TELEMETRY = {
    name: omit
    for name in (
        "X-Stainless-Lang", "X-Stainless-Package-Version", "X-Stainless-OS", "X-Stainless-Arch",
        "X-Stainless-Runtime", "X-Stainless-Runtime-Version", "X-Stainless-Async",
    )
}  # fmt: skip
# Headers the client adds to every attempt for the SDK's own telemetry (the attempt number and the
# read timeout): left out of every request for the same reason (the client skips a header a request's
# options remove).
NO_ATTEMPT_HEADERS = {"X-Stainless-Retry-Count": omit, "X-Stainless-Read-Timeout": omit}


def api_key(config: BackendConfig) -> str:
    """The API key from the environment variable the config names (never from config itself)."""
    key = os.environ.get(config.api_key_env)
    if key:
        return key
    if config.kind == "vllm":
        return _LOCAL_DUMMY_KEY
    raise BackendError(f"backend.api_key_env: environment variable {config.api_key_env} is not set")


def quiet_http_loggers() -> None:
    """No per-request log lines: the HTTP stack logs at WARNING unless a user configured it."""
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)


def parse_completion(raw: bytes) -> CachedResponse:
    """A chat-completion body -> CachedResponse; a body that is not one is a `malformed` failure."""
    try:
        data = json.loads(raw)
        content = data["choices"][0]["message"]["content"]
        usage = data.get("usage") or {}
        prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return CachedResponse(None, "malformed")
    if not isinstance(content, str):
        return CachedResponse(None, "malformed", prompt, completion)
    return CachedResponse(content, None, prompt, completion)


class LeanAsyncClient(httpx2.AsyncClient):
    """httpx2's client, building and sending plain requests (absolute URL, body bytes, headers) directly.

    The openai client builds every request through `build_request` and sends it with `send`;
    httpx2's versions merge the URL with a base URL, the headers with the client's defaults, cookies
    and query parameters, then run auth flows, redirect handling and a cookie jar, none of which a
    chat-completion request to an OpenAI-compatible server uses, at a CPU cost comparable to the
    HTTP exchange itself. Anything else (credentials in the URL, an auth object, a closed client)
    takes httpx2's own path. Redirects are not followed on the direct path."""

    def __init__(self, *, transport: httpx2.AsyncBaseTransport, **kwargs: Any) -> None:
        super().__init__(transport=transport, **kwargs)
        self.direct_transport = transport
        self._parsed: dict[str, httpx2.URL] = {}  # the few URLs requests go to, parsed once

    async def send(  # type: ignore[override]
        self, request: httpx2.Request, *, stream: bool = False, auth: Any = httpx2.USE_CLIENT_DEFAULT, **rest: Any
    ) -> httpx2.Response:
        if auth is not httpx2.USE_CLIENT_DEFAULT or self.auth is not None or request.url.userinfo or self.is_closed:
            return await super().send(request, stream=stream, auth=auth, **rest)
        response = await self.direct_transport.handle_async_request(request)
        response.request = request
        if not stream:
            await response.aread()
        return response

    def build_request(  # type: ignore[override]
        self, method: str, url: httpx2.URL | str, *, content: Any = None, headers: Any = None,
        timeout: Any = httpx2.USE_CLIENT_DEFAULT, extensions: Any = None, **rest: Any,
    ) -> httpx2.Request:  # fmt: skip
        plain = isinstance(url, str) and "://" in url and extensions is None and not any(rest.values())
        if not plain:
            return super().build_request(
                method, url, content=content, headers=headers, timeout=timeout, extensions=extensions, **rest
            )
        chosen = self.timeout if timeout is httpx2.USE_CLIENT_DEFAULT else httpx2.Timeout(timeout)
        parsed = self._parsed.get(url)  # type: ignore[call-overload]
        if parsed is None:
            parsed = httpx2.URL(url)
            if len(self._parsed) < 64:
                self._parsed[url] = parsed  # type: ignore[index]
        return httpx2.Request(
            method, parsed, content=content, headers=headers, extensions={"timeout": chosen.as_dict()}
        )


class LeanAsyncOpenAI(AsyncOpenAI):
    """The openai client, parsing each URL it is asked to POST to once.

    `AsyncOpenAI` parses (and merges with its base URL) the URL of every request anew, which costs a
    tenth of what the client spends on a request; chat-completion requests all go to one URL. A
    parsed URL is immutable, so handing the same one to every request is safe."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._prepared: dict[str, httpx2.URL] = {}

    @property
    def user_agent(self) -> str:
        """The SDK's own User-Agent (it names the client's class)."""
        return super().user_agent.replace(type(self).__name__, AsyncOpenAI.__name__, 1)

    def _prepare_url(self, url: str) -> httpx2.URL:
        prepared = self._prepared.get(url)
        if prepared is None:
            prepared = super()._prepare_url(url)
            if len(self._prepared) < 64:
                self._prepared[url] = prepared
        return prepared


def _http_client(config: BackendConfig, counters: Counter[str]) -> httpx2.AsyncClient:
    """The HTTP client under the openai client, on a counting transport (aiohttp or httpx2's own),
    with the openai client's default timeout and redirect settings."""
    connections = config.max_concurrency + 8
    if config.transport == "aiohttp":
        inner: httpx2.AsyncBaseTransport = AioHttpTransport(limit=connections)
    else:
        inner = httpx2.AsyncHTTPTransport(limits=httpx2.Limits(max_connections=connections))
    return LeanAsyncClient(transport=CountingTransport(inner, counters), timeout=DEFAULT_TIMEOUT, follow_redirects=True)


class SharedSlots:
    """In-flight caps of the endpoints several models of `backend.models` share (one vLLM serving
    several names): there, all models together keep to `backend.max_concurrency` (each also to its
    own `max_concurrency`). Per process; semaphores belong to an event loop, so one per loop."""

    def __init__(self, config: BackendConfig) -> None:
        self.limit = config.max_concurrency
        keys = [None] if config.model else []
        urls = Counter(url for key in [*keys, *config.models] for url in config.for_model(key).given_urls())
        self.urls = frozenset(url for url, n in urls.items() if n > 1)
        self._slots: dict[tuple[int, str], asyncio.Semaphore] = {}

    def for_url(self, url: str) -> asyncio.Semaphore | None:
        """The endpoint's shared cap on this loop; None for an endpoint one model has to itself."""
        if url not in self.urls:
            return None
        key = (id(asyncio.get_running_loop()), url)
        if key not in self._slots:
            self._slots[key] = asyncio.Semaphore(self.limit)
        return self._slots[key]


class EndpointPool:
    """One client and one in-flight cap (`max_concurrency`) per endpoint, and the endpoint's cap shared
    with other models (`shared`, when given); belongs to one event loop."""

    def __init__(self, config: BackendConfig, counters: Counter[str], shared: SharedSlots | None = None) -> None:
        quiet_http_loggers()
        key = api_key(config)
        self.urls = config.urls
        self.clients = [
            LeanAsyncOpenAI(
                base_url=url,
                api_key=key,
                max_retries=config.max_retries,
                timeout=config.timeout_s,
                http_client=_http_client(config, counters),
                default_headers=NO_TELEMETRY,  # type: ignore[arg-type]
            )
            for url in self.urls
        ]
        # The absolute URL spares the client a relative-URL merge per request; options given here
        # (the client's own values) spare it copying their defaults per request.
        self.chat_urls = [f"{url.rstrip('/')}{CHAT_PATH}" for url in self.urls]
        self._options: Any = {
            "max_retries": config.max_retries, "timeout": config.timeout_s, "headers": NO_ATTEMPT_HEADERS,
        }  # fmt: skip
        self.slots = [asyncio.Semaphore(config.max_concurrency) for _ in self.urls]
        self.shared = [shared.for_url(url) for url in self.urls] if shared is not None else None
        self.limit = config.max_concurrency

    def __len__(self) -> int:
        return len(self.clients)

    async def ask(self, endpoint: int, body: bytes) -> CachedResponse:
        """POST one serialised chat-completion body; raises the openai client's errors after its retries."""
        shared = self.shared[endpoint] if self.shared is not None else None
        async with self.slots[endpoint]:
            if shared is None:
                response = await self._post(endpoint, body)
            else:
                async with shared:
                    response = await self._post(endpoint, body)
        return parse_completion(response.content)

    async def _post(self, endpoint: int, body: bytes) -> Any:
        return await self.clients[endpoint].post(
            self.chat_urls[endpoint], content=body, cast_to=httpx2.Response, options=self._options
        )

    async def answers(self, endpoint: int) -> bool:
        """Whether the endpoint answers GET /models now (one attempt, no retries)."""
        try:
            response: Any = await self.clients[endpoint].get(
                "/models", cast_to=httpx2.Response, options={"max_retries": 0, "timeout": _PROBE_TIMEOUT_S}
            )
        except APIStatusError:  # it answered, if only with an error status
            return True
        except Exception:  # refused, dropped, timed out: not up
            return False
        return response.status_code > 0

    async def aclose(self) -> None:
        for client in self.clients:
            await client.close()
