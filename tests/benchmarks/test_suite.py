"""The benchmark suite's own machinery (no benchmark is run here: figures come from the suite's command):
the Markdown table with its pass/fail column, the JSON lines the benchmarks hand to run_all.py, the
parsers that read socsim's log lines and the other tools' output, the command's help, and what the
probe reports of the parts a (tiny) run writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from bench_bounded_confidence import PAIRS  # noqa: E402
from bench_llm_scaling import CLIENT_LINE, ENGINE_LINE  # noqa: E402
from bench_scale import STEP_LINE, import_seconds  # noqa: E402
from figures import Figure, Reporter, Target, markdown_report, markdown_table, read_figures  # noqa: E402


def test_targets_decide_pass_and_fail_on_value_or_ratio():
    assert Target("ratio", ">=", 100).check(value=5.0, ratio=120.0) is True
    assert Target("ratio", ">=", 100).check(value=500.0, ratio=43.0) is False
    assert Target("value", "<", 0.8).check(value=0.9, ratio=None) is False
    assert Target("value", "<", 0.8).check(value=None, ratio=None) is None


def test_markdown_table_shows_figures_peers_ratios_and_verdicts():
    figures = [
        Figure("IPD", "1,000 agents", 1.5e6, "moves/s", peer=5e4, peer_name="Axelrod", ratio=30.0,
               target=Target("ratio", ">=", 100, "issue 16 item 1")),
        Figure("Scale", "imports", 0.5, "s", target=Target("value", "<", 0.8)),
        Figure("Checkpoints", "size", None, "MB", status="not available (no key)"),
    ]  # fmt: skip
    table = markdown_table(figures).splitlines()
    assert table[0].startswith("| benchmark | figure | socsim | peer | ratio | target | result |")
    assert len(table) == 2 + len(figures)
    first, second, third = table[2:]
    assert "1,500,000 moves/s" in first and "50,000 moves/s (Axelrod)" in first and "30x" in first
    assert ">= 100x (issue 16 item 1)" in first and "| FAIL |" in first
    assert "| pass |" in second and "< 0.8 s" in second
    assert third.count("not available (no key)") == 1  # once, as the result
    assert "| Scale | imports | 0.5 s |  |  |" in second  # no peer: peer and ratio left empty


def test_figures_survive_the_json_lines_between_a_benchmark_and_run_all(tmp_path):
    path = tmp_path / "figures.jsonl"
    reporter = Reporter(path)
    sent = [
        Figure("IPD", "a", 1.0, "x", target=Target("value", ">=", 2.0, "issue 16")),
        Figure("LLM", "b", None, "decisions/s", status="failed: boom", extra={"k": 1}),
    ]
    for figure in sent:
        reporter.add(figure)
    assert read_figures(path) == sent
    report = markdown_report(read_figures(path), {"mode": "quick"}, ["a note"])
    assert "- mode: quick" in report and "0 pass, 1 fail, 1 with a target" in report and "- a note" in report


def test_log_parsers_read_socsims_step_lines():
    log = (
        "step 0: 0 decisions in 0.01 s spread=0.2 clusters=19.3 pairs=1000\n"
        "step 1: 0 decisions in 1.25 s spread=0.2 clusters=9.9 pairs=2.5e+05\n"
        "socsim: run written to runs/x\n"
    )
    assert [float(p) for p in PAIRS.findall(log)] == [1000.0, 250000.0]
    assert [float(s) for s in STEP_LINE.findall(log)] == [0.01, 1.25]


def test_import_time_counts_top_level_imports_only():
    stderr = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       100 |        100 |   _io\n"
        "import time:       200 |        300 | encodings\n"
        "import time:     50000 |     700000 | sim.cli\n"
    )
    assert import_seconds(stderr) == pytest.approx(0.7003)


def test_client_figures_are_read_from_bench_llm_output():
    output = (  # bench_llm.py's lines as it prints them today
        "zero-latency fake server: 4000 decisions, concurrency 64, transport aiohttp, best of 1\n"
        "  bare openai loop (httpx2)              433 decisions/s   2.309 CPU ms/decision   433 decisions/s per core\n"
        "  LLMPolicy                             2021 decisions/s   0.494 CPU ms/decision   2023 decisions/s per core\n"
        "  LLMPolicy + transcripts               1740 decisions/s   0.575 CPU ms/decision   1740 decisions/s per core\n"
        "socsim CLI, LLM-only IPD, 5 rounds: 660 decisions 2.40 CPU s (2.3 s wall)\n"
        "  engine CPU per decision (difference): 0.499 ms = 2003 decisions/s per core (median of 3 pairs; "
        "0.470-0.561 ms)\n"
    )
    found = {m["name"]: (float(m["rate"]), float(m["cpu"])) for m in CLIENT_LINE.finditer(output)}
    assert found == {"bare openai loop (httpx2)": (433, 2.309), "LLMPolicy": (2021, 0.494),
                     "LLMPolicy + transcripts": (1740, 0.575)}  # fmt: skip
    engine = ENGINE_LINE.search(output)
    assert engine is not None and (engine["ms"], engine["rate"]) == ("0.499", "2003")
    assert engine["how"] == "median of 3 pairs; 0.470-0.561 ms"
    assert ENGINE_LINE.search(output.replace(" (median of 3 pairs; 0.470-0.561 ms)", ""))["how"] is None


@pytest.mark.parametrize(
    "script", ["run_all.py", "bench_ipd.py", "bench_bounded_confidence.py", "bench_scale.py", "bench_graphs.py",
               "bench_shards.py", "bench_llm_scaling.py", "bench_checkpoint.py", "probe.py"],
)  # fmt: skip
def test_every_benchmark_answers_help(script):
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), "--help"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_probe_times_every_part_the_recorder_writes():
    """`--time-parts` sums over the parts the run wrote: their rows are the run's rows."""
    overrides = ["scenario=ipd", "population.size=12", "scenario.rounds=5", "run.flush_rows=100", "seed=1"]
    done = subprocess.run([sys.executable, str(BENCHMARKS / "probe.py"), "--time-parts", "--", *overrides],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    writes = answer["part_writes"]
    assert writes["rows"] == answer["rows"]["interactions"] == 12 * 11 * 5
    assert writes["parts"] >= 5 and writes["cpu_s"] > 0 and writes["wall_s"] > 0 and writes["alone_cpu_s"] > 0
