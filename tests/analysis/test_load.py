"""analysis.load: one run, a sweep, and the one-line errors for missing or foreign files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from analysis import AnalysisError, MissingTableError, load


def test_single_run_tables_carry_manifest_fields(ipd_run: Path) -> None:
    runs = load(ipd_run)
    assert runs.run_ids == ["ipd-1"]
    assert runs.tables == ["agents", "interactions"]
    inter = runs.interactions.collect()
    assert inter.height == 12
    assert set(inter["seed"].unique()) == {1}
    assert set(inter["scenario"].unique()) == {"ipd"}
    assert set(inter["param_game"].unique()) == {"pd"}
    assert set(inter["param_pd_T"].unique()) == {10}
    # the table's own per-row `model` wins over the manifest's
    assert inter["model"].null_count() == 12
    assert runs.agents.collect()["run_id"].to_list() == ["ipd-1"] * 3
    assert runs.manifest()["seed"] == 1


def test_sweep_stacks_runs_found_recursively(ipd_run: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    shutil.copytree(ipd_run, sweep / "0")
    second = sweep / "nested" / "1"
    shutil.copytree(ipd_run, second)
    manifest = json.loads((second / "manifest.json").read_text())
    manifest.update(run_id="ipd-2", seed=2)
    (second / "manifest.json").write_text(json.dumps(manifest))
    runs = load(sweep)
    assert runs.run_ids == ["ipd-1", "ipd-2"]
    per_seed = runs.interactions.group_by("seed").agg(pl.len()).sort("seed")
    assert per_seed.collect().rows() == [(1, 12), (2, 12)]
    assert runs.runs.select("run_id", "seed", "scenario").rows() == [("ipd-1", 1, "ipd"), ("ipd-2", 2, "ipd")]


def test_absent_table_is_a_clear_error(ipd_run: Path) -> None:
    runs = load(ipd_run)
    assert not runs.has("states")
    with pytest.raises(MissingTableError, match="recorded a 'states' table"):
        _ = runs.states


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match="no such file"):
        load(tmp_path / "nope")


def test_dir_without_manifest(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(AnalysisError, match=r"no manifest\.json found"):
        load(tmp_path)


def test_foreign_manifest(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"name": "some other tool"}))
    with pytest.raises(AnalysisError, match="not a socsim manifest"):
        load(tmp_path)


def test_broken_manifest_json(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(AnalysisError, match="not a readable JSON manifest"):
        load(tmp_path)


def test_corrupt_parquet_part(ipd_run: Path) -> None:
    (ipd_run / "interactions" / "part-00099.parquet").write_bytes(b"garbage")
    with pytest.raises(AnalysisError, match=r"part-00099\.parquet: not a readable Parquet file"):
        load(ipd_run)


def test_foreign_parquet_without_engine_columns(ipd_run: Path) -> None:
    pl.DataFrame({"x": [1]}).write_parquet(ipd_run / "interactions" / "part-00099.parquet")
    with pytest.raises(AnalysisError, match="not a socsim table"):
        load(ipd_run)


def test_duplicate_run_ids_in_sweep(ipd_run: Path, tmp_path: Path) -> None:
    shutil.copytree(ipd_run, tmp_path / "sweep" / "a")
    shutil.copytree(ipd_run, tmp_path / "sweep" / "b")
    with pytest.raises(AnalysisError, match="appears twice"):
        load(tmp_path / "sweep")


def test_conditions_group_runs_that_differ_only_in_seed(ipd_run: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for name, run_id, seed, rounds in (("a", "r1", 1, 2), ("b", "r2", 2, 2), ("c", "r3", 1, 5)):
        shutil.copytree(ipd_run, sweep / name)
        manifest = json.loads((sweep / name / "manifest.json").read_text())
        manifest.update(run_id=run_id, seed=seed)
        manifest["config"]["scenario"]["rounds"] = rounds
        (sweep / name / "manifest.json").write_text(json.dumps(manifest))
    runs = load(sweep)
    assert runs.conditions() == [("ipd: rounds=2", ["r1", "r2"]), ("ipd: rounds=5", ["r3"])]
    assert runs.subset(["r3"]).interactions.select("param_rounds").unique().collect().item() == 5
    assert load(ipd_run).conditions() == [("ipd", ["ipd-1"])]


def test_conditions_ignore_how_runs_ended(ipd_run: Path, tmp_path: Path) -> None:
    """Two seeds of one setting that converged at different steps are one condition, not two."""
    sweep = tmp_path / "sweep"
    for name, seed, step in (("a", 1, 12), ("b", 2, 30)):
        shutil.copytree(ipd_run, sweep / name)
        manifest = json.loads((sweep / name / "manifest.json").read_text())
        manifest.update(run_id=name, seed=seed, outcome={"converged": True, "converged_at_step": step})
        (sweep / name / "manifest.json").write_text(json.dumps(manifest))
    assert load(sweep).conditions() == [("ipd", ["a", "b"])]


def test_brackets_in_a_sweep_cells_directory_are_not_a_glob(ipd_run: Path, tmp_path: Path) -> None:
    """A robustness sweep names its cells `scenario.labels=[J,F],seed=1`; polars reads `[J,F]` in a path as
    a character class unless told otherwise."""
    cell = tmp_path / "sweep" / "scenario.labels=[J,F],seed=1"
    shutil.copytree(ipd_run, cell)
    pl.DataFrame({"source": [0, 1], "target": [1, 2]}).write_parquet(cell / "graph.parquet")
    table = pq.read_table(cell / "graph.parquet")
    metadata = {"socsim.nodes": "3", "socsim.graph": "edges"}
    pq.write_table(table.replace_schema_metadata(metadata), cell / "graph.parquet")
    runs = load(tmp_path / "sweep")
    assert runs.interactions.select(pl.len()).collect().item() == 12
    assert runs.agents.collect().height == 3
    assert runs.graphs()["ipd-1"].edges.tolist() == [[0, 1], [1, 2]]
