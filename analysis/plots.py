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
from analysis.effects import numeric_levels
from analysis.errors import AnalysisError
from analysis.opinions import cluster_counts, polarization
from analysis.palette import Palette, palette_for
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


def break_at_gaps(xs: np.ndarray, *ys: np.ndarray) -> tuple[np.ndarray, ...]:
    """Insert a NaN point between recorded x values that are not consecutive, so no line or band joins them.

    Steps, rounds and generations are whole numbers: a state recorded every 10 steps is known at 0,
    10, 20, not between, and a line from 0 to 10 would draw values nobody measured. Whole-number x
    values more than 1 apart are kept apart (each point keeps its marker); other x values (fractions)
    are joined in order.
    """
    xs = np.asarray(xs, dtype=np.float64)
    if len(xs) < 2 or not np.all(np.mod(xs, 1.0) == 0.0):
        return (xs, *(np.asarray(y, dtype=np.float64) for y in ys))
    gaps = np.flatnonzero(np.diff(xs) > 1.0) + 1
    between = (xs[gaps - 1] + xs[gaps]) / 2.0
    return (np.insert(xs, gaps, between), *(np.insert(np.asarray(y, dtype=np.float64), gaps, np.nan) for y in ys))


def isolated(ys: np.ndarray) -> np.ndarray:
    """Which points of a `break_at_gaps` series (its y values, NaN at the breaks) have no neighbour to join:
    a band cannot show their interval."""
    finite = ~np.isnan(np.asarray(ys, dtype=np.float64))
    if len(ys) < 2:
        return finite
    before = np.concatenate([[False], finite[:-1]])
    after = np.concatenate([finite[1:], [False]])
    return finite & ~before & ~after


def line_with_band(
    ax: Any,
    summary: pl.DataFrame,
    x: str,
    hue: str | None = None,
    label: str | None = None,
    palette: Palette | None = None,
) -> None:
    """Plot `mean` against x (one line per hue value, coloured by `palette`) with the [low, high] band
    where it exists; lines and bands only join consecutive recorded x values (`break_at_gaps`), and a
    point with no neighbour shows its interval as an error bar."""
    groups = summary.partition_by(hue, maintain_order=True, as_dict=True) if hue else {(label,): summary}
    colours = palette_for([k[0] for k in groups], palette) if hue else None
    for key, g in sorted(groups.items(), key=lambda kv: str(kv[0])):
        g = g.sort(x)
        xs, mean, low, high = break_at_gaps(g[x].to_numpy(), g["mean"].to_numpy(), g["low"].to_numpy(),
                                            g["high"].to_numpy())  # fmt: skip
        style = {"color": colours.colour(key[0]), "marker": colours.marker(key[0])} if colours else {"marker": "o"}
        (line,) = ax.plot(xs, mean, markersize=3, label=None if key[0] is None else str(key[0]), **style)
        if not np.isfinite(low).any():
            continue
        ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        alone = isolated(mean) & np.isfinite(low)
        if alone.any():
            ax.errorbar(xs[alone], mean[alone], yerr=[mean[alone] - low[alone], high[alone] - mean[alone]],
                        fmt="none", ecolor=line.get_color(), elinewidth=1, capsize=2)  # fmt: skip


def _title_runs(ax: Any, frame: Frame, title: str) -> None:
    n = lazy(frame).select(pl.col("run_id").n_unique()).collect().item()
    ax.set_title(
        f"{title} ({n} run{'s' if n != 1 else ''}{', 95% t interval over seeds' if n > 1 else ''})",
        fontsize=10,
    )


def plot_cooperation(
    interactions: Frame, x: str = "round", hue: str | None = "policy", palette: Palette | None = None
) -> Figure:
    """Cooperation rate over rounds (IPD) or generations (donor game), one line per policy."""
    by = [x] if hue is None or hue not in columns(interactions) else [x, hue]
    summary = over_seeds(cooperation_rate(interactions, by=by), "cooperation", by=by)
    fig, ax = new_figure()
    line_with_band(ax, summary, x, hue if len(by) > 1 else None, palette=palette)
    ax.set(xlabel=x, ylabel="cooperation rate", ylim=(-0.02, 1.02))
    integer_ticks(ax)
    if len(by) > 1:
        ax.legend(fontsize=8, ncols=2)
    _title_runs(ax, interactions, "Cooperation over time")
    return fig


