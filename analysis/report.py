"""`socsim-report RUN_DIR [-o out.html]`: one self-contained HTML page for a run or a sweep.

Self-contained so it can be mailed or archived with the data: figures are inlined as base64 PNG,
there is no script, stylesheet link or font to fetch. Everything taken from the run (manifest,
model replies, agent names) is HTML-escaped: agent text is untrusted input.

Sections come from what each run's scenario registers (its `metrics`, read through the scenario
registry from the name in the manifest), so an installed out-of-tree scenario gets its figures too;
a metric that cannot be computed for these runs says why and is skipped.

A sweep (a directory with sweep.json, or runs that differ in more than the seed) first gets a Sweep
section: the cells and runs that did not complete, with their errors, and each scenario's main metric
(its first registered one) against each swept parameter with intervals over seeds
(`analysis.effects`). Every figure of one report takes its colours from one `Palette`, so a policy
has the same colour everywhere.
"""

from __future__ import annotations

import argparse
import base64
import html
import math
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import polars as pl
from matplotlib.figure import Figure

from analysis import plots
from analysis.effects import COMPLETED, effect_table, factor_levels, sweep_manifests
from analysis.errors import AnalysisError
from analysis.load import RunSet, load
from analysis.metrics import scenario_of
from analysis.models import model_usage, models_used
from analysis.palette import Palette
from analysis.stats import hold_last, over_seeds
from scenarios.base import Metric
from scenarios.tables import columns

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

    def __init__(self, palette: Palette | None = None) -> None:
        self.parts: list[str] = []
        self.level = 2  # sections are h3 under a sweep's per-condition h2
        self.palette = palette or Palette()  # one colour per policy (or other hue value) in every figure

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
    runs = load(path, include_incomplete=True)  # a report shows how every run stands, crashed ones too
    page = Page(report_palette(runs))
    overview(page, runs)
    groups = runs.conditions()
    if len(groups) > 1 or sweep_manifests(runs):
        sweep_overview(page, runs)
    for label, run_ids in groups:
        subset = runs.subset(run_ids)
        if len(groups) > 1:
            runs_text = f"{len(run_ids)} run{'s' if len(run_ids) != 1 else ''}"
            page.parts.append(f"<h2>Condition: {html.escape(label)} ({runs_text})</h2>")
            page.level = 3
        scenario_sections(page, subset)
    page.level = 2
    exchanges(page, runs)
    if runs.has("transcripts"):
        models_section(page, runs)
        dialogues(page, runs)
    page.heading("Manifest" + ("" if len(runs) == 1 else f" (first of {len(runs)} runs)"))
    page.pre(plots.manifest_text(runs.manifest(runs.run_ids[0])))
    scenarios = ", ".join(runs.scenarios)
    return page.html(f"socsim report: {scenarios}, {len(runs)} run{'s' if len(runs) != 1 else ''}")


def report_palette(runs: RunSet) -> Palette:
    """The report's colours, seeded with every policy of the loaded runs in sorted order (other hue values,
    such as dimensions, get the next colours as figures meet them)."""
    if not runs.has("agents") or "policy" not in columns(runs.agents):
        return Palette()
    return Palette(runs.agents.select(pl.col("policy").unique()).collect()["policy"].to_list())


def sweep_overview(page: Page, runs: RunSet) -> None:
    """What did not complete, then each scenario's main metric against each swept parameter."""
    page.section("Sweep: cells and runs that did not complete", partial(incomplete, page, runs))
    for name in runs.scenarios:
        subset = runs.subset(runs.runs.filter(pl.col("scenario") == name)["run_id"].to_list())
        page.section(f"Sweep: {name}, main metric by swept parameter", partial(main_metric_effects, page, subset))


def incomplete(page: Page, runs: RunSet) -> None:
    """Cells a sweep.json lists as failed or still running (with their error), and loaded runs whose
    manifest says they did not complete (failed, crashed, interrupted, running)."""
    rows: list[dict[str, object]] = []
    listed: set[str] = set()
    total = 0
    for root, sweep in sorted(sweep_manifests(runs).items()):
        cells = sweep.get("cells") or []
        total += len(cells)
        for cell in cells:
            if cell.get("status") != COMPLETED:
                rows.append({"where": f"{root.name}/sweep.json", "cell or run": cell.get("name") or cell.get("num"),
                             "status": cell.get("status"), "error": cell.get("error")})  # fmt: skip
                listed.update(str(v) for v in (cell.get("run_id"), cell.get("run_dir")) if v)
    for run in runs:
        status = runs.runs.filter(pl.col("run_id") == run.run_id)["status"][0]
        if status != COMPLETED and run.run_id not in listed and run.path.name not in listed:
            rows.append({"where": str(run.path.relative_to(runs.root)) if run.path != runs.root else ".",
                         "cell or run": run.run_id, "status": status, "error": run.manifest.get("error")})  # fmt: skip
    if not rows:
        counted = f"{_count(total, 'cell')} in sweep.json, " if total else ""
        page.text(f"Every run completed ({counted}{_count(len(runs), 'run')} loaded).", css="note")
        return
    page.text(f"{len(rows)} did not complete; the sweep's figure below leaves them out (a condition's own "
              "figures show what such runs recorded, if they were loaded).")  # fmt: skip
    page.table(pl.DataFrame(rows, schema={"where": pl.String, "cell or run": pl.String, "status": pl.String,
                                          "error": pl.String}))  # fmt: skip


