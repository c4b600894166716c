"""Paper presets (issue 13.7): `+preset=<paper>` sets every parameter of the paper's setup, and each
preset's scripted oracle holds (the oracles of tests/scenarios; about 10 s, mostly the 1000-agent runs)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from scenarios.bounded_confidence import count_clusters
from sim.config import compose
from tests.contract import read_table, run_with
from tests.scenarios.test_donor_game import MEAN_FINAL
from tests.scenarios.test_ipd import _pair, _scores

PRESETS = ("akata2023_pd", "akata2023_bos", "vallinder2024_donor", "deffuant2000", "hegselmann_krause2002")


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_composes_and_is_recorded(tmp_path, preset):
    config = compose([f"+preset={preset}", f"run.dir={tmp_path / 'x'}"])
    assert config.graph.kind == "complete"
    scenario = config.scenario
    if preset.startswith("akata"):
        assert (scenario.name, scenario.rounds, scenario.labels, scenario.reply) == ("ipd", 10, ("J", "F"), "free_text")
        assert config.population.persona_fields == ()  # the paper's agents had no persona
        assert scenario.game == preset.removeprefix("akata2023_")
    elif preset == "vallinder2024_donor":
        assert (scenario.name, scenario.agents_per_generation, scenario.rounds, scenario.generations) == (
            "donor_game", 12, 12, 10,
        )  # fmt: skip
        assert (scenario.mutation_rate, scenario.trace_depth, scenario.reply) == (0.0, 3, "free_text")
        assert config.population.size == 12
    else:
        assert (scenario.initial, scenario.dimensions, config.population.size) == ("uniform", ("opinion",), 1000)
        assert config.population.mix == {"bounded_confidence": 1.0}


def test_a_preset_yields_to_the_command_line(tmp_path):
    config = compose(["+preset=deffuant2000", "scenario.epsilon=0.3", f"run.dir={tmp_path / 'x'}"])
    assert config.scenario.epsilon == 0.3 and config.scenario.pairing == "edge"


def test_akata_pd_preset_tournament_oracle(tmp_path):
    mix = ("population.mix={tit_for_tat:2,always_defect:2,defect_once:2,grim_trigger:2,alternate:2,"
           "suspicious_tit_for_tat:2}")  # fmt: skip
    run_dir = run_with(["+preset=akata2023_pd", "population.size=12", mix, "seed=3"], tmp_path / "run")
    scores = _scores(run_dir)
    assert _pair(scores, "tit_for_tat", "always_defect") == ([45.0], ["JFFFFFFFFF"])
    assert _pair(scores, "tit_for_tat", "defect_once") == ([74.0], ["JFJJJJJJJJ"])
    assert _pair(scores, "grim_trigger", "alternate") == ([8 + 0 + 4 * 10 + 4 * 5], ["JJFFFFFFFF"])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config"]["population"]["persona_fields"] == []


def test_akata_bos_preset_payoff_oracle(tmp_path):
    rows = read_table(
        run_with(["+preset=akata2023_bos", "population.size=2", "population.mix={always_cooperate:2}", "seed=1"],
                 tmp_path / "run"), "interactions",
    )  # fmt: skip
    # both always play J: the row player (lower id) gets 10, the column player 7, for 10 rounds
    assert rows.filter(pl.col("actor_id") < pl.col("target_id"))["payoff_actor"].to_list() == [10.0] * 10
    assert rows.filter(pl.col("actor_id") > pl.col("target_id"))["payoff_actor"].to_list() == [7.0] * 10


def test_vallinder_preset_all_donate_oracle(tmp_path):
    run_dir = run_with(["+preset=vallinder2024_donor", "population.mix={fixed_fraction:12}", "scenario.generations=1",
                        "scenario.fraction=0.5"], tmp_path / "run")  # fmt: skip
    final = read_table(run_dir, "states").filter(pl.col("round") == 12)["resources"]
    assert final.mean() == pytest.approx(MEAN_FINAL[0.5], abs=0.006)


@pytest.mark.parametrize(
    ("preset", "eps", "allowed"),
    [("deffuant2000", 0.5, {1}), ("deffuant2000", 0.25, {2}), ("hegselmann_krause2002", 0.3, {1}),
     ("hegselmann_krause2002", 0.1, {3, 4})],
)  # fmt: skip
def test_bounded_confidence_presets_cluster_oracles(tmp_path, preset, eps, allowed):
    run_dir = run_with([f"+preset={preset}", f"scenario.epsilon={eps}", "seed=1"], tmp_path / "run")
    states = read_table(run_dir, "states")
    final = states.filter(pl.col("step") == pl.col("step").max())
    assert final.height == 1000 and count_clusters(final["value"].to_numpy()) in allowed
    assert json.loads((run_dir / "manifest.json").read_text())["outcome"]["converged"]
