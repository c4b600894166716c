"""analysis on a real IPD run through the engine: four strategies, six rounds, every pair plays.

Hand-computed from the PD payoffs (R 8, S 0, T 10, P 5), match totals over 6 rounds:
  TFT v ALLD: J F F F F F vs F...  -> 25 / 35      TFT v ALLC, TFT v GRIM, ALLC v GRIM: 48 / 48
  ALLD v ALLC: 60 / 0              GRIM v ALLD: J then F... vs F... -> 25 / 35
mean match score: ALLD 130/3, TFT 121/3, GRIM 121/3, ALLC 96/3 -> ranks 1, 2, 2, 4
cooperation: round 1 everyone but ALLD (9 of 12 decisions); later rounds ALLC x3, TFT and GRIM x2 each
(against each other and ALLC) = 7 of 12.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis import load
from analysis.cooperation import cooperation_rate, tournament_ranking
from analysis.report import build_report

MIX = "{always_cooperate:1,always_defect:1,tit_for_tat:1,grim_trigger:1}"


@pytest.fixture(scope="module")
def engine_ipd_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sim.config import compose  # the test drives the engine; analysis itself never imports it
    from sim.run import run

    run_dir = tmp_path_factory.mktemp("engine") / "ipd"
    overrides = ["scenario=ipd", "seed=5", "population.size=4", f"population.mix={MIX}", "scenario.rounds=6",
                 f"run.dir={run_dir}", "run.progress=false"]  # fmt: skip
    return run(compose(overrides))


def test_tournament_ranking_of_engine_run(engine_ipd_run: Path) -> None:
    ranking = tournament_ranking(load(engine_ipd_run).interactions)
    got = {p: (s, r) for p, s, r in ranking.select("policy", "score", "rank").rows()}
    assert got == {
        "always_defect": (pytest.approx(130 / 3), 1),
        "tit_for_tat": (pytest.approx(121 / 3), 2),
        "grim_trigger": (pytest.approx(121 / 3), 2),
        "always_cooperate": (pytest.approx(32.0), 4),
    }


def test_cooperation_by_round_of_engine_run(engine_ipd_run: Path) -> None:
    rate = cooperation_rate(load(engine_ipd_run).interactions, by="round")
    assert rate.select("round", "cooperation", "n").rows() == [(1, 0.75, 12)] + [
        (r, pytest.approx(7 / 12), 12) for r in range(2, 7)
    ]


def test_manifest_fields_joined(engine_ipd_run: Path) -> None:
    runs = load(engine_ipd_run)
    row = runs.interactions.select("seed", "scenario", "param_game", "param_rounds").unique().collect()
    assert row.rows() == [(5, "ipd", "pd", 6)]
    assert runs.agents.collect().height == 4


def test_report_of_engine_run(engine_ipd_run: Path) -> None:
    page = build_report(engine_ipd_run)
    assert page.count("data:image/png;base64,") == 3  # cooperation by round, match score and payoff by policy
    assert "always_defect" in page
