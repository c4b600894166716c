"""Each figure draws the hand-computed numbers of the tiny runs (read back from the Axes)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgb

from analysis import AnalysisError, IntervalWarning, load
from analysis.donations import strategy_labels
from analysis.palette import COLOURS, Palette
from analysis.plots import (
    break_at_gaps,
    edges_from_config,
    isolated,
    plot_clusters,
    plot_cooperation,
    plot_donations,
    plot_effects,
    plot_network,
    plot_opinions,
    plot_polarization,
    plot_ranking,
    plot_series,
    plot_strategy_shares,
    to_png,
    trend_line,
)


def lines_by_label(fig) -> dict[str, np.ndarray]:
    return {line.get_label(): np.asarray(line.get_ydata()) for line in fig.axes[0].lines}


def test_cooperation_lines_per_policy(ipd_run: Path) -> None:
    fig = plot_cooperation(load(ipd_run).interactions)
    lines = lines_by_label(fig)
    assert lines["tit_for_tat"].tolist() == [1.0, 0.5]
    assert lines["always_defect"].tolist() == [0.0, 0.0]
    assert lines["always_cooperate"].tolist() == [1.0, 1.0]
    assert not fig.axes[0].collections  # one run: no interval band
    assert to_png(fig)[:4] == b"\x89PNG"


def test_band_over_seeds_in_a_sweep(ipd_run: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    shutil.copytree(ipd_run, sweep / "a")
    shutil.copytree(ipd_run, sweep / "b")
    manifest = (sweep / "b" / "manifest.json").read_text().replace('"ipd-1"', '"ipd-2"')
    (sweep / "b" / "manifest.json").write_text(manifest)
    # in run b tit_for_tat cooperates in round 2 of match 0 too: its round-2 rate is 1 there
    part = sweep / "b" / "interactions" / "part-00001.parquet"
    df = pl.read_parquet(part)
    df.with_columns(
        pl.when((pl.col("match_id") == 0) & (pl.col("actor_id") == 0))
        .then(pl.lit("J"))
        .otherwise("action")
        .alias("action")
    ).write_parquet(part)
    fig = plot_cooperation(load(sweep).interactions)
    assert lines_by_label(fig)["tit_for_tat"].tolist() == [1.0, 0.75]
    assert fig.axes[0].collections  # interval bands drawn


def test_ranking_bars(ipd_run: Path) -> None:
    fig = plot_ranking(load(ipd_run).interactions)
    widths = [bar.get_width() for bar in fig.axes[0].patches]
    assert widths == [8.0, 10.5, 17.5]  # ascending, best on top
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [
        "always_cooperate", "tit_for_tat", "always_defect",
    ]  # fmt: skip


def test_donations_and_trend_line(donor_run: Path) -> None:
    fig = plot_donations(load(donor_run).interactions)
    lines = fig.axes[0].lines
    assert np.asarray(lines[0].get_ydata()).tolist() == [0.1875, 0.5]
    assert np.asarray(lines[1].get_ydata()) == pytest.approx([0.1875, 0.5])  # the fitted trend
    assert "+0.312/gen" in lines[1].get_label()


def test_strategy_shares_stack(donor_run: Path) -> None:
    fig = plot_strategy_shares(strategy_labels(load(donor_run).strategies), column="strategy_kind")
    layers = fig.axes[0].collections
    assert len(layers) == 3  # always_defect, fixed_fraction, llm


def test_opinion_trajectories_and_histogram(vd_run: Path) -> None:
    fig = plot_opinions(load(vd_run).states, dimension="a")
    traj, hist = fig.axes[:2]
    assert len(traj.lines) == 4
    assert np.asarray(traj.lines[0].get_ydata()).tolist() == [0.0, 0.1, 0.5]  # agent 0 over steps 0-2
    assert sum(p.get_width() for p in hist.patches) == 4  # four final positions


def test_opinions_of_unknown_dimension(vd_run: Path) -> None:
    with pytest.raises(AnalysisError, match="no positions"):
        plot_opinions(load(vd_run).states, dimension="zzz")


def test_cluster_and_polarization_figures(vd_run: Path) -> None:
    lines = lines_by_label(plot_clusters(load(vd_run).states))
    assert lines["a"].tolist() == [4, 2, 1] and lines["c"].tolist() == [2, 2, 2]
    var = lines_by_label(plot_polarization(load(vd_run).states))
    assert var["a"][1] == pytest.approx(0.16)


def test_network_coloured_by_final_value(vd_run: Path) -> None:
    runs = load(vd_run)
    agents = runs.agents.collect()
    edges = edges_from_config(runs.manifest(), agents)
    assert edges.tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    final = pl.DataFrame({"agent_id": [0, 1, 2, 3], "value": [0.1, 0.2, 0.3, 0.9]})
    fig = plot_network(final, edges)
    nodes = fig.axes[0].collections[-1]
    assert nodes.get_array().tolist() == [0.1, 0.2, 0.3, 0.9]
    assert len(fig.axes[0].collections[0].get_segments()) == 6


def test_edges_from_edgelist_file_and_unknown_kind(tmp_path: Path) -> None:
    path = tmp_path / "edges.csv"
    path.write_text("p1,p2\np2 p3\n")
    agents = pl.DataFrame({"agent_id": [0, 1, 2], "id": ["p1", "p2", "p3"]})
    manifest = {"config": {"graph": {"kind": "edgelist", "path": str(path)}}}
    assert edges_from_config(manifest, agents).tolist() == [[0, 1], [1, 2]]
    assert edges_from_config({"config": {"graph": {"kind": "watts_strogatz"}}}, agents) is None


def test_strategy_shares_average_over_the_runs_that_reached_each_generation() -> None:
    """A run that stopped after generation 1 must not thin out generation 2's stack."""
    frame = pl.DataFrame(
        {
            "run_id": ["a", "a", "a", "a", "b", "b"],
            "generation": [1, 1, 2, 2, 1, 1],
            "policy": ["x", "y", "x", "x", "y", "y"],
        }
    )
    fig = plot_strategy_shares(frame)
    top = fig.axes[0].collections[-1].get_paths()[0].vertices
    heights = {round(float(gx)): float(gy) for gx, gy in top if gy > 0}
    assert heights == {1: pytest.approx(1.0), 2: pytest.approx(1.0)}  # each generation's shares sum to 1


