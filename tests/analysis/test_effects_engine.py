"""The effect table and the sweep report on a real sweep through the engine (`socsim -m`, scripted agents).

Four unconditional cooperators and four unconditional defectors on a complete graph, 5 rounds, seeds 1-3,
`scenario.noise` in {0, 0.2, 2}: noise flips an intended move with that probability, so at 0 the
cooperators cooperate in every move and the defectors in none (the same in every seed: no interval), and
at 0.2 they cooperate in about 80% and 20% of moves. noise=2 is refused (a probability), so its three
cells fail alone and the sweep exits with status 2.
"""

from __future__ import annotations

import math
import subprocess
import sys
import warnings
from pathlib import Path

import polars as pl
import pytest

from analysis import IntervalWarning, load
from analysis.effects import effect_table
from analysis.report import build_report
from analysis.stats import t_quantile

SOCSIM = Path(sys.executable).with_name("socsim")
MIX = "{always_cooperate:4,always_defect:4}"


@pytest.fixture(scope="module")
def noise_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("engine") / "noise"
    done = subprocess.run(
        [str(SOCSIM), "-m", "scenario=ipd", "seed=1,2,3", "scenario.noise=0,0.2,2", "population.size=8",
         f"population.mix={MIX}", "scenario.rounds=5", f"run.dir={root}", "run.progress=false"],
        capture_output=True, text=True, check=False, cwd=root.parent, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "3 of 9 cells failed" in done.stderr
    return root


def cooperation_by_hand(run_dir: Path) -> dict[str, float]:
    """Per policy: the share of J moves in each round, averaged over rounds, read straight from the Parquet."""
    moves = pl.read_parquet(sorted((run_dir / "interactions").glob("part-*.parquet")), glob=False)
    per_round = moves.group_by("policy", "round").agg((pl.col("action") == "J").mean().alias("rate"))
    return dict(per_round.group_by("policy").agg(pl.col("rate").mean()).iter_rows())


def test_effect_of_noise_on_cooperation(noise_sweep: Path) -> None:
    runs = load(noise_sweep)
    assert len(runs) == 6  # the refused cells wrote nothing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IntervalWarning)
        table = effect_table(runs, "cooperation")
    assert table["factor"].unique().to_list() == ["scenario.noise"]
    got = {(lv, p): row for lv, p, row in zip(table["level"], table["policy"], table.iter_rows(named=True),
                                              strict=True)}  # fmt: skip
    quiet = got["0", "always_cooperate"], got["0", "always_defect"]
    assert [r["mean"] for r in quiet] == [1.0, 0.0] and all(math.isnan(r["low"]) for r in quiet)
    by_hand = {p: [] for p in ("always_cooperate", "always_defect")}
    for run in runs:
        if run.manifest["config"]["scenario"]["noise"] == 0.2:
            for policy, rate in cooperation_by_hand(run.path).items():
                by_hand[policy].append(rate)
    for policy, expected in (("always_cooperate", 0.8), ("always_defect", 0.2)):
        rates = by_hand[policy]
        mean = sum(rates) / 3
        sd = math.sqrt(sum((r - mean) ** 2 for r in rates) / 2)
        half = t_quantile(0.95, 2) * sd / math.sqrt(3)
        row = got["0.2", policy]
        assert (row["mean"], row["low"], row["high"]) == pytest.approx((mean, mean - half, mean + half))
        assert row["n_seeds"] == 3 and row["low"] < expected < row["high"]


def test_sweep_report_of_the_engine_sweep(noise_sweep: Path) -> None:
    page = build_report(noise_sweep)
    assert "3 did not complete; the sweep&#x27;s figure below leaves them out" in page
    assert page.count("scenario.noise=2,") == 3  # the three refused cells, each with its one-line error
    assert "scenario.noise" in page and '<img alt="cooperation by swept parameter"' in page
