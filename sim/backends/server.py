"""Managed vLLM server: start `python -m vllm.entrypoints.openai.api_server`, wait until it answers,
stop it on every exit path; and the preflight check of any endpoint before step 0.

The server runs in its own process group with its own folder (log, VLLM_CACHE_ROOT, TMPDIR), so
stopping it kills its workers too and nothing is left in the home directory or /tmp.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import httpx

from sim.backends.client import api_key
from sim.backends.config import BackendConfig
from sim.backends.errors import BackendError
from sim.backends.redact import redact_text, redact_url

_LOG_TAIL_LINES = 8


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct free ports: all held open while they are picked, since a port closed again may be
    handed out at once (two servers, or two components of a Ray cluster, would then ask for one port)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in sockets]


def free_port(host: str = "127.0.0.1") -> int:
    return free_ports(1, host)[0]


def log_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """The last non-empty lines of a log, joined into one line for a one-line error."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    tail = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(tail) or "(empty log)"


def served_models(base_url: str, key: str, timeout: float = 5.0) -> list[str]:
    """GET {base_url}/models -> model ids. Raises httpx errors when the server does not answer."""
    response = httpx.get(f"{base_url.rstrip('/')}/models", headers={"Authorization": f"Bearer {key}"}, timeout=timeout)
    response.raise_for_status()
    return [m["id"] for m in response.json().get("data", [])]


def preflight(config: BackendConfig) -> None:
    """Fail in one line, before step 0, when an endpoint is unreachable or does not serve the model."""
    key = api_key(config)
    for url in config.urls:
        shown = redact_url(url)
        try:
            models = served_models(url, key)
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            raise BackendError(f"backend {shown}: GET /models answered HTTP {status}") from None
        except (httpx.HTTPError, ValueError) as exc:
            detail = redact_text(f"{type(exc).__name__}: {exc}")
            raise BackendError(f"backend {shown} is not reachable ({detail})") from None
        if config.model not in models:
            raise BackendError(f"backend {shown} does not serve model {config.model!r} (it serves {models})")


def server_versions(config: BackendConfig) -> dict[str, str | None]:
    """Each endpoint's server version (vLLM's GET /version), for the manifest: outputs can change
    between server versions even at temperature 0. Best effort: None where it cannot be read.
    Keyed by the redacted URL (no credentials reach the manifest)."""
    found: dict[str, str | None] = {}
    for url in config.urls:
        root = url.rstrip("/").removesuffix("/v1")
        shown = str(redact_url(url))
        try:
            found[shown] = str(httpx.get(f"{root}/version", timeout=5.0).raise_for_status().json()["version"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            found[shown] = None
    return found


def server_command(config: BackendConfig, port: int) -> list[str]:
    return [
        config.resolved_python(), "-m", "vllm.entrypoints.openai.api_server",
        "--model", os.path.expanduser(str(config.model_path)), "--served-model-name",
        *config.served_names(),
        "--host", config.host, "--port", str(port), *config.server_args,
    ]  # fmt: skip


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM the server if the engine dies without cleaning up (e.g. SIGKILL)."""
    with suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group, then SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def managed_server(config: BackendConfig) -> Iterator[str]:
    """Run a vLLM server for the duration of the block; yields its base_url."""
    python = config.resolved_python()
    if not Path(python).exists() and shutil.which(python) is None:
        raise BackendError(f"backend.python: interpreter {python} not found (run .ci/install-vllm.sh)")
    port = config.port or free_port(config.host)
    parent = Path(config.server_dir).expanduser() if config.server_dir else None
    if parent:
        parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"socsim-vllm-{port}-", dir=parent))
    # vLLM puts ZMQ IPC sockets (uuid names) in TMPDIR, and socket paths must stay under 108 bytes,
    # so TMPDIR is a short folder of its own in the system temp dir rather than inside `folder`.
    tmp = Path(tempfile.mkdtemp(prefix="socsim-"))
    log_path = folder / "server.log"
    env = {
        **os.environ,
        "VLLM_CPU_KVCACHE_SPACE": f"{config.kv_cache_gib:g}",
        "VLLM_CACHE_ROOT": str(folder / "vllm-cache"),
        "TMPDIR": str(tmp),
    }
    base_url = f"http://{config.host}:{port}/v1"
    process = None
    try:
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                server_command(config, port), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=folder, start_new_session=True, preexec_fn=_die_with_parent,
            )  # fmt: skip
        _wait_ready(process, base_url, api_key(config), config.startup_timeout_s, log_path)
        yield base_url
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


def _wait_ready(process: subprocess.Popen, base_url: str, key: str, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while True:
        code = process.poll()
        if code is not None:
            tail = log_tail(log_path)
            raise BackendError(f"vLLM server exited with code {code} before answering; log: {tail}")
        with suppress(httpx.HTTPError, ValueError):
            served_models(base_url, key, timeout=2.0)
            return
        if time.monotonic() > deadline:
            raise BackendError(
                f"vLLM server did not answer at {redact_url(base_url)} within {timeout:g} s; log: {log_tail(log_path)}"
            )
        time.sleep(0.5)
