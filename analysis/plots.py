"""One function per figure a researcher expects; each returns a matplotlib Figure.

Figures are built with the object API (`matplotlib.figure.Figure`, rendered by Agg), never pyplot:
no global figure state, nothing opens a window, and the same call works in a script, a test, the
HTML report and a notebook (`display(fig)`). Lines are means over runs with a shaded Student-t
interval over seeds when the frame holds several runs.

The social graph's edges are not in the Parquet records, so `plot_network` takes them as an
argument; `edges_from_config` rebuilds them only where that is exact and cheap (complete graphs and
`edgelist` files); for random graphs pass the edges yourself.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.cooperation import cooperation_rate, strategy_shares, tournament_ranking
from analysis.donations import donation_fraction, donation_trend
from analysis.errors import AnalysisError
from analysis.opinions import cluster_counts, polarization
from analysis.stats import hold_last, over_seeds
from scenarios.tables import Frame, columns, lazy, require

FIGSIZE = (7.0, 4.0)


def new_figure(ncols: int = 1, figsize: tuple[float, float] = FIGSIZE, **kw: Any) -> tuple[Figure, Any]:
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols, **kw)


def to_png(fig: Figure, dpi: int = 110) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def integer_ticks(ax: Any) -> None:
    """Rounds, generations and steps are whole numbers: no 1.25 on the axis."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def line_with_band(ax: Any, summary: pl.DataFrame, x: str, hue: str | None = None, label: str | None = None) -> None:
    """Plot `mean` against x (one line per hue value) with the [low, high] band where it exists."""
    groups = summary.partition_by(hue, maintain_order=True, as_dict=True) if hue else {(label,): summary}
    for key, g in sorted(groups.items(), key=lambda kv: str(kv[0])):
        g = g.sort(x)
        xs, mean = g[x].to_numpy(), g["mean"].to_numpy()
        (line,) = ax.plot(xs, mean, marker="o", markersize=3, label=None if key[0] is None else str(key[0]))
        low, high = g["low"].to_numpy(), g["high"].to_numpy()
        if np.isfinite(low).any():
            ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.2, linewidth=0)


def _title_runs(ax: Any, frame: Frame, title: str) -> None:
    n = lazy(frame).select(pl.col("run_id").n_unique()).collect().item()
    ax.set_title(
        f"{title} ({n} run{'s' if n != 1 else ''}{', 95% t interval over seeds' if n > 1 else ''})",
        fontsize=10,
    )


def plot_cooperation(interactions: Frame, x: str = "round", hue: str | None = "policy") -> Figure:
    """Cooperation rate over rounds (IPD) or generations (donor game), one line per policy."""
    by = [x] if hue is None or hue not in columns(interactions) else [x, hue]
    summary = over_seeds(cooperation_rate(interactions, by=by), "cooperation", by=by)
    fig, ax = new_figure()
    line_with_band(ax, summary, x, hue if len(by) > 1 else None)
    ax.set(xlabel=x, ylabel="cooperation rate", ylim=(-0.02, 1.02))
    integer_ticks(ax)
    if len(by) > 1:
        ax.legend(fontsize=8, ncols=2)
    _title_runs(ax, interactions, "Cooperation over time")
    return fig


def plot_bars(per_run: pl.DataFrame, value: str, hue: str, xlabel: str | None = None, title: str = "") -> Figure:
    """A per-run metric per group (e.g. policy), best first, with its interval over seeds."""
    summary = over_seeds(per_run, value, by=[hue]).sort("mean")
    fig, ax = new_figure(figsize=(7.0, 0.35 * summary.height + 1.5))
    y = np.arange(summary.height)
    mean = summary["mean"].to_numpy()
    err = np.vstack([mean - summary["low"].to_numpy(), summary["high"].to_numpy() - mean])
    ax.barh(y, mean, xerr=None if np.isnan(err).all() else err, color="tab:blue", alpha=0.8)
    ax.set_yticks(y, [str(v) for v in summary[hue].to_list()], fontsize=8)
    ax.set_xlabel(xlabel or value)
    _title_runs(ax, per_run, title or value)
    return fig


def plot_ranking(interactions: Frame) -> Figure:
    """IPD tournament: mean match score per policy, best first, with the interval over seeds."""
    return plot_bars(tournament_ranking(interactions), "score", "policy", "mean total payoff per match",
                     "Tournament ranking")  # fmt: skip


