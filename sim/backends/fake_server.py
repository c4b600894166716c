"""A model-free OpenAI-compatible server for tests and benchmarks: answers at once with a valid
structured reply derived from the request's seed, or misbehaves on demand (HTTP 500 or 400, a hang, a
malformed body, a dropped connection, an off-spec answer) so the client's fault handling can be
tested against real HTTP.

In-process: `with FakeOpenAIServer(model="fake") as srv: srv.base_url`. As a process (benchmarks,
so the server does not share the client's interpreter): `python -m sim.backends.fake_server --port 0`
prints the port.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
from collections import defaultdict, deque
from typing import Any

FAULTS = ("ok", "500", "400", "timeout", "malformed", "drop", "invalid")


def valid_content(body: dict[str, Any]) -> str:
    """A reply that fits the request's structured-output spec, chosen by the request's seed."""
    seed = int(body.get("seed") or 0)
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
    `default`: what every other request does. `requests` records every completion request body."""

    def __init__(self, model: str = "fake-model", port: int = 0, hang_s: float = 30.0, record: bool = True) -> None:
        self.model = model
        self.record = record
        self.port = port
        self.hang_s = hang_s
        self.default = "ok"
        self.delay_s = 0.0  # added to every answer (to hold requests in flight)
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests: list[dict[str, Any]] = []
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
        self._loop = asyncio.new_event_loop()
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
                if not await self._respond(method, path, raw, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def _respond(self, method: str, path: str, raw: bytes, writer: asyncio.StreamWriter) -> bool:
        """Write one response; False when the connection must be dropped."""
        if method == "GET" and path.rstrip("/").endswith("/models"):
            self._write(writer, 200, json.dumps({"object": "list", "data": [{"id": self.model, "object": "model"}]}))
            return True
        if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
            self._write(writer, 404, json.dumps({"error": {"message": f"no route {path}"}}))
            return True
        body = json.loads(raw)
        if self.record:
            self.requests.append(body)
        queue = self._faults.get(int(body.get("seed") or 0))
        fault = queue.popleft() if queue else self.default
        if fault == "drop":
            return False
        if fault in ("500", "400"):
            self._write(writer, int(fault), json.dumps({"error": {"message": f"injected {fault}"}}))
            return True
        if fault == "malformed":
            self._write(writer, 200, '{"id": "x", "choices": [')
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
        content = "this is not an option" if fault == "invalid" else valid_content(body)
        self._write(writer, 200, json.dumps(self._completion(body, content)))
        return True

    def _completion(self, body: dict[str, Any], content: str) -> dict[str, Any]:
        words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", self.model),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": words, "completion_tokens": 1, "total_tokens": words + 1},
        }

    @staticmethod
    def _write(writer: asyncio.StreamWriter, status: int, payload: str) -> None:
        data = payload.encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}[status]
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model", default="fake-model")
    args = parser.parse_args()
    with FakeOpenAIServer(model=args.model, port=args.port, record=False) as server:
        print(server.port, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