def plot_bars(
    per_run: pl.DataFrame,
    value: str,
    hue: str,
    xlabel: str | None = None,
    title: str = "",
    palette: Palette | None = None,
) -> Figure:
    """A per-run metric per group (e.g. policy, each in its palette colour), best first, with its
    interval over seeds."""
    summary = over_seeds(per_run, value, by=[hue]).sort("mean")
    colours = palette_for(summary[hue].to_list(), palette)
    fig, ax = new_figure(figsize=(7.0, 0.35 * summary.height + 1.5))
    y = np.arange(summary.height)
    mean = summary["mean"].to_numpy()
    err = np.vstack([mean - summary["low"].to_numpy(), summary["high"].to_numpy() - mean])
    ax.barh(y, mean, xerr=None if np.isnan(err).all() else err, alpha=0.8,
            color=[colours.colour(v) for v in summary[hue].to_list()])  # fmt: skip
    ax.set_yticks(y, [str(v) for v in summary[hue].to_list()], fontsize=8)
    ax.set_xlabel(xlabel or value)
    _title_runs(ax, per_run, title or value)
    return fig


def plot_ranking(interactions: Frame, palette: Palette | None = None) -> Figure:
    """IPD tournament: mean match score per policy, best first, with the interval over seeds."""
    return plot_bars(tournament_ranking(interactions), "score", "policy", "mean total payoff per match",
                     "Tournament ranking", palette=palette)  # fmt: skip