def plot_donations(interactions: Frame) -> Figure:
    """Donor game: mean donated fraction per generation with the fitted trend (slope over seeds)."""
    per_run = donation_fraction(interactions)
    summary = over_seeds(per_run, "fraction", by=["generation"])
    slope = over_seeds(donation_trend(per_run), "slope")
    fig, ax = new_figure()
    line_with_band(ax, summary, "generation", label="mean donation")
    xs = summary["generation"].to_numpy().astype(float)
    s = slope.row(0, named=True)
    if np.isfinite(s["mean"]) and len(xs) > 1:
        intercept = float(summary["mean"].mean()) - s["mean"] * float(xs.mean())
        ci = "" if np.isnan(s["low"]) else f" [{s['low']:+.3f}, {s['high']:+.3f}]"
        ax.plot(xs, intercept + s["mean"] * xs, "k--", linewidth=1, label=f"trend {s['mean']:+.3f}/gen{ci}")
    ax.set(xlabel="generation", ylabel="fraction of resources donated", ylim=(-0.02, 1.02))
    integer_ticks(ax)
    ax.legend(fontsize=8)
    _title_runs(ax, interactions, "Donations per generation")
    return fig


def plot_shares(shares: pl.DataFrame, x: str, hue: str, value: str = "share", title: str = "Strategy shares") -> Figure:
    """Stacked shares of each `hue` value over x: the mean over the runs that reached that x (a
    shorter, failed run does not thin out the later generations). `shares`: one row per run, x, hue."""
    runs_at = shares.group_by(x).agg(pl.col("run_id").n_unique().alias("runs"))
    table = (
        shares.group_by([x, hue])
        .agg(pl.col(value).sum())
        .join(runs_at, on=x)
        .with_columns(pl.col(value) / pl.col("runs"))
        .pivot(on=hue, index=x, values=value)
        .fill_null(0.0)
        .sort(x)
    )
    names = [c for c in table.columns if c != x]
    fig, ax = new_figure()
    ax.stackplot(table[x].to_numpy(), *[table[c].to_numpy() for c in names], labels=names, alpha=0.85)
    ax.set(xlabel=x, ylabel="share of agents", ylim=(0, 1))
    integer_ticks(ax)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _title_runs(ax, shares, title)
    return fig


def plot_strategy_shares(frame: Frame, x: str = "generation", column: str = "policy") -> Figure:
    """Stacked shares of each strategy per generation (see `plot_shares`)."""
    return plot_shares(strategy_shares(frame, by=x, column=column), x, column)


def plot_series(
    per_run: pl.DataFrame,
    value: str,
    x: str = "step",
    hue: str | None = None,
    ylabel: str | None = None,
    title: str = "",
) -> Figure:
    """Any per-run metric over x (e.g. Gini, reputation, cluster count) with its interval over seeds."""
    by = [x] if hue is None else [x, hue]
    summary = over_seeds(per_run, value, by=by)
    fig, ax = new_figure()
    line_with_band(ax, summary, x, hue)
    ax.set(xlabel=x, ylabel=ylabel or value)
    integer_ticks(ax)
    if hue:
        ax.legend(fontsize=8, ncols=2)
    _title_runs(ax, per_run, title or value)
    return fig


def plot_opinions(
    states: Frame,
    *,
    dimension: str | None = None,
    run_id: str | None = None,
    value: str = "value",
    max_agents: int = 200,
    bins: int = 40,
) -> Figure:
    """Opinion trajectories of one run and dimension (left) and the final positions' histogram (right).

    Defaults: the first run and the first dimension; at most `max_agents` trajectories (lowest ids).
    """
    require(states, ["run_id", "step", "agent_id", value], "plot_opinions")
    frame = lazy(states)
    run_id = run_id or frame.select(pl.col("run_id").min()).collect().item()
    frame = frame.filter(pl.col("run_id") == run_id)
    if "dimension" in columns(states):
        dimension = dimension or frame.select(pl.col("dimension").min()).collect().item()
        frame = frame.filter(pl.col("dimension") == dimension)
    df = frame.select("step", "agent_id", value).collect()
    if df.height == 0:
        raise AnalysisError(f"plot_opinions: no positions for run {run_id!r}, dimension {dimension!r}")
    wide = (
        df.filter(pl.col("agent_id").is_in(df["agent_id"].unique().sort().head(max_agents).implode()))
        .pivot(on="agent_id", index="step", values=value)
        .sort("step")
    )
    fig, (ax, hist) = new_figure(2, figsize=(9.0, 4.0), sharey=True, gridspec_kw={"width_ratios": [3, 1]})
    ys = wide.drop("step").to_numpy()
    ax.plot(wide["step"].to_numpy(), ys, linewidth=0.6, alpha=0.5)
    ax.set(xlabel="step", ylabel=f"position{'' if dimension is None else f' ({dimension})'}")
    integer_ticks(ax)
    ax.set_title(f"Opinion trajectories, run {run_id}", fontsize=10)
    final = df.filter(pl.col("step") == df["step"].max())[value].to_numpy()
    hist.hist(
        final,
        bins=bins,
        range=(min(0.0, final.min()), max(1.0, final.max())),
        orientation="horizontal",
        color="tab:gray",
    )
    hist.set(xlabel="agents")
    hist.set_title("final positions", fontsize=10)
    return fig


