"""HTTP transports under the openai client: every attempt is counted where it happens.

The openai client retries inside itself (5xx, 429 with Retry-After, timeouts, dropped connections),
so only the transport sees each attempt. `CountingTransport` wraps whichever transport the client
uses and counts every attempt and its outcome, run-wide (`counters`) and for the decision being
asked (the `Tally` set in a context variable by the policy; the openai client awaits the transport
in the caller's task, so the variable is visible there).

`AioHttpTransport` is a lean httpx2 transport over one aiohttp session: it reads the whole body
inside the attempt (socsim never streams), so every network failure surfaces, and is mapped to the
right httpx2 exception, in one place. The aiohttp adapter that ships with `openai[aiohttp]` maps a
refused or dropped connection to `ConnectTimeout` (the client then reports a timeout), which would
hide an outage; this one maps refused connections to `ConnectError`, drops to `RemoteProtocolError`.
"""

from __future__ import annotations

from collections import Counter
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx2
import yarl

CHAT_PATH = "/chat/completions"


@dataclass(slots=True)
class Tally:
    """HTTP attempts made for one decision (client retries and re-asks included)."""

    attempts: int = 0


CURRENT_TALLY: ContextVar[Tally | None] = ContextVar("socsim_http_tally", default=None)


def failure_name(exc: BaseException) -> str:
    """Short name of a failed attempt: timeout, refused (nothing listens), dropped, or error."""
    if isinstance(exc, httpx2.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx2.ConnectError):
        return "refused"
    if isinstance(exc, (httpx2.RemoteProtocolError, httpx2.ReadError, httpx2.WriteError)):
        return "dropped"
    return "error"


class CountingTransport(httpx2.AsyncBaseTransport):
    """Counts chat-completion attempts (`http_requests`) and failed ones by outcome
    (`http_failed.status_500`, `http_failed.timeout`, ...); other paths (probes) go uncounted."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, counters: Counter[str]) -> None:
        self.inner = inner
        self.counters = counters

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if not request.url.path.endswith(CHAT_PATH):
            return await self.inner.handle_async_request(request)
        counters = self.counters
        counters["http_requests"] += 1
        tally = CURRENT_TALLY.get()
        if tally is not None:
            tally.attempts += 1
        try:
            response = await self.inner.handle_async_request(request)
        except httpx2.HTTPError as exc:
            counters[f"http_failed.{failure_name(exc)}"] += 1
            raise
        if response.status_code >= 400:
            counters[f"http_failed.status_{response.status_code}"] += 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class ReadResponse(httpx2.Response):
    """A response whose (decoded) body is already in memory: httpx2's read path, which runs every
    body through decoder and chunker generators (some 35 us per response), has nothing left to do."""

    def __init__(self, status: int, headers: Any, body: bytes, request: httpx2.Request) -> None:
        super().__init__(status, headers=headers, stream=httpx2.ByteStream(body), request=request)
        self._content = body


class AioHttpTransport(httpx2.AsyncBaseTransport):
    """httpx2 requests sent with aiohttp (plain HTTP/1.1 keep-alive, `limit` connections)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple, aiohttp.ClientTimeout] = {}
        self._urls: dict[str, yarl.URL] = {}  # every chat request goes to the same few URLs

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.limit, ttl_dns_cache=300)
            # aiohttp decodes any Content-Encoding (the body is handed over read); no cookies in an API client.
            self._session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    def _timeout(self, request: httpx2.Request) -> aiohttp.ClientTimeout:
        spec = request.extensions.get("timeout") or {}
        key = (spec.get("connect"), spec.get("read"), spec.get("pool"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            connect, read, pool = key
            timeout = self._timeouts[key] = aiohttp.ClientTimeout(sock_connect=connect, sock_read=read, connect=pool)
        return timeout

    def _url(self, request: httpx2.Request) -> yarl.URL:
        text = str(request.url)
        url = self._urls.get(text)
        if url is None:
            # Credentials in the URL already travel in the Authorization header (httpx2's auth step);
            # aiohttp refuses a URL that carries them too.
            url = yarl.URL(text, encoded=True).with_user(None)
            if len(self._urls) < 64:
                self._urls[text] = url
        return url

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        session = self._client()
        try:
            async with session.request(
                request.method,
                self._url(request),
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
                data=request.content or None,
                allow_redirects=False,
                timeout=self._timeout(request),
            ) as response:
                body = await response.read()
                return ReadResponse(response.status, response.raw_headers, body, request)
        except aiohttp.ClientConnectorError as exc:  # refused, unreachable, DNS: nothing answered
            raise httpx2.ConnectError(str(exc), request=request) from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise httpx2.ReadTimeout(str(exc) or "timed out", request=request) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError) as exc:
            raise httpx2.RemoteProtocolError(str(exc) or "connection dropped", request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx2.NetworkError(str(exc), request=request) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
