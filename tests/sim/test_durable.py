"""Durable runs against real faults, each compared with an undisturbed run of the same seed:

- SIGKILL of the `socsim` process at random steps (scripted agents; LLM agents against the fake
  server run as a process of its own), then `socsim-resume`;
- SIGTERM and SIGINT: a checkpoint at the step boundary, status `interrupted`, exit 143 / 130;
- a full disk (a 3 MiB tmpfs mounted in a private mount namespace, `unshare -rm`), a directory made
  read-only mid-run (the same tmpfs remounted read-only), a read-only and an unwritable directory
  from the start: one line, status `failed` where the manifest can be written, no `.tmp` file where one
  can be removed (resume removes those a read-only disk kept), and the run, copied to a writable disk,
  resumes to the same tables;
- a Ray shard's worker process killed by its pid on a real `ray start --head` cluster (token auth,
  loopback), with Ray's actor restarts, and without them (the step is replayed from the last checkpoint).

Every process a test starts runs in its own process group and is ended by its id.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sim import checkpoint
from sim.resume import resume
from sim.status import effective_status
from tests.contract import assert_same_rows, read_table, run_with
from tests.sim.ray_head import RayHead, ray_head

BIN = Path(sys.executable).parent
SOCSIM, RESUME = str(BIN / "socsim"), str(BIN / "socsim-resume")
QUIET = ["run.progress=false", "run.log_every=0"]
# ~40 steps of 160k decisions: a few seconds, long enough to be killed anywhere in the middle
SCRIPTED = ["scenario=ipd", "population.size=200", "scenario.rounds=40", "seed=3", "run.flush_rows=20000",
            "run.checkpoint_every=2"]  # fmt: skip
LLM = ["scenario=ipd", "population.size=8", "population.mix={llm:4,tit_for_tat:4}", "scenario.rounds=14", "seed=5",
       "backend=vllm", "backend.model=fake-model"]  # fmt: skip


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def start(args: list[str], log: Path, **kwargs) -> subprocess.Popen:
    """Start a process in its own group, its output to `log` (a pipe nobody reads would block it)."""
    with open(log, "w") as out:
        return subprocess.Popen(args, start_new_session=True, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, **kwargs)  # fmt: skip


def end(proc: subprocess.Popen) -> None:
    """SIGKILL the process group if it still runs, and reap the process."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def said(text: str) -> list[str]:
    """What a command said beyond its pre-flight estimate and the HTTP client's request log."""
    return [line for line in text.strip().splitlines()
            if "HTTP Request:" not in line and not line.startswith("socsim: pre-flight:")]  # fmt: skip


