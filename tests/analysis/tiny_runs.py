"""Builders of tiny run directories, written with polars as the recorder lays them out.

Shared by the fixtures in conftest.py and by tests that need a variant of a tiny run.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

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
        agents.write_parquet(run_dir / "agents.parquet")  # as the engine writes it: no run_id
    for name, parts in tables.items():
        (run_dir / name).mkdir()
        for i, part in enumerate(parts):
            part.with_columns(pl.lit(run_id).alias("run_id")).write_parquet(run_dir / name / f"part-{i:05d}.parquet")
    return run_dir


def ipd_rows(matches: list[tuple[int, int, list[tuple[str, str]]]], policy: dict[int, str]) -> pl.DataFrame:
    """Two rows per match-round (one per player), PD payoffs, step = round = 1.."""
    rows = []
    for match_id, (a, b, moves) in enumerate(matches):
        for r, (ma, mb) in enumerate(moves, start=1):
            pa, pb = PD[(ma, mb)]
            for actor, target, act, p_act, p_tgt in ((a, b, ma, pa, pb), (b, a, mb, pb, pa)):
                rows.append(
                    {
                        "step": r,
                        "match_id": match_id,
                        "round": r,
                        "actor_id": actor,
                        "target_id": target,
                        "action": act,
                        "payoff_actor": p_act,
                        "payoff_target": p_tgt,
                        "policy": policy[actor],
                        "backend": "scripted",
                        "model": None,
                        "latency_ms": 0.0,
                        "prompt_tokens": 0,
                        "completion_tokens": 0,
                        "cached": False,
                        "fallback_reason": None,
                    }
                )
    return pl.DataFrame(
        rows,
        schema_overrides={"step": pl.Int64, "round": pl.Int32, "model": pl.String, "fallback_reason": pl.String},
    )


INJECTION = "Kindness matters <script>alert('x')</script> & <b>bold</b>"
VD_POSITIONS = {
    # dimension -> step -> positions of agents 0..3
    "a": {0: [0.0, 0.2, 0.8, 1.0], 1: [0.1, 0.1, 0.9, 0.9], 2: [0.5, 0.5, 0.5, 0.505]},
    "b": {0: [0.5, 0.5, 0.5, 0.5], 1: [0.4, 0.5, 0.5, 0.5], 2: [0.5, 0.5, 0.5, 0.5]},
    "c": {0: [0.0, 0.0, 1.0, 1.0], 1: [0.0, 0.0, 1.0, 1.0], 2: [0.0, 0.0, 1.0, 1.0]},
}


def donor_tables() -> dict[str, pl.DataFrame]:
    """Four agents, two generations of two rounds (two donations a round); see conftest.donor_run."""
    gives = [  # generation, round, donor, recipient, action, fraction
        (1, 1, 0, 1, "donate", 0.5), (1, 1, 2, 3, "donate", 0.0),
        (1, 2, 1, 2, "donate", 0.25), (1, 2, 3, 0, "donate", 0.0),
        (2, 1, 0, 1, "donate", 0.5), (2, 1, 2, 3, "donate", 0.5),
        (2, 2, 1, 2, "donate", 1.0), (2, 2, 3, 0, "punish", 0.2),
    ]  # fmt: skip
    interactions = pl.DataFrame(
        [
            {"step": 2 * (g - 1) + r - 1, "generation": g, "game": g, "round": r, "actor_id": d,
             "target_id": t, "action": a, "amount": 10.0 * f, "fraction": f,
             "policy": "llm" if d == 3 else "scripted_x",
             "justification": "I give <because>" if d == 3 else None}
            for g, r, d, t, a, f in gives
        ],
        schema_overrides={"step": pl.Int64, "generation": pl.Int32, "round": pl.Int32},
    )  # fmt: skip
    resources = {(1, 1): [10, 10, 10, 10], (1, 2): [0, 0, 0, 10], (2, 1): [2, 4, 6, 8], (2, 2): [5, 5, 5, 5]}
    image = {(1, 1): [1, 1, 0, 1], (1, 2): [1, 1, 0, 0], (2, 1): [1, 1, 1, 1], (2, 2): [1, 1, 1, 0]}
    states = pl.DataFrame(
        [
            {"step": 2 * (g - 1) + r - 1, "generation": g, "round": r, "agent_id": i,
             "resources": float(resources[g, r][i]), "good_image_scoring": bool(image[g, r][i]),
             "good_standing": True}
            for (g, r) in resources for i in range(4)
        ],
        schema_overrides={"step": pl.Int64, "generation": pl.Int32, "round": pl.Int32},
    )  # fmt: skip
    kinds = {1: ["fixed_fraction", "fixed_fraction", "always_defect", "llm"],
             2: ["fixed_fraction", "fixed_fraction", "fixed_fraction", "llm"]}  # fmt: skip
    strategies = pl.DataFrame(
        [
            {"step": 2 * g - 1, "generation": g, "agent_id": i, "policy": k,
             "strategy": "My strategy will be kind." if k == "llm" else k, "final_resources": 1.0,
             "survived": i < 2}
            for g, ks in kinds.items() for i, k in enumerate(ks)
        ],
        schema_overrides={"step": pl.Int64, "generation": pl.Int32},
    )  # fmt: skip
    return {"interactions": interactions, "states": states, "strategies": strategies}
