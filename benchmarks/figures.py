"""What a benchmark reports: figures with their units, the peer's figure and the ratio where there is a
peer, and the target the issue sets, so that a reader of the table sees pass or fail at a glance.

Benchmarks print their figures as they go and, given `--json PATH`, append them as JSON lines there;
`run_all.py` reads those lines back and writes one Markdown table. Standard library only: the peer
scripts and the orchestrator import it without socsim.
"""

from __future__ import annotations

import json
import math
import operator
from dataclasses import asdict, dataclass, field
from pathlib import Path

NOT_AVAILABLE = "not available"

_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


@dataclass(frozen=True)
class Target:
    """A goal on the figure's value or on its ratio to the peer, e.g. Target("ratio", ">=", 100)."""

    on: str  # "value" or "ratio"
    op: str  # one of >=, >, <=, <
    bound: float
    source: str = ""  # where the target is set, e.g. "issue 16 item 1"

    def check(self, value: float | None, ratio: float | None) -> bool | None:
        subject = ratio if self.on == "ratio" else value
        if subject is None or (isinstance(subject, float) and math.isnan(subject)):
            return None
        return bool(_OPS[self.op](subject, self.bound))

    def text(self, unit: str) -> str:
        bound = f"{self.bound:g}x" if self.on == "ratio" else f"{self.bound:g} {unit}".rstrip()
        return f"{self.op} {bound}"


@dataclass
class Figure:
    """One measured figure. `ratio` is socsim over the peer in the direction where more is better for
    socsim (speed-ups), so a ratio above 1 always means socsim is ahead."""

    group: str
    name: str
    value: float | None
    unit: str
    peer: float | None = None
    peer_name: str = ""
    ratio: float | None = None
    target: Target | None = None
    note: str = ""
    status: str = ""  # empty when measured; otherwise why not (e.g. "not available", "failed: MemoryError")
    extra: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        return self.target.check(self.value, self.ratio) if self.target and not self.status else None

    def to_json(self) -> str:
        data = asdict(self)
        data["target"] = asdict(self.target) if self.target else None
        return json.dumps(data)

    @classmethod
    def from_json(cls, line: str) -> Figure:
        data = json.loads(line)
        target = data.pop("target")
        return cls(**data, target=Target(**target) if target else None)


def speedup(ours_rate: float | None, peer_rate: float | None) -> float | None:
    """socsim rate / peer rate (both "more is better", e.g. moves per second)."""
    if not ours_rate or not peer_rate:
        return None
    return ours_rate / peer_rate


def fmt(value: float | None, unit: str = "") -> str:
    """A number as a reader wants it: 3 significant digits, thousands separators, the unit after."""
    if value is None:
        return "–"
    if value == 0:
        text = "0"
    elif abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 0.01:
        text = f"{value:.3g}"
    else:
        text = f"{value:.2e}"
    return f"{text} {unit}".rstrip()


class Reporter:
    """Prints each figure as one readable line and, with a path, appends it as a JSON line."""

    def __init__(self, json_path: str | Path | None = None) -> None:
        self.path = Path(json_path) if json_path else None
        self.figures: list[Figure] = []

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        print(line_of(figure), flush=True)
        if self.path:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(figure.to_json() + "\n")
        return figure


def verdict(figure: Figure) -> str:
    if figure.status:
        return figure.status
    passed = figure.passed
    return "" if passed is None else ("pass" if passed else "FAIL")


def line_of(figure: Figure) -> str:
    parts = [f"[{figure.group}] {figure.name}: "]
    parts.append(figure.status if figure.status and figure.value is None else fmt(figure.value, figure.unit))
    if figure.peer is not None:
        parts.append(f" | {figure.peer_name or 'peer'} {fmt(figure.peer, figure.unit)}")
    if figure.ratio is not None:
        parts.append(f" | ratio {figure.ratio:.3g}x")
    if figure.target:
        parts.append(f" | target {figure.target.text(figure.unit)} -> {verdict(figure) or '?'}")
    if figure.note:
        parts.append(f"  ({figure.note})")
    return "".join(parts)


def read_figures(path: str | Path) -> list[Figure]:
    path = Path(path)
    if not path.exists():
        return []
    return [Figure.from_json(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(figures: list[Figure]) -> str:
    """One table, grouped by benchmark in the order the figures came."""
    head = "| benchmark | figure | socsim | peer | ratio | target | result | note |"
    rows = [head, "|---|---|---:|---:|---:|---|---|---|"]
    for f in figures:
        value = fmt(f.value, f.unit) if f.value is not None else "–"
        peer = f"{fmt(f.peer, f.unit)} ({f.peer_name})" if f.peer is not None else f.peer_name
        ratio = f"{f.ratio:.3g}x" if f.ratio is not None else ("–" if f.peer_name else "")
        target = f.target.text(f.unit) + (f" ({f.target.source})" if f.target.source else "") if f.target else ""
        cells = [f.group, f.name, value, peer or "", ratio, target, verdict(f), f.note]
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows) + "\n"


def markdown_report(figures: list[Figure], header: dict[str, str], notes: list[str] | None = None) -> str:
    """The whole RESULTS.md: how it was made, the table, then the benchmarks' own notes."""
    lines = ["# socsim benchmark results", ""]
    lines += [f"- {key}: {value}" for key, value in header.items()]
    passed = sum(f.passed is True for f in figures)
    failed = sum(f.passed is False for f in figures)
    lines += [f"- targets: {passed} pass, {failed} fail, {sum(bool(f.target) for f in figures)} with a target", ""]
    lines.append(markdown_table(figures))
    if notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(lines)
