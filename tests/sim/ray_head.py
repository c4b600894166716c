"""A real Ray cluster for tests: `ray start --head --block` in its own process group, own temp dir and own
ports, with token authentication on (the default Ray moves to), ended by its process-group id.

Loopback only: Ray turns 127.0.0.1 into the machine's network address unless RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER
is 0 (Ray's single-machine mode, the one it uses on macOS and Windows); the cluster and every client the
tests start get it, so no Ray traffic leaves the loopback interface.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sim.backends.server import free_ports

RAY = str(Path(sys.executable).with_name("ray"))
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
# Variables of the test process that would change which cluster or token a client uses.
_RAY_CLIENT_VARS = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without Ray client settings, loopback-only, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in _RAY_CLIENT_VARS}
    return {**env, **LOOPBACK_ONLY, **extra}


@dataclass
class RayHead:
    address: str  # host:port of the GCS
    client_address: str  # ray://host:port of the Ray Client server
    token: str
    cpus: int
    workdir: Path  # where the cluster's processes (and so Ray workers) run

    def client_env(self, **extra: str) -> dict[str, str]:
        """Environment for a process joining this cluster, as Ray documents for token authentication.
        A Ray Client (ray://) waits longer than its default 5 s per attempt for its server process."""
        patient = {"RAY_CLIENT_INITIAL_CONNECTION_TIMEOUT_S": "20"}
        return clean_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.token, **patient, **extra)


@contextmanager
def ray_head(
    temp_dir: Path, cpus: int = 2, env: Mapping[str, str] | None = None, timeout_s: float = 180
) -> Iterator[RayHead]:
    """Start a head node in `temp_dir`, wait until it is up, yield it, then end its whole process group."""
    token = secrets.token_hex(16)
    flags = ("--port", "--ray-client-server-port", "--dashboard-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port",
             "--node-manager-port", "--object-manager-port")  # fmt: skip
    ports = dict(zip(flags, free_ports(len(flags)), strict=True))
    port, client_port = ports["--port"], ports["--ray-client-server-port"]
    args = [
        RAY, "start", "--head", "--block", f"--temp-dir={temp_dir}", "--node-ip-address=127.0.0.1",
        f"--num-cpus={cpus}", "--include-dashboard=false", "--disable-usage-stats",
        *(f"{flag}={value}" for flag, value in ports.items()),
    ]  # fmt: skip
    log_path = temp_dir.with_suffix(".log")
    workdir = temp_dir.with_name(f"{temp_dir.name}-cwd")
    workdir.mkdir()
    # The Ray Client server starts a server process per client; on a loaded 2-core machine that can take
    # longer than its default 30 s.
    slow_machine = {"RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S": "120"}
    head_env = clean_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, **slow_machine, **(env or {}))
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            args, env=head_env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout_s
        while "Ray runtime started" not in log_path.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray start --head did not come up:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield RayHead(f"127.0.0.1:{port}", f"ray://127.0.0.1:{client_port}", token, cpus, workdir)
    finally:
        _end_group(proc)


def _end_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the cluster's process group, then SIGKILL what is left: ray start stops its services one
    after another with a timeout each (some 40 s), and the cluster's state is of no further use."""
    for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _group_alive(proc.pid):
            proc.poll()
            time.sleep(0.2)
        if not _group_alive(proc.pid):
            break
    proc.wait(timeout=10)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    if not Path("/proc").is_dir():
        return True
    # Members that exited but were not reaped yet (zombies) still count for killpg(0): look at states.
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False