def main_metric_effects(page: Page, runs: RunSet) -> None:
    """The scenario's main metric (its first registered one, one number per run: see analysis.effects)
    by level of each swept parameter, over the completed runs."""
    name = runs.scenarios[0]
    main = scenario_of(name).metrics[0]
    done = runs.runs.filter(pl.col("status") == COMPLETED)["run_id"].to_list()
    if not done:
        raise AnalysisError(f"no completed {name} run")
    factors, _ = factor_levels(runs.subset(done))
    if not factors:
        raise AnalysisError(f"no parameter varies across the {name} runs besides the seed")
    table = effect_table(runs.subset(done), main.name, factors)
    page.text(f"{main.name}: {main.description} ({table['reduced'][0]} of each run).", css="note")
    page.figure(plots.plot_effects(table, palette=page.palette), f"{main.name} by swept parameter")
    page.table(table.drop("scenario", "metric", "reduced", "interval"))


def scenario_sections(page: Page, runs: RunSet) -> None:
    """The registered metrics of each scenario these runs ran, then the views its declared tables allow."""
    for name in runs.scenarios:
        subset = runs.subset(runs.runs.filter(pl.col("scenario") == name)["run_id"].to_list())
        try:
            scenario = scenario_of(name)
        except AnalysisError as exc:
            page.text(str(exc), css="note")
            continue
        for metric in scenario.metrics:
            page.section(metric.description[:1].upper() + metric.description[1:], _metric_view(page, subset, metric))
        states = scenario.tables.get("states", {})
        if {"agent_id", "value"} <= set(states):
            opinion_views(page, subset)
        if "strategy" in scenario.tables.get("strategies", {}):
            page.section("Strategies written by language-model agents", partial(written_strategies, page, subset))


def _metric_view(page: Page, runs: RunSet, metric: Metric) -> Callable[[], None]:
    """A metric averaged over seeds: a line over x, bars per group, stacked shares, or a table."""

    def draw() -> None:
        values = metric.compute(runs)
        by = [c for c in (metric.x, metric.hue) if c]
        if metric.hold and metric.x:
            values = hold_last(values, x=metric.x, by=[metric.hue] if metric.hue else [])
        colours = page.palette
        if metric.plot == "line" and metric.x:
            fig = plots.plot_series(values, metric.name, x=metric.x, hue=metric.hue, title=metric.name, palette=colours)
            page.figure(fig, metric.name)
        elif metric.plot == "bars" and metric.hue:
            page.figure(plots.plot_bars(values, metric.name, metric.hue, title=metric.name, palette=colours),
                        metric.name)  # fmt: skip
        elif metric.plot == "shares" and metric.x and metric.hue:
            page.figure(plots.plot_shares(values, metric.x, metric.hue, value=metric.name, palette=colours),
                        metric.name)  # fmt: skip
            return
        summary = over_seeds(values, metric.name, by=by)
        if "reached" in values.columns:  # runs that never got there are counted, not silently dropped
            reached = values.group_by(by or pl.lit(0)).agg(pl.col("reached").mean().alias("share reached"))
            summary = summary.join(reached, on=by, how="left") if by else summary.with_columns(reached["share reached"])
        if metric.plot in ("bars", "table") or not metric.x:
            page.table(summary.sort("mean", descending=True) if metric.plot == "bars" else summary)

    return draw


def overview(page: Page, runs: RunSet) -> None:
    """Settings shared by all runs as a two-column list; what varies (seed, swept parameters) per run.
    Runs that did not complete are named first, with their status (a dead `running` run: `crashed`)."""
    page.heading("Runs")
    for run in runs:
        if run.status != "completed":
            steps = (run.manifest.get("totals") or {}).get("steps")
            checkpoint = run.manifest.get("last_checkpoint")
            recorded = (
                f"; its tables hold steps 0 to {steps - 1}" if isinstance(steps, int) and steps
                else f"; last checkpoint at step {checkpoint}" if isinstance(checkpoint, int) else ""
            )  # fmt: skip
            reason = f" ({run.manifest['error']})" if run.manifest.get("error") else ""
            page.text(f"Run {run.run_id} did not complete: {run.status}{reason}{recorded}. "
                      f"Continue it with: socsim-resume {run.path}", css="note")  # fmt: skip
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


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _scalar(value: object) -> bool:
    return not isinstance(value, (dict, list))