def test_lines_join_only_consecutive_recorded_steps() -> None:
    """States recorded at steps 0, 10, 20, 21: no line from 0 to 10 or 10 to 20 (nothing measured between);
    20 to 21 are consecutive and joined. With two runs the isolated points carry error bars instead of a band."""
    xs, ys = break_at_gaps(np.array([0, 10, 20, 21]), np.array([1.0, 2.0, 3.0, 4.0]))
    assert xs.tolist() == [0, 5, 10, 15, 20, 21]
    assert np.isnan(ys[[1, 3]]).all() and ys[[0, 2, 4, 5]].tolist() == [1, 2, 3, 4]
    assert isolated(ys).tolist() == [True, False, True, False, False, False]
    per_run = pl.DataFrame({"run_id": ["a"] * 4 + ["b"] * 4, "step": [0, 10, 20, 21] * 2,
                            "clusters": [1.0, 2.0, 3.0, 4.0, 3.0, 4.0, 5.0, 6.0]})  # fmt: skip
    with pytest.warns(IntervalWarning):
        fig = plot_series(per_run, "clusters")
    ax = fig.axes[0]
    (line,) = ax.lines[:1]
    assert np.isnan(np.asarray(line.get_ydata(), dtype=float)).sum() == 2  # the two gaps break the line
    bars = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(bars) == 1 and len(bars[0].get_segments()) == 2  # error bars at steps 0 and 10 only
    assert fig.axes[0].get_xlim()[0] <= 0 and not fig.axes[0].get_legend()


def test_consecutive_rounds_are_one_unbroken_line(ipd_run: Path) -> None:
    line = plot_cooperation(load(ipd_run).interactions).axes[0].lines[0]
    assert not np.isnan(np.asarray(line.get_ydata(), dtype=float)).any()


def test_opinion_trajectories_recorded_every_k_steps_are_dots(vd_run: Path) -> None:
    states = load(vd_run).states.filter(pl.col("step") != 1)  # steps 0 and 2: one unrecorded step between
    traj = plot_opinions(states, dimension="a").axes[0]
    ys = np.asarray(traj.lines[0].get_ydata(), dtype=float)
    assert np.isnan(ys[1]) and ys[[0, 2]].tolist() == [0.0, 0.5] and traj.lines[0].get_marker() == "."


def test_one_palette_gives_a_policy_one_colour_in_every_figure(ipd_run: Path) -> None:
    runs = load(ipd_run)
    palette = Palette(["always_defect", "tit_for_tat", "always_cooperate", "alternate"])
    cooperation = plot_cooperation(runs.interactions, palette=palette).axes[0]
    lines = {ln.get_label(): ln.get_color() for ln in cooperation.lines}
    bars = plot_ranking(runs.interactions, palette=palette).axes[0]
    names = [t.get_text() for t in bars.get_yticklabels()]
    bar_colours = {n: tuple(p.get_facecolor()[:3]) for n, p in zip(names, bars.patches, strict=True)}
    for policy in ("tit_for_tat", "always_defect", "always_cooperate"):
        assert to_rgb(lines[policy]) == pytest.approx(palette.colour(policy))
        assert bar_colours[policy] == pytest.approx(palette.colour(policy))
    # sorted order, so `alternate` (absent from this run) still holds the first colour
    assert palette.colour("alternate") == COLOURS[0] and palette.colour("tit_for_tat") == COLOURS[3]


