"""The README's "no model at all" commands, run as the README shows them: the fake server as a process of
its own, then socsim against it from the command line.

The commands are read from README.md, so the text and the test cannot drift apart. Two things change,
and only these: the port (8000 may be taken on a shared machine; a free one is used instead) and
`socsim`/`python` are this environment's executables. The response cache goes to a temporary folder
($SOCSIM_CACHE), not the user's.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from sim.backends.server import free_port, free_ports

ROOT = Path(__file__).resolve().parents[1]
HEADING = "### No model at all: the offline fake server"
README_PORT = "8000"


def readme_commands(heading: str = HEADING) -> list[str]:
    """The commands of the first indented code block under `heading` (continuation lines joined)."""
    text = (ROOT / "README.md").read_text()
    assert heading in text, f"README.md has no section {heading!r}"
    lines = text.split(heading, 1)[1].splitlines()[1:]
    block: list[str] = []
    for line in lines:
        if line.startswith("    "):
            block.append(line[4:])
        elif block and line.strip():
            break
    joined = "\n".join(block).replace("\\\n", " ")
    return [c for c in (line.strip() for line in joined.splitlines()) if c and not c.startswith("#")]


def argv(command: str, port: int) -> list[str]:
    words = shlex.split(command.replace(README_PORT, str(port)), comments=True)
    executables = {"python": sys.executable, "socsim": str(Path(sys.executable).with_name("socsim"))}
    return [executables.get(words[0], words[0]), *words[1:]]


@contextmanager
def server_process(command: list[str], env: dict[str, str]) -> Iterator[str]:
    """The server in its own process group, ended by its id; yields the first line it prints (its port)."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True, env=env)
    try:
        yield proc.stdout.readline().strip()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        proc.stdout.close()


def test_the_readme_fake_server_commands_run_an_llm_ipd(tmp_path: Path) -> None:
    server, run = readme_commands()
    assert server.startswith("python -m sim.backends.fake_server") and run.startswith("socsim ")
    port = free_port()
    env = {**os.environ, "SOCSIM_CACHE": str(tmp_path / "cache")}
    with server_process(argv(server, port), env) as printed:
        assert printed == str(port)
        done = subprocess.run(argv(run, port), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = tmp_path / run.split("run.dir=")[1].split()[0]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    llm = manifest["totals"]["llm"]
    assert llm["calls"] == manifest["totals"]["decisions"]["llm"] > 0
    # every answer came over HTTP from the server (the pre-flight's timed sample is cached, then reused)
    assert llm["http_requests"] >= llm["calls"] - llm["cached"] and llm["cached"] < llm["calls"] / 10
    assert not llm["failures"]
    moves = pl.read_parquet(run_dir / "interactions" / "*.parquet")
    by_model = moves.filter(pl.col("policy") == "llm")
    assert by_model.height == llm["calls"] and set(by_model["model"]) == {"fake-model"}
    assert set(by_model["action"]) == {"J", "F"} and by_model["fallback_reason"].is_null().all()


MODELS_HEADING = "### Several models in one population"
MODELS_PORTS = ("8001", "8002")


def test_the_readme_two_model_commands_run_one_population_of_two_models(tmp_path: Path) -> None:
    """Two fake servers for two models, then one IPD population of both, as the README writes it."""
    *servers, run = readme_commands(MODELS_HEADING)
    assert len(servers) == 2 and run.startswith("socsim ")
    ports = dict(zip(MODELS_PORTS, map(str, free_ports(len(MODELS_PORTS))), strict=True))

    def local(command: str) -> list[str]:
        for shown, port in ports.items():
            command = command.replace(shown, port)
        return argv(command, 0)

    env = {**os.environ, "SOCSIM_CACHE": str(tmp_path / "cache")}
    with server_process(local(servers[0]), env) as first, server_process(local(servers[1]), env) as second:
        assert [first, second] == list(ports.values())
        done = subprocess.run(local(run), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = tmp_path / run.split("run.dir=")[1].split()[0]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["models"] == {"llm@a": "model-a", "llm@b": "model-b"}
    moves = pl.read_parquet(run_dir / "interactions" / "*.parquet")
    per_model = dict(moves.group_by("policy").agg(pl.col("model").unique()).rows())
    assert per_model == {"llm@a": ["model-a"], "llm@b": ["model-b"]}
    assert manifest["totals"]["llm"]["calls"] == moves.height and not manifest["totals"]["llm"]["failures"]
