"""`socsim-report RUN_DIR [-o out.html]`: one self-contained HTML page for a run or a sweep.

Self-contained so it can be mailed or archived with the data: figures are inlined as base64 PNG,
there is no script, stylesheet link or font to fetch. Everything taken from the run (manifest,
model replies, agent names) is HTML-escaped: agent text is untrusted input.

Sections are chosen by what the run recorded, not by scenario name, so a new scenario with the
usual columns gets the matching figures; a section whose columns are missing says so and is skipped.
"""

from __future__ import annotations

import argparse
import base64
import html
import math
import sys
from collections.abc import Callable
from pathlib import Path

import polars as pl
from matplotlib.figure import Figure

from analysis import plots
from analysis.cooperation import mean_payoff_by_strategy, tournament_ranking
from analysis.donations import (
    donation_fraction,
    donation_trend,
    final_round,
    reputation_columns,
    reputation_dynamics,
    resource_gini,
    strategy_labels,
)
from analysis.errors import AnalysisError
from analysis.frames import columns
from analysis.load import RunSet, load
from analysis.opinions import cluster_counts, time_to_consensus
from analysis.stats import over_seeds

SAMPLE_EXCHANGES = 12
TEXT_COLUMNS = ("message", "justification", "reply", "text", "strategy", "trace")
STYLE = """
body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h3{font-size:1.05em}
h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:.2em .5em;
text-align:left;vertical-align:top}th{background:#f4f4f4}pre{background:#f8f8f8;padding:.8em;overflow:auto;
font-size:.8em;max-height:30em}img{max-width:100%;display:block;margin:.5em 0}
.note{color:#777;font-style:italic}
"""


