"""Property-based fuzzing of everything a user types or hands over: config overrides (valid and not),
persona files and edge lists. Every input either runs to a completed manifest, or fails with one of the
input errors the CLI turns into one line and exit status 2, leaving no run directory behind; never a
traceback, never a half-written run. A few of the generated failures also go through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.cli import _input_errors
from sim.config import compose
from sim.run import run

FAST = ["run.progress=false", "run.log_every=0"]
SETTINGS = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

garbage = st.sampled_from(["abc", "''", "[1,2]", "{a:1}", "null", "-1", "1e400", "nan", "-0.5", "2.5"])
number = st.one_of(st.integers(-3, 6).map(str), st.floats(-1.5, 2.5, allow_nan=False).map(lambda x: f"{x:.3g}"))
maybe_bad = st.one_of(number, garbage)

SCENARIOS = {
    "ipd": st.fixed_dictionaries(
        {
            "scenario.rounds": st.one_of(st.integers(-1, 3).map(str), garbage),
            "scenario.noise": maybe_bad,
            "scenario.game": st.sampled_from(["pd", "bos", "chess"]),
            "scenario.matches_per_agent": st.sampled_from(["null", "1", "2", "0"]),
        }
    ),
    "donor_game": st.fixed_dictionaries(
        {
            "scenario.agents_per_generation": st.sampled_from(["null", "6", "7"]),
            "scenario.generations": st.sampled_from(["1", "2", "0"]),
            "scenario.rounds": st.sampled_from(["1", "3", "-1"]),
            "scenario.observation_probability": maybe_bad,
            "scenario.trace_depth": st.sampled_from(["0", "2", "99"]),
        }
    ),
    "deffuant": st.fixed_dictionaries(
        {
            "scenario.epsilon": maybe_bad,
            "scenario.mu": maybe_bad,
            "scenario.max_steps": st.sampled_from(["1", "3", "0"]),
            "scenario.initial": st.sampled_from(["personas", "uniform", "random"]),
        }
    ),
    "hegselmann_krause": st.fixed_dictionaries(
        {
            "scenario.epsilon": maybe_bad,
            "scenario.max_steps": st.sampled_from(["2", "0"]),
            "scenario.dimensions": st.sampled_from(["[power]", "[kindness]", "[]", "power"]),
        }
    ),
    "value_debate": st.fixed_dictionaries(
        {
            "scenario.max_steps": st.sampled_from(["2", "3", "4"]),
            "scenario.llm_answer": st.sampled_from(["number", "likert", "poem"]),
        }
    ),
}
GRAPHS = st.sampled_from([
    [], ["graph=erdos_renyi", "graph.p=0.5"], ["graph=erdos_renyi", "graph.p=1.5"],
    ["graph=watts_strogatz", "graph.k=4"], ["graph=watts_strogatz", "graph.k=3"],
    ["graph=watts_strogatz", "graph.k=40"], ["graph=barabasi_albert", "graph.m=2"],
    ["graph=stochastic_block", "graph.blocks=3"],
    ["graph=stochastic_block", "graph.blocks=0"],
])  # fmt: skip
MIXES = st.sampled_from([
    [], ["population.mix={llm:1.0}"], ["population.mix={nobody:1.0}"], ["population.mix={stubborn:0.5}"],
    ["population.mix={always_defect:0.3,fixed_fraction:0.7}"], ["population.mix={tit_for_tat:3,random:3}"],
])  # fmt: skip


def _overrides(scenario: str, fields: dict[str, str], size: str, seed: str) -> list[str]:
    return [f"scenario={scenario}", f"population.size={size}", f"seed={seed}", *(f"{k}={v}" for k, v in fields.items())]


configs = st.sampled_from(sorted(SCENARIOS)).flatmap(
    lambda name: st.tuples(
        st.just(name), SCENARIOS[name], st.sampled_from(["6", "8", "1", "0", "abc", "1000000000000"]),
        st.sampled_from(["0", "7", "-1", "99999999999999999999"]), GRAPHS, MIXES,
    )
)  # fmt: skip


def attempt(overrides: list[str], base: Path) -> None:
    """Run one input: a completed run, or an input error (one line) and nothing written."""
    run_dir = base / uuid.uuid4().hex
    try:
        done = run(compose([*overrides, f"run.dir={run_dir}", *FAST]))
    except _input_errors() as exc:
        message = str(exc)
        assert message and "\n" not in message, f"{overrides}: {message!r}"
        assert not run_dir.exists(), f"{overrides}: a failed input left {run_dir}"
        return
    manifest = json.loads((done / "manifest.json").read_text())
    assert manifest["status"] == "completed", overrides
    assert not list(done.rglob("*.tmp")), overrides


@SETTINGS
@given(case=configs)
def test_any_config_runs_or_fails_in_one_line(tmp_path, case):
    name, fields, size, seed, graph, mix = case
    attempt([*_overrides(name, fields, size, seed), *graph, *mix], tmp_path)


cell = st.one_of(
    st.text(max_size=12), st.integers(-200, 200), st.floats(allow_nan=True, allow_infinity=True), st.none(),
    st.booleans(), st.just("x" * 5000), st.lists(st.integers(), max_size=2),
)  # fmt: skip
columns = st.sampled_from(["id", "name", "age", "religion", "big5_openness", "value_power", "policy", "party"])
rows = st.lists(st.dictionaries(columns, cell, max_size=5), min_size=0, max_size=6)


@SETTINGS
@given(people=rows, fmt=st.sampled_from(["jsonl", "csv"]))
def test_any_persona_file_runs_or_fails_in_one_line(tmp_path, people, fmt):
    path = tmp_path / f"{uuid.uuid4().hex}.{fmt}"
    if fmt == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in people) + "\n")
    else:
        names = sorted({k for r in people for k in r})
        lines = [",".join(names)] + [",".join(str(r.get(k, "")).replace(",", ";").replace("\n", " ") for k in names)
                                     for r in people]  # fmt: skip
        path.write_text("\n".join(lines) + "\n")
    attempt(["scenario=ipd", f"population.source={path}", "scenario.rounds=1", "population.mix={random:1.0}"], tmp_path)


edge_line = st.one_of(
    st.tuples(st.integers(-1, 7), st.integers(-1, 7)).map(lambda e: f"{e[0]},{e[1]}"),
    st.tuples(st.integers(0, 5), st.integers(0, 5), st.sampled_from(["0.5", "x", "inf", "2"])).map(
        lambda e: f"{e[0]} {e[1]} {e[2]}"
    ),
    st.sampled_from(["source,target", "# comment", "", "3", "a,b,c,d", "1\t2"]),
)


@SETTINGS
@given(lines=st.lists(edge_line, max_size=8), binary=st.booleans())
def test_any_edge_list_runs_or_fails_in_one_line(tmp_path, lines, binary):
    path = tmp_path / f"{uuid.uuid4().hex}.csv"
    if binary:
        path.write_bytes(bytes(range(256)) + "\n".join(lines).encode())
    else:
        path.write_text("\n".join(lines) + "\n")
    attempt(["scenario=ipd", "population.size=6", "scenario.rounds=1", "graph=edgelist", f"graph.path={path}"],
            tmp_path)  # fmt: skip


def test_generated_failures_are_one_line_status_2_through_the_cli(tmp_path):
    for override in ("scenario.noise=nan", "population.size=1000000000000", "graph=watts_strogatz graph.k=3",
                     "population.mix={nobody:1.0}", "seed=-1"):  # fmt: skip
        result = subprocess.run(
            [sys.executable, "-m", "sim", *override.split(), *FAST], cwd=tmp_path, capture_output=True, text=True,
            timeout=300, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert result.returncode == 2, (override, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
        assert list(tmp_path.iterdir()) == []
