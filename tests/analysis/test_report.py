"""socsim-report: a self-contained, escaped HTML page that headless Chromium renders."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from analysis.report import build_report, main
from tests.analysis.tiny_runs import INJECTION

CHROMIUM = Path("/usr/bin/chromium")


def test_report_escapes_agent_text_and_inlines_figures(vd_run: Path) -> None:
    page = build_report(vd_run)
    assert "<script" not in page  # the injected tag is text, not markup
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert INJECTION not in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) >= 4  # trajectories, clusters, variance, bimodality (+ network: complete graph)
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from elsewhere
    assert '"run_id": "vd-1"' in page.replace("&quot;", '"')


def test_report_for_ipd_run(ipd_run: Path) -> None:
    page = build_report(ipd_run)
    assert "(the tournament ranking)" in page and "Share of cooperative moves (J) per round" in page
    assert "scripted agents only" in page
    assert page.count("data:image/png;base64,") == 3  # cooperation by round, match score and payoff by policy


def test_cli_writes_next_to_run_and_fails_cleanly(ipd_run: Path, tmp_path: Path, capsys) -> None:
    assert main([str(ipd_run)]) == 0
    assert (ipd_run / "report.html").stat().st_size > 10_000
    assert main([str(tmp_path / "missing")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason="needs /usr/bin/chromium (.ci/install-chromium.sh)",
)
def test_report_renders_in_headless_chromium(vd_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert main([str(vd_run), "-o", str(out)]) == 0
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1100,1600",
            out.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    pixels = imread(shot)
    assert pixels.shape[:2] == (1600, 1100)
    # a rendered page, not a blank one: a good share of non-white pixels (text, tables, plots)
    non_white = (pixels[..., :3] < 0.9).any(axis=2).mean()
    assert non_white > 0.02, non_white
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 50  # colours of the figures


def test_sweep_report_has_one_block_per_condition(vd_run: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for name, eps in (("e1", 0.1), ("e3", 0.3)):
        shutil.copytree(vd_run, sweep / name)
        manifest = json.loads((sweep / name / "manifest.json").read_text())
        manifest["run_id"] = name
        manifest["config"]["scenario"]["epsilon"] = eps
        (sweep / name / "manifest.json").write_text(json.dumps(manifest))
    page = build_report(sweep)
    assert "Condition: value_debate: epsilon=0.1 (1 run)" in page
    assert "Condition: value_debate: epsilon=0.3 (1 run)" in page
