"""Effect tables on hand-built sweeps: every number below is worked out by hand in the fixture's docstring."""

from __future__ import annotations

import math
import shutil
import warnings
from pathlib import Path

import polars as pl
import pytest

from analysis import AnalysisError, IntervalWarning, load
from analysis.effects import _varying_leaves, effect_table, factor_levels, text
from tests.analysis.tiny_runs import donations, write_run, write_sweep

T_2 = 4.302652729911275  # two-sided 95% Student-t critical value, 2 degrees of freedom
BASE = {1: 0.2, 2: 0.3, 3: 0.7}  # each seed's donation at reputation=trace


def donation_of(seed: int, reputation: str, fields: list[str] | None) -> float:
    """global adds 0.1; hiding the persona (fields []) adds 0.2 more, under global only (an interaction)."""
    if reputation == "trace":
        return BASE[seed]
    return BASE[seed] + 0.1 + (0.2 if fields == [] else 0.0)


@pytest.fixture
def grid(tmp_path: Path) -> Path:
    """Donor game, reputation {trace, global} x persona_fields {null, []} x seeds 1-3: 12 runs. Each run
    donates v - 0.05 in generation 1 and v + 0.05 in generation 2, v = donation_of(...), so its donation
    (mean over generations) is v.

    reputation, per seed averaged over persona_fields:
      trace:  0.2, 0.3, 0.7 -> mean 0.4, s = √((0.04 + 0.01 + 0.09)/2) = √0.07, half-width T_2·√0.07/√3 = 0.6572
      global: (0.3+0.5)/2, (0.4+0.6)/2, (0.8+1.0)/2 = 0.4, 0.5, 0.9 -> mean 0.6, s = √((0.04+0.01+0.09)/2) = √0.07
    persona_fields, per seed averaged over reputation:
      []:   (0.2+0.5)/2, (0.3+0.6)/2, (0.7+1.0)/2 = 0.35, 0.45, 0.85 -> mean 0.55
      null: (0.2+0.3)/2, (0.3+0.4)/2, (0.7+0.8)/2 = 0.25, 0.35, 0.75 -> mean 0.45
    """
    root = tmp_path / "grid"
    for reputation in ("trace", "global"):
        for fields in (None, []):
            for seed in (1, 2, 3):
                v = donation_of(seed, reputation, fields)
                name = f"rep={reputation},fields={text(fields)},seed={seed}"
                write_run(root / name, run_id=name, seed=seed,
                          scenario={"name": "donor_game", "reputation": reputation, "generations": 2},
                          population={"persona_fields": fields},
                          tables={"interactions": [donations([v - 0.05, v + 0.05])]})  # fmt: skip
    return root


def quiet_table(*args, **kw) -> pl.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IntervalWarning)  # three seeds: fewer than ten, warned about
        return effect_table(*args, **kw)


def test_factors_default_to_the_config_keys_that_vary(grid: Path) -> None:
    factors, levels = factor_levels(load(grid))
    assert factors == ["population.persona_fields", "scenario.reputation"]
    assert sorted(set(levels["population.persona_fields"])) == ["[]", "null"]


def test_each_level_is_a_mean_over_seeds_of_the_other_factors_cells(grid: Path) -> None:
    table = quiet_table(load(grid), "donation")
    rows = {(f, lv): r for f, lv, r in zip(table["factor"], table["level"], table.iter_rows(named=True), strict=True)}
    half = T_2 * math.sqrt(0.07) / math.sqrt(3)
    trace = rows["scenario.reputation", "trace"]
    assert (trace["mean"], trace["low"], trace["high"]) == pytest.approx((0.4, 0.4 - half, 0.4 + half))
    assert rows["scenario.reputation", "global"]["mean"] == pytest.approx(0.6)
    assert rows["scenario.reputation", "global"]["high"] == pytest.approx(0.6 + half)
    assert rows["population.persona_fields", "[]"]["mean"] == pytest.approx(0.55)
    assert rows["population.persona_fields", "null"]["mean"] == pytest.approx(0.45)
    assert set(table["n_seeds"]) == {3} and set(table["n_runs"]) == {6}
    assert set(table["reduced"]) == {"mean over generations"} and set(table["scenario"]) == {"donor_game"}
    assert set(table["interval"]) == {"95% Student-t"}
    # levels in text order within each factor, factors in the order found
    assert table.select("factor", "level").rows() == [
        ("population.persona_fields", "[]"), ("population.persona_fields", "null"),
        ("scenario.reputation", "global"), ("scenario.reputation", "trace"),
    ]  # fmt: skip


def test_a_sweep_json_names_the_factors_and_their_order(grid: Path) -> None:
    cells = [{"name": p.name, "run_id": p.name} for p in sorted(grid.iterdir())]
    write_sweep(grid, cells, swept=["seed", "scenario.reputation", "population.persona_fields"])
    table = quiet_table(load(grid), "donation")
    assert table["factor"].unique(maintain_order=True).to_list() == ["scenario.reputation", "population.persona_fields"]
    only = quiet_table(load(grid), "donation", factors=["scenario.reputation"])
    assert only["level"].to_list() == ["global", "trace"]
    by_column = quiet_table(load(grid), "donation", factors=["param_reputation"])  # a runs.runs column works too
    assert by_column["mean"].to_list() == pytest.approx(only["mean"].to_list())


