"""The public goods game: socsim's shared scenario contract, then the game's own arithmetic."""

from __future__ import annotations

import polars as pl

from sim.testing import ScenarioContract, read_table, run_with


class TestPublicGoodsContract(ScenarioContract):
    overrides = ["scenario=public_goods", "population.size=8", "scenario.rounds=4",
                 "population.mix={free_rider:2,contributor:2,conditional:4}"]  # fmt: skip
    llm_overrides = ["population.mix={llm:4,conditional:4}", "scenario.rounds=2"]
    invalid = [
        ("scenario.multiplier=5", "multiplier must be between 1 and group_size=4"),
        ("population.size=10 population.mix={conditional:1.0}", "not a multiple of scenario.group_size=4"),
    ]


def test_payoffs_follow_the_linear_public_goods_rule(tmp_path):
    run_dir = run_with(["scenario=public_goods", "population.size=4", "scenario.rounds=1",
                        "population.mix={free_rider:1,contributor:3}", "seed=1"], tmp_path)  # fmt: skip
    rows = read_table(run_dir, "interactions").join(
        pl.read_parquet(run_dir / "agents.parquet").select(actor_id="agent_id", who="policy"), on="actor_id"
    )
    # one group of four: the pot is 60, each gets 1.6 * 60 / 4 = 24 on top of what it kept
    assert rows.filter(who="free_rider")["payoff"].to_list() == [20 + 24.0]
    assert rows.filter(who="contributor")["payoff"].to_list() == [24.0] * 3