class Page:
    """Collects escaped HTML fragments; every value from the run passes through `text` or `table`."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.level = 2  # sections are h3 under a sweep's per-condition h2

    def heading(self, title: str) -> None:
        self.parts.append(f"<h{self.level}>{html.escape(title)}</h{self.level}>")

    def text(self, body: str, css: str = "") -> None:
        cls = f' class="{css}"' if css else ""
        self.parts.append(f"<p{cls}>{html.escape(body)}</p>")

    def pre(self, body: str) -> None:
        self.parts.append(f"<pre>{html.escape(body)}</pre>")

    def figure(self, fig: Figure, alt: str) -> None:
        data = base64.b64encode(plots.to_png(fig)).decode("ascii")
        self.parts.append(f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')

    def table(self, frame: pl.DataFrame, digits: int = 3) -> None:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_cell(v, digits))}</td>" for v in row) + "</tr>"
            for row in frame.iter_rows()
        )
        self.parts.append(f"<table><tr>{head}</tr>{rows}</table>")

    def section(self, title: str, build: Callable[[], None]) -> None:
        """A section that needs columns the run lacks is reported as skipped, not fatal."""
        self.heading(title)
        try:
            build()
        except AnalysisError as exc:
            self.text(f"Skipped: {exc}", css="note")

    def html(self, title: str) -> str:
        return (
            '<!DOCTYPE html><html><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>{''.join(self.parts)}</body></html>"
        )


def _cell(value: object, digits: int) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.{digits}g}"
    return "" if value is None else str(value)


def build_report(path: str | Path) -> str:
    """The HTML text of the report for the run (or sweep) at `path`.

    A sweep gets one block of figures per condition (runs differing only in seed), so intervals are
    over seeds of one setting and never mix, say, two values of epsilon.
    """
    runs = load(path)
    page = Page()
    overview(page, runs)
    groups = runs.conditions()
    for label, run_ids in groups:
        subset = runs.subset(run_ids)
        if len(groups) > 1:
            runs_text = f"{len(run_ids)} run{'s' if len(run_ids) != 1 else ''}"
            page.parts.append(f"<h2>Condition: {html.escape(label)} ({runs_text})</h2>")
            page.level = 3
        scenario_sections(page, subset)
    page.level = 2
    exchanges(page, runs)
    page.heading("Manifest" + ("" if len(runs) == 1 else f" (first of {len(runs)} runs)"))
    page.pre(plots.manifest_text(runs.manifest(runs.run_ids[0])))
    scenarios = ", ".join(runs.scenarios)
    return page.html(f"socsim report: {scenarios}, {len(runs)} run{'s' if len(runs) != 1 else ''}")


def scenario_sections(page: Page, runs: RunSet) -> None:
    """The figures that fit what these runs recorded (chosen by columns, not by scenario name)."""
    have = set(runs.tables)
    inter_cols = set(columns(runs.interactions)) if "interactions" in have else set()
    if {"action", "payoff_actor", "match_id"} <= inter_cols:
        repeated_games(page, runs)
    if {"action", "fraction"} <= inter_cols:
        donor_game(page, runs)
    if "states" in have and "value" in columns(runs.states):
        opinions(page, runs)


def overview(page: Page, runs: RunSet) -> None:
    """Settings shared by all runs as a two-column list; what varies (seed, swept parameters) per run."""
    page.heading("Runs")
    meta = runs.runs.with_columns(
        pl.Series("started_at", [r.manifest.get("started_at") for r in runs], pl.String),
        pl.Series("ended_at", [r.manifest.get("ended_at") for r in runs], pl.String),
    )
    for key in sorted({k for r in runs for k, v in (r.manifest.get("totals") or {}).items() if _scalar(v)}):
        values = [(r.manifest.get("totals") or {}).get(key) for r in runs]
        meta = meta.with_columns(pl.Series(f"total_{key}", [str(v) for v in values], pl.String))
    varying = [c for c in meta.columns if c == "run_id" or meta[c].cast(pl.String).n_unique() > 1]
    common = [c for c in meta.columns if c not in varying and meta[c].null_count() < meta.height]
    page.table(pl.DataFrame({"setting": common, "value": [_cell(meta[c][0], 6) for c in common]}))
    page.table(meta.select(varying))


def _scalar(value: object) -> bool:
    return not isinstance(value, (dict, list))


def repeated_games(page: Page, runs: RunSet) -> None:
    inter = runs.interactions

    def cooperation() -> None:
        page.figure(plots.plot_cooperation(inter, x="round", hue="policy"), "cooperation over rounds")

    def ranking() -> None:
        page.figure(plots.plot_ranking(inter), "tournament ranking")
        ranked = over_seeds(tournament_ranking(inter), "score", by=["policy"]).sort("mean", descending=True)
        page.table(ranked.rename({"mean": "mean match score"}))
        page.text("Mean payoff per decision, by strategy:")
        page.table(over_seeds(mean_payoff_by_strategy(inter), "payoff", by=["policy"]).sort("mean", descending=True))

    page.section("Cooperation over rounds", cooperation)
    page.section("Tournament", ranking)


def donor_game(page: Page, runs: RunSet) -> None:
    inter = runs.interactions

    def donations() -> None:
        page.figure(plots.plot_donations(inter), "donations per generation")
        page.text("Trend of the mean donation (least-squares slope per generation):")
        page.table(over_seeds(donation_trend(donation_fraction(inter)), "slope"))
        page.figure(plots.plot_cooperation(inter, x="generation", hue="policy"), "cooperation per generation")

    def shares() -> None:
        page.figure(
            plots.plot_strategy_shares(strategy_labels(runs.strategies), column="strategy_kind"),
            "strategy shares",
        )
        written = runs.strategies.filter(pl.col("policy") == "llm").select(
            "run_id", "generation", "agent_id", "strategy", "final_resources", "survived"
        )
        sample = written.head(SAMPLE_EXCHANGES).collect()
        if sample.height:
            page.text("Strategies written by language-model agents:")
            page.table(sample)

    def inequality() -> None:
        states = runs.states
        gini = resource_gini(final_round(states), by=["generation"])
        page.figure(
            plots.plot_series(gini, "gini", x="generation", title="Inequality of final resources (Gini)"),
            "gini",
        )
        norms = reputation_columns(states)
        if norms:
            per_run = reputation_dynamics(states, by=["step"], reputation=norms)
            long = per_run.unpivot(index=["run_id", "step"], on=norms, variable_name="norm", value_name="good")
            fig = plots.plot_series(
                long,
                "good",
                x="step",
                hue="norm",
                ylabel="share in good standing",
                title="Reputation dynamics",
            )
            page.figure(fig, "reputation")

    page.section("Donations", donations)
    if runs.has("strategies"):
        page.section("Strategies", shares)
    if runs.has("states"):
        page.section("Inequality and reputation", inequality)


def opinions(page: Page, runs: RunSet) -> None:
    states = runs.states

    def trajectories() -> None:
        page.figure(plots.plot_opinions(states), "opinion trajectories")

    def clusters() -> None:
        page.figure(plots.plot_clusters(states), "cluster count")
        page.figure(plots.plot_polarization(states, "variance"), "variance")
        page.figure(plots.plot_polarization(states, "bimodality"), "bimodality")
        last = cluster_counts(states).filter(pl.col("step") == pl.col("step").max().over("run_id"))
        by = ["dimension"] if "dimension" in last.columns else []
        page.text("Final cluster count (groups holding at least 1% of agents):")
        page.table(over_seeds(last, "clusters", by=by))
        ttc = time_to_consensus(states).with_columns(pl.col("steps_to_consensus").cast(pl.Float64))
        page.text("Steps to consensus (runs that never settle into one cluster are left out of the mean):")
        summary = over_seeds(ttc, "steps_to_consensus", by=by)
        if by:
            reached = ttc.group_by(by).agg(pl.col("reached").mean().alias("share reached"))
            page.table(summary.join(reached, on=by, how="left"))
        else:
            page.table(summary.with_columns(pl.lit(ttc["reached"].mean()).alias("share reached")))

    def network() -> None:
        run = next(iter(runs))
        agents = runs.agents.filter(pl.col("run_id") == run.run_id).collect()
        edges = plots.edges_from_config(run.manifest, agents, run_dir=run.path)
        if edges is None:
            raise AnalysisError(
                "no graph.parquet in the run (an older run?) and the graph cannot be rebuilt, or it is a "
                "complete graph too large to draw"
            )
        final = states.filter(pl.col("run_id") == run.run_id)
        if "dimension" in columns(states):
            final = final.filter(pl.col("dimension") == pl.col("dimension").min())
        final = final.filter(pl.col("step") == pl.col("step").max()).select("agent_id", "value").collect()
        page.figure(plots.plot_network(final, edges), "network coloured by final value")

    page.section("Opinion trajectories", trajectories)
    page.section("Clusters and polarization", clusters)
    page.section("Network", network)


def exchanges(page: Page, runs: RunSet) -> None:
    """A few decisions made by the language model, with whatever text the scenario recorded."""
    page.heading("Sample LLM exchanges")
    if not runs.has("interactions") or "policy" not in columns(runs.interactions):
        page.text("No interactions with a policy column recorded.", css="note")
        return
    llm = runs.interactions.filter(pl.col("policy") == "llm")
    have = columns(runs.interactions)
    keep = [
        c
        for c in (
            "run_id",
            "step",
            "actor_id",
            "target_id",
            "speaker_id",
            "listener_id",
            "dimension",
            "action",
            "amount",
            "position_before",
            "position_after",
            "model",
            "fallback",
        )
        if c in have
    ]
    keep += [c for c in TEXT_COLUMNS if c in have]
    sample = llm.select(keep).head(SAMPLE_EXCHANGES).collect()
    if sample.height == 0:
        page.text("No decision in this run was made by a language model (scripted agents only).", css="note")
        return
    page.table(sample)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="socsim-report", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run directory, or a directory of runs (sweep)")
    parser.add_argument("-o", "--output", type=Path, help="output file (default: RUN_DIR/report.html)")
    args = parser.parse_args(argv)
    try:
        text = build_report(args.run_dir)
    except AnalysisError as exc:
        print(f"socsim-report: {exc}", file=sys.stderr)
        return 2
    out = args.output or (args.run_dir if args.run_dir.is_dir() else args.run_dir.parent) / "report.html"
    out.write_text(text, encoding="utf-8")
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
