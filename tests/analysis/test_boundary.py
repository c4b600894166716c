"""analysis reads only recorded data: importing all of it must not pull in the engine, scenarios or agents."""

from __future__ import annotations

import subprocess
import sys

MODULES = ["analysis", "analysis.load", "analysis.stats", "analysis.cooperation", "analysis.donations",
           "analysis.opinions", "analysis.plots", "analysis.report"]  # fmt: skip


def test_analysis_imports_nothing_of_the_engine() -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {MODULES!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'sim', 'scenarios', 'agents'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