def wait_for_checkpoint(run_dir: Path, step: int, proc: subprocess.Popen, timeout_s: float = 120) -> int:
    """Wait until the run has checkpointed step `step` or later; the step found."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = checkpoint.steps(run_dir)
        if found and found[-1] >= step:
            return found[-1]
        assert proc.poll() is None, f"the run ended (status {proc.returncode}) before checkpointing step {step}"
        time.sleep(0.02)
    raise AssertionError(f"no checkpoint at step {step} within {timeout_s} s")


def assert_same_tables(a: Path, b: Path) -> None:
    assert_same_rows(read_table(a, "interactions"), read_table(b, "interactions"), "interactions")
    assert manifest(a)["totals"]["decisions"] == manifest(b)["totals"]["decisions"]


def no_temporaries(run_dir: Path) -> list[Path]:
    return [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def scripted_reference(tmp_path_factory) -> Path:
    return run_with([*SCRIPTED, "run.checkpoint_every=0"], tmp_path_factory.mktemp("scripted") / "run")


# ---- SIGKILL at random steps ------------------------------------------------------------------------
@pytest.mark.parametrize("trial", range(3))
def test_sigkill_at_a_random_step_then_resume_gives_the_undisturbed_tables(tmp_path, scripted_reference, trial):
    rng = random.Random(trial)
    run_dir = tmp_path / "run"
    proc = start([SOCSIM, *SCRIPTED, *QUIET, f"run.dir={run_dir}"], tmp_path / "log")
    try:
        wait_for_checkpoint(run_dir, rng.randrange(2, 24, 2), proc)
        time.sleep(rng.uniform(0.0, 0.1))  # anywhere in the following steps
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        end(proc)
    assert proc.returncode == -signal.SIGKILL
    stale = manifest(run_dir)
    assert stale["status"] == "running" and effective_status(stale) == "crashed"
    if trial == 0:  # once through the command, the other trials through the API (quicker)
        result = subprocess.run([RESUME, str(run_dir), *QUIET], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
    else:  # in one part at the end: parts the killed run wrote past its checkpoint are not overwritten
        resume(run_dir, [*QUIET, "run.flush_rows=2000000", "run.checkpoint_every=0"])
    after = manifest(run_dir)
    assert after["status"] == "completed" and after["resumed"][0]["after"] == "crashed"
    assert not no_temporaries(run_dir)
    assert_same_tables(run_dir, scripted_reference)


@contextmanager
def fake_server() -> Iterator[tuple[str, subprocess.Popen]]:
    """`python -m sim.backends.fake_server --port 0` in its own process group: (base URL, process)."""
    proc = subprocess.Popen([sys.executable, "-m", "sim.backends.fake_server", "--port", "0", "--model", "fake-model"],
                            start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        port = int(proc.stdout.readline())  # the one line it prints
        yield f"http://127.0.0.1:{port}/v1", proc
    finally:
        end(proc)


@pytest.fixture(scope="module")
def fake_server_process() -> Iterator[str]:
    with fake_server() as (url, _):
        yield url


@pytest.fixture(scope="module")
def llm_reference(tmp_path_factory, fake_server_process) -> Path:
    tmp = tmp_path_factory.mktemp("llm")
    backend = [f"backend.base_url={fake_server_process}", f"backend.cache_dir={tmp / 'cache'}"]
    return run_with([*LLM, *backend], tmp / "run")


@pytest.mark.parametrize("trial", range(2))
def test_sigkill_of_an_llm_run_then_resume_gives_the_undisturbed_tables(
    tmp_path, fake_server_process, llm_reference, trial
):
    """Every step is checkpointed (the default with LLM agents). The killed run has a response cache of
    its own: the steps it lost are answered again from that cache or from the server, which answers
    deterministically, so the same either way."""
    rng = random.Random(100 + trial)
    backend = [f"backend.base_url={fake_server_process}", f"backend.cache_dir={tmp_path / 'cache'}"]
    run_dir = tmp_path / "run"
    proc = start([SOCSIM, *LLM, *backend, *QUIET, f"run.dir={run_dir}"], tmp_path / "log")
    try:
        killed_after = wait_for_checkpoint(run_dir, rng.randrange(2, 8), proc)
        time.sleep(rng.uniform(0.0, 0.1))
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        end(proc)
    assert effective_status(manifest(run_dir)) == "crashed"
    assert checkpoint.steps(run_dir)[-1] >= killed_after  # every step: the last one is kept
    if trial == 0:
        result = subprocess.run([RESUME, str(run_dir), *QUIET], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
    else:
        resume(run_dir, QUIET)
    assert manifest(run_dir)["status"] == "completed"
    assert_same_tables(run_dir, llm_reference)


def test_a_server_that_stays_down_stops_the_run_resumably(tmp_path, llm_reference):
    """The LLM server dies mid-run and stays down past backend.outage_timeout_s: the run checkpoints the
    step it abandons, says `interrupted` and exits 75; resumed against another server, it ends as if
    nothing had happened."""
    run_dir, log = tmp_path / "run", tmp_path / "log"
    with fake_server() as (url, server):
        args = [SOCSIM, *LLM, f"backend.base_url={url}", f"backend.cache_dir={tmp_path / 'cache'}",
                "backend.outage_timeout_s=2", "backend.max_retries=1", *QUIET, f"run.dir={run_dir}"]  # fmt: skip
        proc = start(args, log)
        try:
            wait_for_checkpoint(run_dir, 4, proc)
            os.killpg(server.pid, signal.SIGKILL)
            proc.wait(timeout=120)
        finally:
            end(proc)
    lines = said(log.read_text())  # the backend logs the outage it waits out; socsim ends with one line
    assert proc.returncode == 75, lines
    assert lines[-1].startswith("socsim: LLM server outage") and "socsim-resume" in lines[-1], lines
    assert all("LLM server down" in line for line in lines[:-1]), lines
    stopped = manifest(run_dir)
    assert stopped["status"] == "interrupted" and stopped["last_checkpoint"] == stopped["totals"]["steps"]
    before = stopped["totals"]["llm"]  # the HTTP attempts the session made, refused ones included
    assert before["http_requests"] >= before["calls"] - before["cached"] and sum(before["http_failed"].values()) > 0
    with fake_server() as (other, _):
        resume(run_dir, [*QUIET, f"backend.base_url={other}"])
    done = manifest(run_dir)
    assert done["status"] == "completed"
    assert_same_tables(run_dir, llm_reference)
    after = done["totals"]["llm"]  # both sessions' attempts: the resumed one's add to the stopped one's
    asked_again = (after["calls"] - after["cached"]) - (before["calls"] - before["cached"])
    assert after["http_requests"] >= before["http_requests"] + asked_again
    assert all(after["http_failed"].get(reason, 0) >= n for reason, n in before["http_failed"].items())


# ---- SIGTERM / SIGINT -------------------------------------------------------------------------------
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_checkpoint_and_say_interrupted(tmp_path, scripted_reference, sig, code):
    run_dir, log = tmp_path / "run", tmp_path / "log"
    proc = start([SOCSIM, *SCRIPTED, *QUIET, f"run.dir={run_dir}"], log)
    try:
        wait_for_checkpoint(run_dir, 2, proc)
        running = manifest(run_dir)
        assert (running["pid"], running["host"]) == (proc.pid, socket.gethostname())
        assert effective_status(running) == "running"
        wait_for_checkpoint(run_dir, 6, proc)
        os.killpg(proc.pid, sig)
        proc.wait(timeout=120)
    finally:
        end(proc)
    lines = said(log.read_text())
    assert proc.returncode == code, lines
    assert len(lines) == 1 and f"continue with: socsim-resume {run_dir}" in lines[0], lines
    stopped = manifest(run_dir)
    assert stopped["status"] == "interrupted" and signal.Signals(sig).name in stopped["error"]
    steps = stopped["totals"]["steps"]
    assert stopped["last_checkpoint"] == steps and checkpoint.steps(run_dir) == [steps]  # at the boundary
    assert stopped["totals"]["rows"]["interactions"] == read_table(run_dir, "interactions").height
    resume(run_dir, QUIET)
    assert_same_tables(run_dir, scripted_reference)


# ---- disks that cannot be written -------------------------------------------------------------------
def _private_mounts_work() -> bool:
    try:
        probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


needs_mounts = pytest.mark.skipif(not _private_mounts_work(), reason="no private mount namespace (unshare -rm)")


def in_private_tmpfs(tmp_path: Path, script: str, options: str) -> dict[str, str]:
    """Run a bash `script` in a private mount namespace where $MNT is a fresh tmpfs (`options`); $OUT is
    a directory on the real disk for results (the tmpfs vanishes with the namespace). Returns the
    files the script wrote to $OUT by name."""
    mnt, out = tmp_path / "mnt", tmp_path / "out"
    mnt.mkdir()
    out.mkdir()
    wrapper = f'set -u\nmount -t tmpfs -o {options} socsim-test "$MNT"\n{script}'
    env = {**os.environ, "MNT": str(mnt), "OUT": str(out), "SOCSIM": SOCSIM, "ARGS": " ".join([*SCRIPTED, *QUIET])}
    proc = start(["unshare", "-rm", "bash", "-c", wrapper], tmp_path / "log", env=env, cwd=tmp_path)
    try:
        proc.wait(timeout=300)
    finally:
        end(proc)
    assert proc.returncode == 0, (tmp_path / "log").read_text()
    return {p.name: p.read_text() for p in out.iterdir() if p.is_file()}


@needs_mounts
def test_a_full_disk_fails_in_one_line_and_the_copied_run_resumes(tmp_path, scripted_reference):
    """3 MiB hold the first steps (the whole run writes about 12 MB): the disk fills mid-run."""
    found = in_private_tmpfs(tmp_path, """
        "$SOCSIM" $ARGS run.dir="$MNT/run" 2> "$OUT/stderr"; echo $? > "$OUT/rc"
        find "$MNT" -name '*.tmp' > "$OUT/temporaries"
        cp -a "$MNT/run" "$OUT/run"
    """, "size=3m")  # fmt: skip
    lines = said(found["stderr"])
    assert found["rc"].strip() == "1" and len(lines) == 1, found["stderr"]
    assert "No space left on device" in lines[0] and "the manifest says status=failed" in lines[0]
    assert found["temporaries"] == ""
    run_dir = tmp_path / "out" / "run"
    failed = manifest(run_dir)
    assert failed["status"] == "failed" and "No space left on device" in failed["error"]
    assert checkpoint.steps(run_dir), "the disk filled before the first checkpoint: the test proves less"
    resume(run_dir, QUIET)  # a failed run resumes once the disk has room (here: a copy on a larger disk)
    assert_same_tables(run_dir, scripted_reference)


@needs_mounts
def test_a_directory_turned_read_only_mid_run_is_reported_crashed_and_resumes(tmp_path, scripted_reference):
    """The manifest cannot say `failed` on a read-only disk: it keeps `running` with the dead pid, which
    every reader reports as `crashed`."""
    found = in_private_tmpfs(tmp_path, """
        "$SOCSIM" $ARGS run.dir="$MNT/run" 2> "$OUT/stderr" & pid=$!
        for i in $(seq 3000); do ls "$MNT"/run/checkpoints/step-* > /dev/null 2>&1 && break; sleep 0.01; done
        # a remount is refused while a file is open for writing: retry between two writes
        while kill -0 $pid 2> /dev/null; do
            mount -o remount,ro "$MNT" 2> /dev/null && { echo yes > "$OUT/remounted"; break; }
        done
        wait $pid; echo $? > "$OUT/rc"
        find "$MNT" -name '*.tmp' > "$OUT/temporaries"
        cp -a "$MNT/run" "$OUT/run"
    """, "size=64m")  # fmt: skip
    assert "remounted" in found, "the run ended before its directory could be made read-only"
    lines = said(found["stderr"])
    assert found["rc"].strip() == "1" and len(lines) == 1, found["stderr"]
    assert "Read-only file system" in lines[0] and "the manifest could not be updated" in lines[0]
    run_dir = tmp_path / "out" / "run"
    # a temporary file the remount caught cannot be removed from a read-only disk; resume removes it
    assert found["temporaries"].split() == [str(tmp_path / "mnt" / p.relative_to(tmp_path / "out"))
                                            for p in no_temporaries(run_dir)]  # fmt: skip
    stale = manifest(run_dir)
    assert stale["status"] == "running" and effective_status(stale) == "crashed"
    from analysis import load

    assert load(run_dir, include_incomplete=True).runs["status"].to_list() == ["crashed"]
    resume(run_dir, QUIET)
    assert not no_temporaries(run_dir)
    assert_same_tables(run_dir, scripted_reference)


@needs_mounts
def test_a_read_only_run_dir_is_one_line_and_nothing_is_written(tmp_path):
    found = in_private_tmpfs(tmp_path, """
        "$SOCSIM" $ARGS run.dir="$MNT/run" 2> "$OUT/stderr"; echo $? > "$OUT/rc"
        find "$MNT" -mindepth 1 > "$OUT/written"
    """, "ro,size=1m")  # fmt: skip
    lines = said(found["stderr"])
    assert found["rc"].strip() == "2" and len(lines) == 1, found["stderr"]
    assert lines[0].startswith("socsim: error: run.dir") and "cannot be written (Read-only file system)" in lines[0]
    assert found["written"] == ""


def test_a_directory_without_write_permission_is_one_line():
    """As an unprivileged user (root bypasses permission bits) on a directory it may not write. The
    directories live outside pytest's root-only temp tree, which the user could not even enter."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root to switch to an unprivileged user (setpriv)")
    with tempfile.TemporaryDirectory(prefix="socsim-permissions-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        locked, cwd = root / "locked", root / "cwd"
        locked.mkdir(mode=0o755)
        cwd.mkdir()
        cwd.chmod(0o777)
        result = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", SOCSIM, *SCRIPTED, *QUIET,
             f"run.dir={locked / 'run'}"],
            capture_output=True, text=True, timeout=300, cwd=cwd, env={**os.environ, "HOME": str(cwd)},
        )  # fmt: skip
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert "cannot be written (Permission denied)" in lines[0]
        assert list(locked.iterdir()) == []