def trend_line(per_run: pl.DataFrame, x: str, y: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The mean over runs of each run's least-squares line, drawn only where it describes data: over the x
    values every run recorded (from the latest first x to the earliest last x) and inside [0, 1], the
    range a share can take. None when no run has two x values."""
    fits = []
    for _, g in per_run.drop_nulls(y).group_by("run_id"):
        gx, gy = g[x].to_numpy().astype(np.float64), g[y].to_numpy().astype(np.float64)
        if len(np.unique(gx)) > 1:
            slope, intercept = np.polyfit(gx, gy, 1)
            fits.append((slope, intercept, gx.min(), gx.max()))
    if not fits:
        return None
    slope, intercept = np.mean([f[0] for f in fits]), np.mean([f[1] for f in fits])
    first, last = max(f[2] for f in fits), min(f[3] for f in fits)
    xs = np.unique(per_run[x].to_numpy().astype(np.float64))
    xs = xs[(xs >= first) & (xs <= last)]
    ys = intercept + slope * xs
    inside = (ys >= 0.0) & (ys <= 1.0)
    return (xs[inside], ys[inside]) if inside.sum() > 1 else None


def plot_donations(interactions: Frame) -> Figure:
    """Donor game: mean donated fraction per generation with the fitted trend (slope over seeds)."""
    per_run = donation_fraction(interactions)
    summary = over_seeds(per_run, "fraction", by=["generation"])
    slope = over_seeds(donation_trend(per_run), "slope")
    fig, ax = new_figure()
    line_with_band(ax, summary, "generation", label="mean donation")
    s = slope.row(0, named=True)
    trend = trend_line(per_run, "generation", "fraction")
    if np.isfinite(s["mean"]) and trend is not None:
        ci = "" if np.isnan(s["low"]) else f" [{s['low']:+.3f}, {s['high']:+.3f}]"
        ax.plot(*trend, "k--", linewidth=1, label=f"trend {s['mean']:+.3f}/gen{ci}")
    ax.set(xlabel="generation", ylabel="fraction of resources donated", ylim=(-0.02, 1.02))
    integer_ticks(ax)
    ax.legend(fontsize=8)
    _title_runs(ax, interactions, "Donations per generation")
    return fig


def plot_shares(
    shares: pl.DataFrame,
    x: str,
    hue: str,
    value: str = "share",
    title: str = "Strategy shares",
    palette: Palette | None = None,
) -> Figure:
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
    names = sorted(c for c in table.columns if c != x)
    colours = palette_for(names, palette)
    fig, ax = new_figure()
    ax.stackplot(table[x].to_numpy(), *[table[c].to_numpy() for c in names], labels=names, alpha=0.85,
                 colors=[colours.colour(n) for n in names])  # fmt: skip
    ax.set(xlabel=x, ylabel="share of agents", ylim=(0, 1))
    integer_ticks(ax)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _title_runs(ax, shares, title)
    return fig


def plot_strategy_shares(
    frame: Frame, x: str = "generation", column: str = "policy", palette: Palette | None = None
) -> Figure:
    """Stacked shares of each strategy per generation (see `plot_shares`)."""
    return plot_shares(strategy_shares(frame, by=x, column=column), x, column, palette=palette)


def plot_series(
    per_run: pl.DataFrame,
    value: str,
    x: str = "step",
    hue: str | None = None,
    ylabel: str | None = None,
    title: str = "",
    palette: Palette | None = None,
) -> Figure:
    """Any per-run metric over x (e.g. Gini, reputation, cluster count) with its interval over seeds,
    drawn at the x values that were recorded (see `line_with_band`)."""
    by = [x] if hue is None else [x, hue]
    summary = over_seeds(per_run, value, by=by)
    fig, ax = new_figure()
    line_with_band(ax, summary, x, hue, palette=palette)
    ax.set(xlabel=x, ylabel=ylabel or value)
    integer_ticks(ax)
    if hue:
        ax.legend(fontsize=8, ncols=2)
    _title_runs(ax, per_run, title or value)
    return fig


EFFECT_COLUMNS = (
    "scenario", "metric", "factor", "level", "mean", "low", "high", "n_seeds", "n_runs", "reduced", "interval"
)  # fmt: skip


def plot_effects(table: pl.DataFrame, *, palette: Palette | None = None, title: str | None = None) -> Figure:
    """An effect table (`analysis.effects.effect_table`) as one panel per factor: its levels on the x axis
    (numeric levels at their values, others evenly spaced), the mean over seeds as a marker and the
    interval as a bar, one colour per hue value (e.g. policy) from `palette`. A hollow marker has no
    interval (one seed, or every seed agreed). Markers are not joined: between two levels nothing was run.
    """
    require(table, list(EFFECT_COLUMNS), "plot_effects")
    if table.height == 0:
        raise AnalysisError("plot_effects: the effect table is empty")
    hue = next((c for c in table.columns if c not in EFFECT_COLUMNS), None)
    panels = table.select("scenario", "factor").unique(maintain_order=True).rows()
    several = table["scenario"].n_unique() > 1
    colours = palette_for(table[hue].to_list(), palette) if hue else None
    ncols = min(len(panels), 3)
    nrows = -(-len(panels) // ncols)
    width = max(6.5, 4.2 * ncols) + (2.0 if hue else 0.0)  # room for the two-line title over one panel
    fig = Figure(figsize=(width, 3.4 * nrows + 0.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharey=not several)).ravel()
    for ax, (scenario, factor) in zip(axes, panels, strict=False):
        part = table.filter((pl.col("scenario") == scenario) & (pl.col("factor") == factor))
        _effect_panel(ax, part, hue, colours)
        ax.set_xlabel(f"{scenario}: {factor}" if several else factor)
        ax.set_ylabel(f"{part['metric'][0]} ({part['reduced'][0]})", fontsize=9)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    if hue:
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center", fontsize=7, title=hue,
                   title_fontsize=7)  # fmt: skip
    low, high = table["n_seeds"].min(), table["n_seeds"].max()
    seeds = f"{low}" if low == high else f"{low} to {high}"
    fig.suptitle(title or f"{table['metric'][0]} by factor level\nmean over {seeds} seeds per level, "
                 f"{table['interval'][0]} interval (hollow marker: no interval)", fontsize=9)  # fmt: skip
    return fig


def _effect_panel(ax: Any, part: pl.DataFrame, hue: str | None, colours: Palette | None) -> None:
    levels = part["level"].unique(maintain_order=True).to_list()
    numbers = numeric_levels(levels) if len(levels) > 1 else None
    position = dict(zip(levels, numbers if numbers else range(len(levels)), strict=True))
    spacing = float(np.min(np.diff(sorted(position.values())))) if len(levels) > 1 else 1.0
    groups = part.partition_by(hue, maintain_order=True, as_dict=True) if hue else {(None,): part}
    keys = sorted(groups, key=lambda k: str(k[0]))
    width = 0.5 * spacing / max(1, len(keys))
    for i, key in enumerate(keys):
        g = groups[key]
        xs = np.array([position[v] for v in g["level"].to_list()], dtype=np.float64) + (i - (len(keys) - 1) / 2) * width
        mean, low, high = (g[c].to_numpy().astype(np.float64) for c in ("mean", "low", "high"))
        style = colours.style(key[0]) if colours else {"color": "tab:blue", "marker": "o"}
        has = np.isfinite(low) & np.isfinite(high)
        ax.errorbar(xs[has], mean[has], yerr=[mean[has] - low[has], high[has] - mean[has]], linestyle="none",
                    capsize=3, markersize=5, label=None if key[0] is None else str(key[0]), **style)  # fmt: skip
        if (~has).any():
            ax.plot(xs[~has], mean[~has], linestyle="none", markersize=5, markerfacecolor="none",
                    label=None if key[0] is None or has.any() else str(key[0]), **style)  # fmt: skip
    if numbers is None:
        ax.set_xticks(range(len(levels)), levels, fontsize=8, rotation=20 if max(map(len, levels)) > 8 else 0)
    else:
        ax.set_xticks(sorted(position.values()), [v for v, _ in sorted(position.items(), key=lambda kv: kv[1])],
                      fontsize=8)  # fmt: skip
    ax.margins(x=0.15)


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
    steps = wide["step"].to_numpy()
    xs, *columns_ = break_at_gaps(steps, *wide.drop("step").to_numpy().T)
    gapped = len(xs) > len(steps)  # states recorded every k steps: a dot per recorded step, no line across
    ax.plot(xs, np.column_stack(columns_), linewidth=0.6, alpha=0.5, marker="." if gapped else None,
            markersize=2)  # fmt: skip
    ax.set(xlabel="step", ylabel=f"position{'' if dimension is None else f' ({dimension})'}")
    integer_ticks(ax)
    recorded = "" if not gapped else f", {len(steps)} recorded steps"
    ax.set_title(f"Opinion trajectories, run {run_id}{recorded}", fontsize=10)
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


NETWORK_MAX_DRAWN = 400  # networkx lays out fewer than 500 nodes with numpy alone (more needs scipy)


def neighbourhood(graph: Any, size: int) -> list[int]:
    """Up to `size` nodes reached breadth-first from the lowest node id (then from the lowest id not yet
    reached, for a graph of several components): a connected piece of the graph, where a uniform sample
    of nodes would keep almost none of a sparse graph's edges."""
    import networkx as nx

    chosen: list[int] = []
    seen: set[int] = set()
    for start in sorted(graph.nodes):
        if start in seen:
            continue
        for node in nx.bfs_tree(graph, start):
            seen.add(node)
            chosen.append(node)
            if len(chosen) == size:
                return chosen
    return chosen


def plot_network(
    final_values: pl.DataFrame,
    edges: np.ndarray | Sequence[tuple[int, int]],
    *,
    value: str = "value",
    seed: int = 0,
    max_drawn: int = NETWORK_MAX_DRAWN,
) -> Figure:
    """The social graph drawn with a seeded spring layout, nodes coloured by their final value.

    `final_values`: agent_id and `value` (one row per agent); `edges`: (m, 2) agent ids. A graph of
    more than `max_drawn` nodes is drawn as the breadth-first neighbourhood of `max_drawn` nodes around
    the lowest agent id (`neighbourhood`), and the title says so: a drawing of thousands of nodes is a
    blot, and networkx's layout of 500 or more nodes needs scipy, which socsim does not depend on.
    """
    import networkx as nx  # only this figure needs it

    require(final_values, ["agent_id", value], "plot_network")
    if max_drawn >= 500:
        raise AnalysisError(f"plot_network: max_drawn={max_drawn}; at most 499 (larger layouts need scipy)")
    graph = nx.Graph()
    ids = final_values["agent_id"].to_list()
    graph.add_nodes_from(ids)
    graph.add_edges_from(map(tuple, np.asarray(edges, dtype=np.int64).reshape(-1, 2).tolist()))
    total = graph.number_of_nodes()
    if total > max_drawn:
        graph = graph.subgraph(neighbourhood(graph, max_drawn)).copy()
    drawn = sorted(graph.nodes)
    colour = dict(zip(ids, final_values[value].to_list(), strict=True))
    pos = nx.spring_layout(graph, seed=seed, method="force")
    fig, ax = new_figure(figsize=(6.0, 5.0))
    nx.draw_networkx_edges(graph, pos, ax=ax, alpha=0.15, width=0.5)
    nodes = nx.draw_networkx_nodes(
        graph,
        pos,
        nodelist=drawn,
        node_color=[colour.get(i, np.nan) for i in drawn],  # an edge's end with no recorded value: no colour
        cmap="viridis",
        vmin=0.0,
        vmax=1.0,
        node_size=max(8, 300 // max(1, len(drawn) // 10)),
        ax=ax,
    )
    fig.colorbar(nodes, ax=ax, label=f"final {value}")
    ax.set_axis_off()
    sample = "" if len(drawn) == total else f"\n{len(drawn)} of {total} agents, breadth-first from agent {drawn[0]}"
    ax.set_title(f"Network coloured by final value{sample}", fontsize=10)
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
        graph_file = Path(run_dir) / "graph.parquet"
        return pl.read_parquet(graph_file, columns=["source", "target"], glob=False).to_numpy()
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
