"""Tiny hand-made runs written with polars, so analysis is tested without the engine.

Every number the tests check is worked out by hand in the docstring of the fixture that builds it.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

PD = {("J", "J"): (8.0, 8.0), ("J", "F"): (0.0, 10.0), ("F", "J"): (10.0, 0.0), ("F", "F"): (5.0, 5.0)}


def write_run(
    run_dir: Path,
    *,
    run_id: str,
    seed: int,
    scenario: dict,
    tables: dict[str, list[pl.DataFrame]],
    agents: pl.DataFrame | None = None,
    model: str | None = None,
    status: str = "completed",
    graph: dict | None = None,
) -> Path:
    """Write a run directory as the recorder lays it out: manifest, agents.parquet, table/part-N files."""
    run_dir.mkdir(parents=True)
    config = {
        "seed": seed,
        "scenario": scenario,
        "graph": graph or {"kind": "complete"},
        "population": {"size": 0 if agents is None else agents.height, "mix": {}},
        "backend": {"kind": "none" if model is None else "vllm", "model": model},
        "run": {"shards": 0},
    }
    manifest = {
        "run_id": run_id,
        "status": status,
        "seed": seed,
        "scenario": scenario["name"],
        "config": config,
        "versions": {"socsim": "0.1.0"},
        "started_at": "2026-11-22T10:00:00Z",
        "ended_at": "2026-11-22T10:01:00Z",
        "totals": {},
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    if agents is not None:
        agents.with_columns(pl.lit(run_id).alias("run_id")).write_parquet(run_dir / "agents.parquet")
    for name, parts in tables.items():
        (run_dir / name).mkdir()
        for i, part in enumerate(parts):
            part.with_columns(pl.lit(run_id).alias("run_id")).write_parquet(
                run_dir / name / f"part-{i:05d}.parquet"
            )
    return run_dir


def ipd_rows(matches: list[tuple[int, int, list[tuple[str, str]]]], policy: dict[int, str]) -> pl.DataFrame:
    """Two rows per match-round (one per player), PD payoffs, step = round = 1.."""
    rows = []
    for match_id, (a, b, moves) in enumerate(matches):
        for r, (ma, mb) in enumerate(moves, start=1):
            pa, pb = PD[(ma, mb)]
            for actor, target, act, p_act, p_tgt in ((a, b, ma, pa, pb), (b, a, mb, pb, pa)):
                rows.append(
                    {"step": r, "match_id": match_id, "round": r, "actor_id": actor, "target_id": target,
                     "action": act, "payoff_actor": p_act, "payoff_target": p_tgt, "policy": policy[actor],
                     "backend": "scripted", "model": None, "latency_ms": 0.0, "prompt_tokens": 0,
                     "completion_tokens": 0, "cached": False, "fallback": False}
                )
    return pl.DataFrame(rows, schema_overrides={"step": pl.Int64, "round": pl.Int32, "model": pl.String})


@pytest.fixture
def ipd_run(tmp_path: Path) -> Path:
    """Three players: 0 tit_for_tat, 1 always_defect, 2 always_cooperate; every pair plays 2 rounds.

    match 0 (0 v 1): J/F then F/F -> 0 scores 0+5=5, 1 scores 10+5=15
    match 1 (0 v 2): J/J, J/J     -> 16 each
    match 2 (1 v 2): F/J, F/J     -> 1 scores 20, 2 scores 0
    cooperation: round 1 = 4/6, round 2 = 3/6; tft 3/4, alld 0, allc 1
    mean payoff per decision: tft 21/4 = 5.25, alld 35/4 = 8.75, allc 16/4 = 4
    mean match score: alld 17.5 (rank 1), tft 10.5 (2), allc 8 (3); win rate alld 1, tft 0, allc 0;
    draw rate tft 0.5, allc 0.5
    """
    policy = {0: "tit_for_tat", 1: "always_defect", 2: "always_cooperate"}
    rows = ipd_rows(
        [(0, 1, [("J", "F"), ("F", "F")]), (0, 2, [("J", "J"), ("J", "J")]), (1, 2, [("F", "J"), ("F", "J")])],
        policy,
    )
    agents = pl.DataFrame({"agent_id": [0, 1, 2], "policy": list(policy.values())})
    # Two part files, one per step, as the recorder flushes them.
    parts = [rows.filter(pl.col("step") == s) for s in (1, 2)]
    return write_run(
        tmp_path / "ipd_run",
        run_id="ipd-1",
        seed=1,
        scenario={"name": "ipd", "game": "pd", "rounds": 2, "pd": {"R": 8, "S": 0, "T": 10, "P": 5}},
        tables={"interactions": parts},
        agents=agents,
    )


VD_POSITIONS = {
    # dimension -> step -> positions of agents 0..3
    "a": {0: [0.0, 0.2, 0.8, 1.0], 1: [0.1, 0.1, 0.9, 0.9], 2: [0.5, 0.5, 0.5, 0.505]},
    "b": {0: [0.5, 0.5, 0.5, 0.5], 1: [0.4, 0.5, 0.5, 0.5], 2: [0.5, 0.5, 0.5, 0.5]},
    "c": {0: [0.0, 0.0, 1.0, 1.0], 1: [0.0, 0.0, 1.0, 1.0], 2: [0.0, 0.0, 1.0, 1.0]},
}


@pytest.fixture
def vd_run(tmp_path: Path) -> Path:
    """Four agents, three dimensions, steps 0..2 (positions in VD_POSITIONS).

    clusters (gap 0.01): a: 4, 2, 1 (0.505 is within 0.01 of 0.5); b: 1, 2, 1; c: 2, 2, 2
    time to consensus: a 2, b 2 (consensus at step 0 breaks at step 1), c never
    a, step 0: mean 0.5, deviations ±0.5, ±0.3: m2 = 0.17, m3 = 0, m4 = 0.0353 -> bimodality 0.0289/0.0353
    a, step 1: two-point split -> variance 0.16, bimodality 1; b, step 2: all equal -> variance 0, NaN
    """
    rows = [
        {"step": s, "agent_id": i, "dimension": d, "value": v}
        for d, steps in VD_POSITIONS.items()
        for s, values in steps.items()
        for i, v in enumerate(values)
    ]
    states = pl.DataFrame(rows, schema_overrides={"step": pl.Int64})
    agents = pl.DataFrame({"agent_id": [0, 1, 2, 3], "policy": ["bounded_confidence"] * 4})
    return write_run(
        tmp_path / "vd_run",
        run_id="vd-1",
        seed=7,
        scenario={"name": "value_diffusion", "epsilon": 0.3, "mu": 0.5},
        tables={"states": [states]},
        agents=agents,
    )