# ---- a Ray shard's worker killed ----------------------------------------------------------------------
def shard_workers(token: str) -> list[int]:
    """Pids of the live Shard actor processes of the cluster holding `token` (Ray titles them ray::Shard)."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if not (proc / "cmdline").read_bytes().startswith(b"ray::Shard"):
                continue
            if f"RAY_AUTH_TOKEN={token}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[RayHead]:
    """`ray start --head` on loopback with its own temp dir, ports and auth token (tests/sim/ray_head.py)."""
    with ray_head(tmp_path_factory.mktemp("ray-head")) as head:
        yield head


@pytest.mark.ray
@pytest.mark.parametrize("restarts", [3, 0])
def test_killing_a_shard_worker_gives_the_undisturbed_parquet(tmp_path, scripted_reference, cluster, restarts):
    """restarts=3: Ray restarts the actor and retries its task; restarts=0: the actor stays dead, the
    step loop starts new shards and replays from the last checkpoint."""
    run_dir = tmp_path / "run"
    args = [SOCSIM, *SCRIPTED, *QUIET, "run.shards=2", f"run.ray_address={cluster.address}",
            f"run.shard_restarts={restarts}", f"run.dir={run_dir}"]  # fmt: skip
    log = tmp_path / "log"
    proc = start(args, log, env=cluster.client_env())
    try:
        wait_for_checkpoint(run_dir, 6, proc, timeout_s=240)
        victims = shard_workers(cluster.token)
        assert len(victims) == 2, victims
        os.kill(victims[0], signal.SIGKILL)
        proc.wait(timeout=300)
    finally:
        end(proc)
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert manifest(run_dir)["status"] == "completed"
    replayed = "replaying from the last checkpoint" in log.read_text()
    assert replayed == (restarts == 0)  # with restarts, Ray alone brought the shard back
    assert_same_tables(run_dir, scripted_reference)
