"""Connecting the driver to Ray for run.shards: join an existing cluster, or start a private local runtime.

`run.ray_address` = `auto`, `host:port` or `ray://host:port` joins a running cluster as Ray documents it,
token authentication included: RAY_AUTH_MODE=token with the token in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH
or ~/.ray/auth_token (socsim reads none of them). A joining driver passes no resources (Ray refuses them).
Without an address socsim starts a runtime of its own (`address="local"`), so a cluster already running
on the machine, or named by RAY_ADDRESS, is never joined by accident.

Every failure is a ShardError whose message is one line. Ray itself writes more: its C++ client logs
each failed connection attempt (some twenty lines for a refused token) and actors' tracebacks are
forwarded to the driver. `HeldStderr` holds that output while shards start: it is dropped when the
start fails with a ShardError (the one line says why) and passed on otherwise.
"""

from __future__ import annotations

import logging
import math
import os
import re
import socket
import sys
import tempfile
import time
from types import TracebackType
from typing import IO

_AUTH_HELP = (
    "Ray token authentication: set RAY_AUTH_MODE=token and give the cluster's token in RAY_AUTH_TOKEN, "
    "RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token"
)


class ShardError(RuntimeError):
    """Ray shards cannot be started (no cluster at the address, refused token, not enough resources, an
    actor that died while starting); the message is one line."""


class HeldStderr:
    """Redirect file descriptor 2 (where Ray's C++ core and its log forwarding write) to a temporary
    file; on leaving, pass what was held on to stderr, unless the block failed with a ShardError."""

    def __enter__(self) -> HeldStderr:
        sys.stderr.flush()
        self._saved = os.dup(2)
        self._sink: IO[bytes] = tempfile.TemporaryFile()
        os.dup2(self._sink.fileno(), 2)
        return self

    def text(self) -> str:
        """What was held so far."""
        sys.stderr.flush()
        self._sink.seek(0)
        return self._sink.read().decode(errors="replace")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        held = self.text()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._sink.close()
        if exc_type is None or not issubclass(exc_type, ShardError):
            sys.stderr.write(held)
            sys.stderr.flush()


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of `host:port` or `ray://host:port`; None for anything else."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def _check_reachable(address: str) -> None:
    """Fail at once when nothing listens at the address (Ray would retry for some 20 s)."""
    target = _host_port(os.environ.get("RAY_ADDRESS", "") if address == "auto" else address)
    if target is None:
        return
    try:
        socket.create_connection(target, timeout=10).close()
    except OSError as exc:
        raise ShardError(f"run.ray_address={address}: no Ray cluster at {target[0]}:{target[1]} ({exc})") from None


def _join_error(address: str, exc: BaseException, ray_output: str) -> str:
    prefix = f"run.ray_address={address}"
    if "Unauthenticated" in ray_output or "InvalidAuthToken" in ray_output or "AuthenticationError" in repr(exc):
        return f"{prefix}: the Ray cluster refused this client's token ({_AUTH_HELP})"
    if isinstance(exc, ImportError) and address.startswith("ray://"):
        return f"{prefix}: Ray Client needs its extra: pip install 'socsim[ray-client]' ({exc})"
    hint = f"; if the cluster uses token authentication: {_AUTH_HELP}" if "timeout" in str(exc).lower() else ""
    return f"{prefix}: cannot join the Ray cluster ({one_line(exc)}){hint}"


def connect(address: str | None, cpus_needed: float, held: HeldStderr) -> bool:
    """Connect this process to Ray; True when it did (and must disconnect at the end). A process that is
    already connected (a Ray task run by the Ray sweep launcher) keeps its connection: False."""
    import ray

    if ray.is_initialized():
        return False
    common = {"logging_level": logging.WARNING, "log_to_driver": True}
    if not address:
        cpus = max(os.cpu_count() or 1, math.ceil(cpus_needed))
        try:
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, **common)
        except Exception as exc:
            raise ShardError(f"run.shards: cannot start a local Ray runtime ({one_line(exc)})") from None
        return True
    _check_reachable(address)
    for attempt in range(1 + CLIENT_RETRIES):
        try:
            ray.init(address=address, **common)
            break
        except Exception as exc:
            transient = address.startswith("ray://") and TRANSIENT_CLIENT_FAILURE in str(exc)
            if not transient or attempt == CLIENT_RETRIES:
                raise ShardError(_join_error(address, exc, held.text())) from None
            ray.shutdown()  # a half-made client connection must not count as connected
            time.sleep(2.0 * (attempt + 1))
    return True


# Ray Client's server starts a server process per client; on a busy machine that start can miss Ray's
# deadline, which the client reports as this. Nothing is wrong with the cluster: asking again works.
TRANSIENT_CLIENT_FAILURE = "Initialization failure from server"
CLIENT_RETRIES = 2


def one_line(exc: BaseException) -> str:
    """The line that says what went wrong: Ray's messages span many lines and carry remote tracebacks,
    whose last `...Error: ...` line is the cause."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    causes = [line for line in lines[1:] if re.match(r"^[\w.]*(Error|Exception)\b", line)]
    if causes:
        return causes[-1]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