def opinion_views(page: Page, runs: RunSet) -> None:
    """Positions per agent over steps: trajectories of one run, and the network coloured by final value."""
    states = runs.states

    def trajectories() -> None:
        page.figure(plots.plot_opinions(states), "opinion trajectories")

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
    page.section("Network", network)


def written_strategies(page: Page, runs: RunSet) -> None:
    written = runs.strategies.filter(pl.col("policy").str.starts_with("llm")).select(
        "run_id", "generation", "agent_id", "strategy", "final_resources", "survived"
    )
    sample = written.head(SAMPLE_EXCHANGES).collect()
    if sample.height:
        page.table(sample)
    else:
        page.text("No strategy was written by a language model (scripted agents only).", css="note")


def exchanges(page: Page, runs: RunSet) -> None:
    """A few decisions made by the language model, with whatever text the scenario recorded."""
    page.heading("Sample LLM exchanges")
    if not runs.has("interactions") or "policy" not in columns(runs.interactions):
        page.text("No interactions with a policy column recorded.", css="note")
        return
    llm = runs.interactions.filter(pl.col("backend") != "scripted") if "backend" in columns(runs.interactions) else None
    if llm is None:
        page.text("No interactions with a backend column recorded.", css="note")
        return
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
            "fallback_reason",
        )
        if c in have
    ]
    keep += [c for c in TEXT_COLUMNS if c in have]
    sample = llm.select(keep).head(SAMPLE_EXCHANGES).collect()
    if sample.height == 0:
        page.text("No decision in this run was made by a language model (scripted agents only).", css="note")
        return
    page.table(sample)


def models_section(page: Page, runs: RunSet) -> None:
    """With more than one model in the runs: calls, failures, tokens and cache share per model (each
    `llm@<key>` policy is one model, so the metric tables above have a row per model)."""
    if len(models_used(runs.transcripts)) < 2:
        return
    page.heading("Language models")
    usage = model_usage(runs.transcripts)
    page.text("Model calls per served model, summed over the runs; per-policy metrics above split by model "
              "(policy llm@<key>).", css="note")  # fmt: skip
    page.table(
        usage.group_by("model")
        .agg(
            pl.col("calls").sum(),
            (pl.col("missing_share") * pl.col("calls")).sum().truediv(pl.col("calls").sum()).alias("missing_share"),
            pl.col("prompt_tokens").sum(),
            pl.col("completion_tokens").sum(),
            (pl.col("cached_share") * pl.col("calls")).sum().truediv(pl.col("calls").sum()).alias("cached_share"),
            pl.col("mean_latency_ms").mean(),
        )
        .sort("model")
    )


DIALOGUE_STEPS = 3  # steps sampled: the first, the middle and the last with model calls
DIALOGUES_PER_STEP = 2
PERSONA_COLUMNS = ("name", "age", "gender", "occupation", "country", "political_leaning")


def dialogues(page: Page, runs: RunSet) -> None:
    """Model calls as they were asked and answered (the transcripts table), a few per sampled step, each
    beside the agent's persona. Every text is escaped: prompts and replies are untrusted."""
    import json

    page.heading("Dialogues with the model")
    run = next(iter(runs))
    calls = runs.transcripts.filter(pl.col("run_id") == run.run_id).collect()
    if calls.height == 0:
        page.text("This run made no model calls.", css="note")
        return
    agents = runs.agents.filter(pl.col("run_id") == run.run_id).collect()
    shown = [c for c in PERSONA_COLUMNS if c in agents.columns]
    steps = calls["step"].unique().sort().to_list()
    picked = sorted({steps[0], steps[len(steps) // 2], steps[-1]})[:DIALOGUE_STEPS]
    page.text(f"Run {run.run_id}: {calls.height:,} model calls; steps {', '.join(map(str, picked))} sampled.")
    for step in picked:
        for row in calls.filter(pl.col("step") == step).head(DIALOGUES_PER_STEP).iter_rows(named=True):
            persona = agents.filter(pl.col("agent_id") == row["agent_id"]).select(shown)
            who = ", ".join(f"{k} {v}" for k, v in persona.row(0, named=True).items()) if persona.height else ""
            title = f"step {step}, agent {row['agent_id']}, {row['kind']}"
            page.parts.append(f"<h4>{html.escape(title)}</h4>")
            if who:
                page.text(f"Persona: {who}")
            messages = json.loads(row["messages"]) if row["messages"] else []
            page.pre("\n\n".join(f"[{m.get('role')}]\n{m.get('content')}" for m in messages) or "(not recorded)")
            outcome = f"reply: {row['reply']!r}; action: {row['action']}; attempts {row['attempts']}"
            if row["fallback_reason"]:
                outcome += f"; no answer: {row['fallback_reason']}"
            if row["stand_in"]:
                outcome += f"; answered instead by {row['stand_in']}"
            page.text(outcome)


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
