"""Tiny hand-made runs written with polars, so analysis is tested without the engine.

Every number the tests check is worked out by hand in the docstring of the fixture that builds it.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tests.analysis.tiny_runs import INJECTION, VD_POSITIONS, donor_tables, ipd_rows, write_run


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
        [
            (0, 1, [("J", "F"), ("F", "F")]),
            (0, 2, [("J", "J"), ("J", "J")]),
            (1, 2, [("F", "J"), ("F", "J")]),
        ],
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
    agents = pl.DataFrame({"agent_id": [0, 1, 2, 3], "policy": ["llm"] * 4})
    # One LLM exchange whose text tries to inject markup: the report must escape it.
    interactions = pl.DataFrame(
        {
            "step": [0],
            "phase": ["listen"],
            "round": [0],
            "speaker_id": [0],
            "listener_id": [1],
            "dimension": ["a"],
            "heard": [True],
            "speaker_position": [0.0],
            "position_before": [0.2],
            "position_after": [0.1],
            "message": [INJECTION],
            "policy": ["llm"],
            "backend": ["vllm"],
            "model": ["tiny"],
            "fallback_reason": [None],
        },
        schema_overrides={"step": pl.Int64, "round": pl.Int32, "fallback_reason": pl.String},
    )
    return write_run(
        tmp_path / "vd_run",
        run_id="vd-1",
        seed=7,
        scenario={"name": "value_debate", "epsilon": 0.3, "mu": 0.5},
        model="tiny",
        tables={"states": [states], "interactions": [interactions]},
        agents=agents,
    )


@pytest.fixture
def donor_run(tmp_path: Path) -> Path:
    """Donor game, 4 agents, generations 1-2 of rounds 1-2 (tables in tiny_runs.donor_tables).

    donated fraction (a punishment gives 0): gen 1 (0.5 + 0 + 0.25 + 0) / 4 = 0.1875,
    gen 2 (0.5 + 0.5 + 1 + 0) / 4 = 0.5 -> trend 0.3125 per generation
    cooperation (a positive donation): gen 1 2/4, gen 2 3/4 (the punishment does not count)
    Gini of resources: (1,1) 10,10,10,10 -> 0; (1,2) 0,0,0,10 -> 0.75; (2,1) 2,4,6,8 -> 40/160 = 0.25;
    (2,2) all 5 -> 0. Good standing (image scoring): 0.75, 0.5, 1, 0.75; (standing) always 1
    strategy shares: gen 1 fixed_fraction 0.5, always_defect 0.25, llm 0.25; gen 2 fixed 0.75, llm 0.25
    """
    tables = donor_tables()
    return write_run(
        tmp_path / "donor_run",
        run_id="donor-1",
        seed=3,
        scenario={"name": "donor_game", "rounds": 2, "generations": 2, "multiplier": 2.0},
        tables={name: [frame] for name, frame in tables.items()},
        agents=pl.DataFrame({"agent_id": [0, 1, 2, 3], "policy": ["fixed_fraction"] * 3 + ["llm"]}),
        model="tiny",
    )
