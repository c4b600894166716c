"""Durable response cache: one SQLite row per completed call, keyed by everything that shapes the answer.

SQLite in WAL mode lets several shard processes read and write the same file safely. Rows are
written in one short transaction per batch (or every 256 calls), so a crash loses at most the
answers of the batch in flight, which a rerun asks again. Failed calls are
stored too (flagged), so a replay reproduces the missing decisions of the live run, while a live
rerun asks again instead of reusing a failure.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_FLUSH_EVERY = 256  # calls queued before a write, so a long batch is saved as it goes
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    content TEXT,
    error TEXT,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL
)
"""


def canonical_json(value: Any) -> str:
    """The one JSON form of a value: no spaces, UTF-8 kept (what is hashed and sent). Keys keep the
    order the request was built in, never sorted: the order of a JSON schema's properties is the
    order a model writes the fields (a justification before the amount it justifies, a prediction
    before the move), and the request is built the same way every time, so the hash is stable."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def request_key(body: bytes) -> str:
    """Stable hash of a serialised request (model, messages, sampling params, output spec, seed)."""
    return hashlib.sha256(body).hexdigest()


_LOOKUP_CHUNK = 900  # keys per SELECT ... IN (...), under SQLite's bound-variable limit


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """A completed call: the reply text and its token counts, or why it failed."""

    content: str | None  # the reply text, None when the call failed
    error: str | None  # the failure reason ("timeout", "server_error", "connection", ...), None on success
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ResponseCache:
    """Key -> completed call. Opened per process (SQLite connections do not cross processes)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "responses.sqlite"
        self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._pending: list[tuple[str, CachedResponse]] = []

    def get(self, key: str) -> CachedResponse | None:
        row = self._db.execute(
            "SELECT content, error, prompt_tokens, completion_tokens FROM responses WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else CachedResponse(*row)

    def get_many(self, keys: list[str]) -> dict[str, CachedResponse]:
        """The stored calls among `keys` (one query per chunk: a batch looks itself up at once)."""
        found: dict[str, CachedResponse] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _LOOKUP_CHUNK):
            chunk = unique[start : start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT key, content, error, prompt_tokens, completion_tokens FROM responses WHERE key IN ({marks})",
                chunk,
            ).fetchall()
            for key, *row in rows:
                found[key] = CachedResponse(*row)
        return found

    def put(self, key: str, response: CachedResponse) -> None:
        """Queue a completed call for the next `flush` (one transaction per batch keeps writes cheap)."""
        self._pending.append((key, response))
        if len(self._pending) >= _FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        """Write queued calls; a success replaces a stored failure, never the other way round."""
        if not self._pending:
            return
        rows = [(k, r.content, r.error, r.prompt_tokens, r.completion_tokens) for k, r in self._pending]
        with self._db:  # one transaction
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)", [r for r in rows if r[2] is None]
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?)", [r for r in rows if r[2] is not None]
            )
        self._pending.clear()

    def __len__(self) -> int:
        self.flush()
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self.flush()
        self._db.close()
