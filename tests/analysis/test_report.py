"""socsim-report: a self-contained, escaped HTML page that headless Chromium renders."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from analysis.report import build_report, main
from tests.analysis.tiny_runs import INJECTION, donations, write_run, write_sweep

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


def test_sweep_report_lists_what_did_not_complete_and_draws_the_main_metric(tmp_path: Path) -> None:
    """Donor game, reputation {trace, global} x seeds 1-2 (donations 0.2/0.4 under trace, 0.6/0.8 under
    global: means 0.3 and 0.7); sweep.json also lists a cell refused at input (no run directory) and a
    run whose manifest says it failed (its error text tries to inject markup)."""
    root = tmp_path / "sweep"
    cells = []
    for reputation, values in (("trace", (0.2, 0.4)), ("global", (0.6, 0.8))):
        for seed, v in enumerate(values, start=1):
            name = f"scenario.reputation={reputation},seed={seed}"
            write_run(root / name, run_id=name, seed=seed, scenario={"name": "donor_game", "reputation": reputation},
                      tables={"interactions": [donations([v, v])]})  # fmt: skip
            cells.append({"name": name, "run_id": name, "params": {"scenario.reputation": reputation, "seed": seed}})
    write_run(root / "scenario.reputation=global,seed=3", run_id="crashed-run", seed=3, status="failed",
              error="OSError: <b>disk</b> full", scenario={"name": "donor_game", "reputation": "global"},
              tables={"interactions": [donations([0.0, 0.0])]})  # fmt: skip
    cells.append({"name": "scenario.reputation=global,seed=3", "run_id": "crashed-run", "status": "failed",
                  "error": "OSError: <b>disk</b> full"})  # fmt: skip
    cells.append({"name": "scenario.reputation=bogus,seed=1", "status": "failed",
                  "error": "scenario.reputation: Input should be 'trace' or 'global'"})  # fmt: skip
    write_sweep(root, cells, swept=["scenario.reputation", "seed"])
    page = build_report(root)
    assert "<b>disk</b>" not in page and "OSError: &lt;b&gt;disk&lt;/b&gt; full" in page
    assert "2 did not complete; the sweep&#x27;s figure below leaves them out" in page
    assert "scenario.reputation=bogus,seed=1" in page
    assert "Input should be &#x27;trace&#x27; or &#x27;global&#x27;" in page
    assert page.count("crashed-run") >= 1 and "Sweep: donor_game, main metric by swept parameter" in page
    images = re.findall(r'<img alt="([^"]*)"', page)
    assert images[0] == "donation by swept parameter"  # the sweep figure comes first, then the conditions' figures
    # the effect table beside it: trace 0.3, global 0.7 (2 completed seeds each; the failed run left out)
    block = page[page.index("main metric by swept parameter") :]
    rows = re.findall(r"<tr><td>scenario.reputation</td><td>(\w+)</td><td>([0-9.]+)</td>", block)
    assert rows == [("global", "0.7"), ("trace", "0.3")]


def test_a_sweep_whose_cells_all_completed_says_so(ipd_run: Path, tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    shutil.copytree(ipd_run, root / "seed=1")
    write_sweep(root, [{"name": "seed=1", "run_id": "ipd-1"}], swept=["seed"])
    page = build_report(root)
    assert "Every run completed (1 cell in sweep.json, 1 run loaded)." in page
    assert "Skipped: no parameter varies across the ipd runs besides the seed" in page


def test_runs_that_did_not_complete_are_read_from_their_manifests(ipd_run: Path, tmp_path: Path) -> None:
    """No sweep.json: two conditions (rounds 2 and 5), one run of which was interrupted; its status and error
    come from its own manifest, whatever the status is called (crashed, interrupted, ...)."""
    root = tmp_path / "runs"
    for name, rounds, status in (("a", 2, "completed"), ("b", 5, "interrupted")):
        shutil.copytree(ipd_run, root / name)
        manifest = json.loads((root / name / "manifest.json").read_text())
        manifest.update(run_id=name, status=status, error="interrupted (SIGTERM)" if status != "completed" else None)
        manifest["config"]["scenario"]["rounds"] = rounds
        (root / name / "manifest.json").write_text(json.dumps(manifest))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        page = build_report(root)
    assert "1 did not complete; the sweep&#x27;s figure below leaves them out" in page
    assert "<td>b</td><td>b</td><td>interrupted</td><td>interrupted (SIGTERM)</td>" in page
