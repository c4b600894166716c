"""A model-free OpenAI-compatible server for tests and benchmarks: answers at once with a valid
structured reply derived from the request's seed, or misbehaves on demand (HTTP 500, 400 or 429 with
Retry-After, a hang, a malformed body, a connection dropped before or in the middle of the reply, an
off-spec answer) so the client's fault handling can be tested against real HTTP.

Like vLLM it lists `max_model_len` in GET /v1/models, counts prompt tokens at POST /tokenize (one
token per whitespace-separated word, plus 4 per message: a stand-in tokenizer) and rejects a request
whose prompt plus max_tokens exceed that length with vLLM's 400 message.

In-process: `with FakeOpenAIServer(model="fake") as srv: srv.base_url`. As a process (benchmarks,
a server killed and restarted): `python -m sim.backends.fake_server --port 0` prints the port.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections import defaultdict, deque
from typing import Any

from sim.backends.loops import new_event_loop

FAULTS = ("ok", "500", "400", "429", "timeout", "malformed", "drop", "truncated", "invalid")
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error"}


def valid_content(body: dict[str, Any], always: int | None = None) -> str:
    """A reply that fits the request's structured-output spec, chosen by the request's seed; with
    `always`, every choice (and enum field) is that option instead (an index; -1: the last), so a
    server can stand for a model with a fixed behaviour (always cooperates, always defects)."""
    seed = int(body.get("seed") or 0) if always is None else always
    choice = (body.get("structured_outputs") or {}).get("choice")
    if choice:
        return choice[seed % len(choice)]
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema")
    if not schema:
        return "ok"
    reply: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        if "enum" in prop:
            reply[name] = prop["enum"][seed % len(prop["enum"])]
        elif prop.get("type") in ("integer", "number"):
            lo, hi = prop.get("minimum", 0), prop.get("maximum", 10)
            value = lo + (seed % 1000) / 999 * (hi - lo)
            reply[name] = int(value) if prop["type"] == "integer" else round(value, 3)
        else:
            reply[name] = f"text {seed % 97}"
    return json.dumps(reply)


class FakeOpenAIServer:
    """Serves GET /v1/models and POST /v1/chat/completions on 127.0.0.1 from a background thread.

    `inject(seed, *faults)`: the next requests carrying that seed misbehave in order (see FAULTS);
    `default`: what every other request does. `requests` records every completion
    request body, `headers` its headers."""

    def __init__(
        self,
        model: str = "fake-model",
        port: int = 0,
        hang_s: float = 30.0,
        record: bool = True,
        max_model_len: int | None = 2048,
        retry_after: str = "1",
        tokenize: bool = True,
        also: tuple[str, ...] = (),
    ) -> None:
        self.model = model
        self.also = also  # further served names (one server serving a model under several names)
        self.record = record
        self.port = port
        self.hang_s = hang_s
        self.max_model_len = max_model_len
        self.retry_after = retry_after  # the Retry-After header of injected 429s (seconds)
        self.tokenize = tokenize  # False: no /tokenize route (like OpenAI's API); max_model_len None: none listed
        self.arrivals: list[tuple[int, float]] = []  # (seed, time.monotonic()) of every completion request
        self.default = "ok"
        self.always: int | None = None  # answer every choice with this option (see valid_content)
        self.delay_s = 0.0  # added to every answer (to hold requests in flight)
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []  # the headers of every completion request, names in lower case
        self._faults: dict[int, deque[str]] = defaultdict(deque)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def inject(self, seed: int, *faults: str) -> None:
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault(s) {sorted(unknown)}; use {FAULTS}")
        self._faults[seed].extend(faults)

    # ---- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> FakeOpenAIServer:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve_forever, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join()

    def _serve_forever(self, ready: threading.Event) -> None:
        self._loop = new_event_loop()
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self.port = self._server.sockets[0].getsockname()[1]
        ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._server.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

    # ---- HTTP -------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                raw = await reader.readexactly(int(headers.get("content-length", 0)))
                if not await self._respond(method, path, raw, writer, headers):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def _respond(
        self, method: str, path: str, raw: bytes, writer: asyncio.StreamWriter, headers: dict[str, str]
    ) -> bool:
        """Write one response; False when the connection must be dropped."""
        route = path.split("?", 1)[0].rstrip("/")
        if method == "GET" and route.endswith("/models"):
            cards: list[dict[str, Any]] = [{"id": name, "object": "model"} for name in (self.model, *self.also)]
            if self.max_model_len is not None:
                for card in cards:
                    card["max_model_len"] = self.max_model_len
            self._write(writer, 200, json.dumps({"object": "list", "data": cards}))
            return True
        if method == "POST" and route.endswith("/tokenize") and self.tokenize:
            count = self.prompt_tokens(json.loads(raw).get("messages", []))
            self._write(writer, 200, json.dumps({"count": count, "max_model_len": self.max_model_len, "tokens": []}))
            return True
        if method != "POST" or not route.endswith("/chat/completions"):
            self._write(writer, 404, json.dumps({"error": {"message": f"no route {path}"}}))
            return True
        body = json.loads(raw)
        seed = int(body.get("seed") or 0)
        if self.record:
            self.requests.append(body)
            self.headers.append(headers)
            self.arrivals.append((seed, time.monotonic()))
        queue = self._faults.get(seed)
        fault = queue.popleft() if queue else self.default
        if fault == "drop":
            return False
        if fault == "truncated":  # headers and half a body, then the connection closes
            writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{"id":')
            return False
        if fault in ("500", "400", "429"):
            headers = {"Retry-After": self.retry_after} if fault == "429" else {}
            self._write(writer, int(fault), json.dumps({"error": {"message": f"injected {fault}"}}), headers)
            return True
        if fault == "malformed":
            self._write(writer, 200, '{"id": "x", "choices": [')
            return True
        prompt = self.prompt_tokens(body.get("messages", []))
        if self.max_model_len is not None and prompt + int(body.get("max_tokens") or 16) > self.max_model_len:
            message = (
                f"This model's maximum context length is {self.max_model_len} tokens. However, you requested "
                f"{body.get('max_tokens')} output tokens and your prompt contains {prompt} input tokens."
            )
            self._write(writer, 400, json.dumps({"error": {"message": message, "code": 400}}))
            return True
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if fault == "timeout":
                await asyncio.sleep(self.hang_s)
            elif self.delay_s:
                await asyncio.sleep(self.delay_s)
        finally:
            self.in_flight -= 1
        content = "this is not an option" if fault == "invalid" else valid_content(body, self.always)
        self._write(writer, 200, json.dumps(self._completion(body, content)))
        return True

    @staticmethod
    def prompt_tokens(messages: list[dict[str, Any]]) -> int:
        """The stand-in tokenizer: words plus 4 per message (role markers), plus 3 (generation prompt)."""
        return sum(len(str(m.get("content", "")).split()) + 4 for m in messages) + 3

    def _completion(self, body: dict[str, Any], content: str) -> dict[str, Any]:
        words = self.prompt_tokens(body.get("messages", []))
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", self.model),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": words, "completion_tokens": 1, "total_tokens": words + 1},
        }

    @staticmethod
    def _write(writer: asyncio.StreamWriter, status: int, payload: str, headers: dict[str, str] | None = None) -> None:
        data = payload.encode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        writer.write(
            f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model", default="fake-model")
    parser.add_argument("--delay-s", type=float, default=0.0, help="added to every answer")
    args = parser.parse_args()
    with FakeOpenAIServer(model=args.model, port=args.port, record=False) as server:
        server.delay_s = args.delay_s
        print(server.port, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