def test_incomplete_runs_are_left_out_and_counted(grid: Path) -> None:
    """Without (global, [], seed 3) = 1.0, global's seed 3 is (global, null) alone: 0.8; so 0.4, 0.5, 0.8."""
    manifest = grid / "rep=global,fields=[],seed=3" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"completed"', '"failed"'))
    with pytest.warns(UserWarning, match="left out 1 run"):
        assert len(load(grid).runs) == 11  # load itself leaves it out, saying so
    runs = load(grid, include_incomplete=True)
    with pytest.warns(UserWarning, match="left out 1 of 12 runs that did not complete"):
        table = quiet_table(runs, "donation", factors=["scenario.reputation"])
    glob = table.row(by_predicate=pl.col("level") == "global", named=True)
    assert glob["mean"] == pytest.approx((0.4 + 0.5 + 0.8) / 3) and glob["n_runs"] == 5 and glob["n_seeds"] == 3
    every = quiet_table(runs, "donation", factors=["scenario.reputation"], completed_only=False)
    assert every.row(by_predicate=pl.col("level") == "global", named=True)["n_runs"] == 6


def test_numeric_levels_in_numeric_order(tmp_path: Path) -> None:
    for i, (noise, seed) in enumerate([(0.1, 1), (0.05, 1), (0.1, 2), (0.05, 2), (1, 1), (1, 2)]):
        write_run(tmp_path / "s" / str(i), run_id=f"r{i}", seed=seed,
                  scenario={"name": "donor_game", "noise": noise},
                  tables={"interactions": [donations([noise / 2, noise / 2])]})  # fmt: skip
    table = quiet_table(load(tmp_path / "s"), "donation")
    assert table["level"].to_list() == ["0.05", "0.1", "1"]
    assert table["mean"].to_list() == pytest.approx([0.025, 0.05, 0.5])
    assert table["low"].is_nan().all()  # both seeds agree: no spread, no interval (stats' rule)


def test_hold_metrics_take_the_final_step_and_others_the_mean(vd_run: Path, tmp_path: Path) -> None:
    """clusters (graph rule, complete graph) per step, mean over dimensions a, b, c: step 0 (4+1+2)/3,
    step 1 (2+2+2)/3, step 2 (1+1+2)/3. clusters is a `hold` metric: final = 4/3; mean = (7/3+2+4/3)/3 = 17/9."""
    for eps in (0.1, 0.3):
        for seed in (1, 2):
            name = f"e{eps}s{seed}"
            shutil.copytree(vd_run, tmp_path / "vd" / name)
            manifest = tmp_path / "vd" / name / "manifest.json"
            manifest.write_text(manifest.read_text().replace('"vd-1"', f'"{name}"').replace('"epsilon": 0.3',
                                f'"epsilon": {eps}').replace('"seed": 7', f'"seed": {seed}'))  # fmt: skip
    runs = load(tmp_path / "vd")
    final = quiet_table(runs, "clusters")
    assert final["factor"].unique().to_list() == ["scenario.epsilon"]
    assert final["mean"].to_list() == pytest.approx([4 / 3, 4 / 3]) and set(final["reduced"]) == {"final step"}
    mean = quiet_table(runs, "clusters", reduce="mean")
    assert mean["mean"].to_list() == pytest.approx([17 / 9, 17 / 9]) and set(mean["reduced"]) == {"mean over steps"}


def test_a_metric_with_a_hue_keeps_it(ipd_run: Path, tmp_path: Path) -> None:
    """ipd_run's cooperation per round: tit_for_tat 1 then 0.5 (mean 0.75), always_defect 0, always_cooperate 1."""
    for order in ("fixed", "reversed"):
        shutil.copytree(ipd_run, tmp_path / "ipd" / order)
        manifest = tmp_path / "ipd" / order / "manifest.json"
        manifest.write_text(manifest.read_text().replace('"ipd-1"', f'"{order}"').replace(
            '"game": "pd"', f'"game": "pd", "option_order": "{order}"'))  # fmt: skip
    table = quiet_table(load(tmp_path / "ipd"), "cooperation")
    assert table.columns[:5] == ["scenario", "metric", "factor", "level", "policy"]
    got = {(lv, p): m for lv, p, m in table.select("level", "policy", "mean").rows()}
    assert got == {(lv, p): pytest.approx(v) for lv in ("fixed", "reversed")
                   for p, v in (("always_cooperate", 1.0), ("always_defect", 0.0), ("tit_for_tat", 0.75))}  # fmt: skip


def test_a_population_mix_of_other_policies_is_one_factor() -> None:
    assert _varying_leaves([{"population": {"mix": {"a": 1}}}, {"population": {"mix": {"b": 2}}}]) == ["population.mix"]
    assert _varying_leaves([{"population": {"mix": {"a": 1}}}, {"population": {"mix": {"a": 2}}}]) == [
        "population.mix.a"
    ]
    assert _varying_leaves([{"seed": 1, "run": {"dir": "x"}}, {"seed": 2, "run": {"dir": "y"}}]) == []
    assert [text(v) for v in (["J", "F"], {"a": 1}, None, True, 0.0, 0.1, "x")] == [
        "[J,F]", "{a:1}", "null", "true", "0", "0.1", "x"
    ]  # fmt: skip


def test_bad_requests_are_one_line(grid: Path, tmp_path: Path) -> None:
    runs = load(grid)
    with pytest.raises(AnalysisError, match="'seed' is not a factor"):
        effect_table(runs, "donation", factors=["seed"])
    with pytest.raises(AnalysisError, match="no loaded scenario registers a metric 'nope'"):
        effect_table(runs, "nope")
    with pytest.raises(AnalysisError, match="reduce must be one of"):
        effect_table(runs, "donation", reduce="median")  # type: ignore[arg-type]
    one = grid / "rep=trace,fields=null,seed=1"
    with pytest.raises(AnalysisError, match="no factor varies across the 1 loaded donor_game runs"):
        effect_table(load(one), "donation")
