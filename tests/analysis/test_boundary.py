"""analysis reads only recorded data. It never imports the engine (sim) or anything that talks to a
model or a cluster; loading and statistics do not even need the scenarios, and the metrics come from
what each scenario registers (read through the scenario registry, never from the engine)."""

from __future__ import annotations

import subprocess
import sys

READERS = ["analysis", "analysis.load", "analysis.stats"]
EVERYTHING = [*READERS, "analysis.metrics", "analysis.cooperation", "analysis.donations", "analysis.opinions",
              "analysis.plots", "analysis.report"]  # fmt: skip


def _imported(modules: list[str]) -> set[str]:
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(','.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.strip().split(","))


def test_loading_and_statistics_need_no_engine_no_scenarios_no_agents() -> None:
    assert not _imported(READERS) & {"sim", "agents", "ray", "openai"}
    assert "scenarios" not in _imported(READERS) or _only_light_scenarios(READERS)


def test_metrics_and_report_never_import_the_engine() -> None:
    assert not _imported(EVERYTHING) & {"sim", "ray", "openai"}


def _only_light_scenarios(modules: list[str]) -> bool:
    """`scenarios.tables` (the error type and polars helpers analysis shares with metrics) is allowed."""
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith('scenarios'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.strip().split(",")) <= {"scenarios", "scenarios.tables"}
