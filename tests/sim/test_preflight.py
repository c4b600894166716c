"""Pre-flight: runs that cannot fit are refused before anything is built; every run states its estimate;
bad inputs are one line; how a dynamic ended is recorded and readable."""

from __future__ import annotations

import json

import pytest

from agents.graph import StochasticBlock, build_graph
from analysis import load
from sim.config import ConfigError, compose
from sim.preflight import check_memory, expected_edges
from sim.prepare import prepare
from sim.run import run
from tests.cli import socsim
from tests.contract import run_with


@pytest.mark.parametrize(
    "overrides",
    [["population.size=1000000000000"], ["scenario=ipd", "population.size=100000"]],
    ids=["a trillion agents", "100k agents round robin"],
)
def test_runs_that_cannot_fit_are_refused_before_anything_is_built(tmp_path, overrides):
    result = socsim(*overrides, f"run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("socsim: error: pre-flight: this run needs about ") and "but the machine has" in line
    assert "lower population.size" in line and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_limit_is_the_machines_and_the_estimate_names_its_parts(tmp_path):
    config = compose(["scenario=deffuant", "population.size=1000", "graph=watts_strogatz", f"run.dir={tmp_path}"])
    scenario = prepare(config).scenario
    check_memory(config, scenario)  # fits
    with pytest.raises(ConfigError, match=r"personas .* graph .* world .* records buffer .* free"):
        check_memory(config, scenario, limit=1000)


@pytest.mark.parametrize("blocks", [1, 3, 7])
def test_the_block_model_estimate_counts_pairs_inside_and_across_blocks(blocks):
    """p_in over the pairs inside blocks (the last takes the remainder), p_out over the rest."""
    config = StochasticBlock(blocks=blocks, p_in=0.3, p_out=0.02)
    estimate = expected_edges(config, 1_003)
    built = build_graph(config, 1_003, seed=5).n_edges
    assert abs(built - estimate) < 0.03 * estimate


def test_every_run_prints_and_records_its_estimate(tmp_path):
    result = socsim("scenario=ipd", "population.size=10", "scenario.rounds=3", f"run.dir={tmp_path / 'run'}",
                    cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "socsim: pre-flight: agents 10 (0 language-model), edges 45" in result.stderr
    estimate = json.loads((tmp_path / "run" / "manifest.json").read_text())["estimate"]
    assert estimate["decisions"] == 270 and estimate["memory_bytes"] > 0 and estimate["llm_decisions"] == 0


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("scenario=deffuant scenario.epsilon=1.5", "scenario.epsilon: Input should be less than or equal to 1"),
        ("graph=watts_strogatz graph.k=5", "graph.k: must be even"),
        ("population.mix={tit_for_tat:0.5,always_defect:0.2}", "population.mix: fractions sum to 0.7"),
        (
            "population.sampler.age_min=70 population.sampler.age_max=30",
            "population.sampler.age_max: must be >= age_min",
        ),
    ],
)
def test_bad_inputs_are_one_line(tmp_path, override, expected):
    result = socsim(*override.split(), f"run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert expected in line, line
    assert list(tmp_path.iterdir()) == []


def test_a_binary_edge_list_names_the_file(tmp_path):
    (tmp_path / "edges.bin").write_bytes(bytes(range(256)) * 8)
    result = socsim("graph=edgelist", "graph.path=edges.bin", f"run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 2
    assert "edge list edges.bin: not a text file" in result.stderr and "Traceback" not in result.stderr


def test_convergence_or_the_step_cap_is_recorded_and_read_by_analysis(tmp_path):
    base = ["scenario=hegselmann_krause", "scenario.initial=uniform", "scenario.dimensions=[x]", "population.size=200"]
    settled = run_with([*base, "scenario.epsilon=0.3", "seed=1"], tmp_path / "sweep" / "settled")
    capped = run_with([*base, "scenario.epsilon=0.3", "scenario.max_steps=2", "seed=1"], tmp_path / "sweep" / "capped")
    outcome = json.loads((settled / "manifest.json").read_text())["outcome"]
    assert outcome["converged"] is True and 0 < outcome["converged_at_step"] < 1000
    assert json.loads((capped / "manifest.json").read_text())["outcome"] == {
        "converged": False,
        "converged_at_step": None,
    }
    runs = load(tmp_path / "sweep").runs.sort("converged")
    assert runs["converged"].to_list() == [False, True]
    assert runs["converged_at_step"].to_list() == [None, outcome["converged_at_step"]]


def test_estimate_with_a_server_is_calibrated(tmp_path, fake_openai):
    fake_openai.delay_s = 0.05
    server = [f"backend.base_url={fake_openai.base_url}", f"backend.model={fake_openai.model}"]
    run_dir = run(compose(["scenario=ipd", "population.size=6", "population.mix={llm:6}", "scenario.rounds=2",
                           "backend=vllm", *server, f"backend.cache_dir={tmp_path / 'cache'}",
                           "backend.max_concurrency=4", f"run.dir={tmp_path / 'run'}",
                           "run.progress=false"]))  # fmt: skip
    estimate = json.loads((run_dir / "manifest.json").read_text())["estimate"]
    assert estimate["llm_decisions"] == 60 and estimate["prompt_tokens"] > 0
    assert 0.05 / 4 <= estimate["seconds_per_llm_decision"] < 1.0
    assert estimate["llm_seconds"] == pytest.approx(estimate["seconds_per_llm_decision"] * 60)
