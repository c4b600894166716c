"""Each figure draws the hand-computed numbers of the tiny runs (read back from the Axes)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from analysis import AnalysisError, load
from analysis.donations import strategy_labels
from analysis.plots import (
    edges_from_config,
    plot_clusters,
    plot_cooperation,
    plot_donations,
    plot_network,
    plot_opinions,
    plot_polarization,
    plot_ranking,
    plot_strategy_shares,
    to_png,
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