def plot_network(
    final_values: pl.DataFrame,
    edges: np.ndarray | Sequence[tuple[int, int]],
    *,
    value: str = "value",
    seed: int = 0,
    max_nodes: int = 2000,
) -> Figure:
    """The social graph drawn with a seeded spring layout, nodes coloured by their final value.

    `final_values`: agent_id and `value` (one row per agent); `edges`: (m, 2) agent ids.
    """
    import networkx as nx  # only this figure needs it

    require(final_values, ["agent_id", value], "plot_network")
    if final_values.height > max_nodes:
        raise AnalysisError(f"plot_network: {final_values.height} nodes is more than max_nodes={max_nodes}")
    graph = nx.Graph()
    ids = final_values["agent_id"].to_list()
    graph.add_nodes_from(ids)
    graph.add_edges_from(map(tuple, np.asarray(edges, dtype=np.int64).reshape(-1, 2).tolist()))
    pos = nx.spring_layout(graph, seed=seed)
    fig, ax = new_figure(figsize=(6.0, 5.0))
    nx.draw_networkx_edges(graph, pos, ax=ax, alpha=0.15, width=0.5)
    nodes = nx.draw_networkx_nodes(
        graph,
        pos,
        nodelist=ids,
        node_color=final_values[value].to_numpy(),
        cmap="viridis",
        vmin=0.0,
        vmax=1.0,
        node_size=max(8, 300 // max(1, len(ids) // 10)),
        ax=ax,
    )
    fig.colorbar(nodes, ax=ax, label=f"final {value}")
    ax.set_axis_off()
    ax.set_title("Network coloured by final value", fontsize=10)
    return fig


def edges_from_config(
    manifest: dict[str, Any], agents: pl.DataFrame, max_complete: int = 50, run_dir: str | Path | None = None
) -> np.ndarray | None:
    """Edges of a run's graph, else None.

    Complete graphs are rebuilt (only up to `max_complete` agents: a drawing of more is a solid blob;
    their graph.parquet holds no rows, only `socsim.graph: complete` in its metadata); otherwise
    `run_dir/graph.parquet` (written by every run) is read when given, else edgelist files still on disk.
    """
    graph = (manifest.get("config") or {}).get("graph") or {}
    n = agents.height
    if graph.get("kind") == "complete":  # recorded without edges (it is implicit): rebuilt when small
        if n > max_complete:
            return None
        u, v = np.triu_indices(n, k=1)
        return np.stack([u, v], axis=1)
    if run_dir is not None and (Path(run_dir) / "graph.parquet").is_file():
        return pl.read_parquet(Path(run_dir) / "graph.parquet").select("source", "target").to_numpy()
    if graph.get("kind") == "edgelist" and graph.get("path") and Path(graph["path"]).is_file():
        if "id" not in agents.columns:
            return None
        index = dict(zip(agents["id"].cast(pl.String).to_list(), agents["agent_id"].to_list(), strict=True))
        pairs = []
        for line in Path(graph["path"]).read_text().splitlines():
            parts = line.replace(",", " ").split()
            if len(parts) >= 2 and parts[0] in index and parts[1] in index:
                pairs.append((index[parts[0]], index[parts[1]]))
        return np.array(pairs, dtype=np.int64).reshape(-1, 2)
    return None


def plot_clusters(states: Frame, **kw: Any) -> Figure:
    """Number of opinion clusters (groups >= 1% of agents) over steps, per dimension.

    Runs that stopped early (converged) hold their last count up to the longest run's last step.
    """
    counts = cluster_counts(states, **kw)
    hue = "dimension" if "dimension" in counts.columns else None
    counts = hold_last(counts, by=[hue] if hue else [])
    return plot_series(counts, "clusters", hue=hue, ylabel="clusters (>= 1% of agents)", title="Opinion clusters")


def plot_polarization(states: Frame, measure: str = "variance") -> Figure:
    """Variance (or bimodality) of positions over steps, per dimension (early-stopped runs held)."""
    pol = polarization(states)
    hue = "dimension" if "dimension" in pol.columns else None
    pol = hold_last(pol, by=[hue] if hue else [])
    return plot_series(pol, measure, hue=hue, title=f"Polarization: {measure}")


def manifest_text(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=2, sort_keys=True, default=str)