def test_palette_is_independent_of_order_and_tells_twenty_one_values_apart() -> None:
    assert Palette(["b", "a"]).colour("b") == Palette(["a", "b"]).colour("b") == COLOURS[1]
    many = Palette(f"p{i:02d}" for i in range(21))
    styles = {(many.colour(f"p{i:02d}"), many.marker(f"p{i:02d}")) for i in range(21)}
    assert len(styles) == 21 and many.colour("p20") == many.colour("p00") and many.marker("p20") != "o"


def test_trend_line_stays_inside_the_data() -> None:
    """Run a covers generations 1-4, run b 1-3: the mean of their lines is drawn over 1-3 only. Slopes 0.3 and
    0.3, intercepts 0 and 0.1: y = 0.05 + 0.3 x, which leaves [0, 1] after x = 3.17, so all of 1-3 is drawn."""
    per_run = pl.DataFrame({"run_id": ["a"] * 4 + ["b"] * 3, "generation": [1, 2, 3, 4, 1, 2, 3],
                            "fraction": [0.3, 0.6, 0.9, 1.2, 0.4, 0.7, 1.0]})  # fmt: skip
    xs, ys = trend_line(per_run, "generation", "fraction")
    assert xs.tolist() == [1, 2, 3] and ys == pytest.approx([0.35, 0.65, 0.95])
    steep = per_run.with_columns(pl.col("fraction") * 2)  # y = 0.1 + 0.6 x: above 1 from x = 1.5 on
    assert trend_line(steep, "generation", "fraction") is None  # one point left inside: no line


def test_large_network_is_a_neighbourhood_drawn_without_scipy(monkeypatch: pytest.MonkeyPatch) -> None:
    """1000 agents on a ring: the figure shows 400 of them, a connected arc, with no scipy import."""
    monkeypatch.setitem(sys.modules, "scipy", None)  # `import scipy` now raises ImportError
    n = 1000
    edges = np.stack([np.arange(n), (np.arange(n) + 1) % n], axis=1)
    final = pl.DataFrame({"agent_id": np.arange(n), "value": np.linspace(0, 1, n)})
    fig = plot_network(final, edges)
    ax = fig.axes[0]
    assert len(ax.collections[-1].get_offsets()) == 400
    assert len(ax.collections[0].get_segments()) == 399  # an arc of the ring: 400 nodes, 399 edges
    assert "400 of 1000 agents, breadth-first from agent 0" in ax.get_title()
    with pytest.raises(AnalysisError, match="at most 499"):
        plot_network(final, edges, max_drawn=500)


def test_effect_plot_draws_levels_and_intervals() -> None:
    table = pl.DataFrame({
        "scenario": ["ipd"] * 6, "metric": ["cooperation"] * 6,
        "factor": ["scenario.labels"] * 4 + ["scenario.noise"] * 2,
        "level": ["[A,B]", "[A,B]", "[J,F]", "[J,F]", "0", "0.2"],
        "policy": ["tft", "alld", "tft", "alld", "tft", "tft"],
        "mean": [0.8, 0.1, 0.7, 0.0, 0.9, 0.5], "low": [0.7, 0.0, 0.6, np.nan, 0.8, 0.4],
        "high": [0.9, 0.2, 0.8, np.nan, 1.0, 0.6], "n_seeds": [3] * 6, "n_runs": [6] * 6,
        "reduced": ["mean over rounds"] * 6, "interval": ["90% Student-t"] * 6,
    })  # fmt: skip
    fig = plot_effects(table, palette=Palette(["tft", "alld"]))
    labels, noise = fig.axes[:2]
    assert [t.get_text() for t in labels.get_xticklabels()] == ["[A,B]", "[J,F]"]
    assert noise.get_xticks().tolist() == [0.0, 0.2]  # numbers on a numeric axis
    hollow = [ln for ln in labels.lines if ln.get_markerfacecolor() == "none"]
    assert len(hollow) == 1 and np.asarray(hollow[0].get_ydata()).tolist() == [0.0]  # alld at [J,F]: no interval
    assert "3 seeds per level, 90% Student-t interval" in fig._suptitle.get_text()
    assert labels.get_ylabel() == "cooperation (mean over rounds)"
