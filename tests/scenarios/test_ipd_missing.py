"""A missing decision in the IPD voids that match's round: no action, no payoffs for either player, an
unknown move in both histories; scripted strategies read it as no information."""

from __future__ import annotations

import numpy as np
import polars as pl

from agents.decisions import Decisions
from agents.graph import SocialGraph
from agents.population import Population
from scenarios.ipd import IPDConfig, IteratedGame, history_lines
from sim import seeding
from sim.backends.config import BackendConfig
from sim.runner import DecisionRunner, DecisionSetup
from sim.scheduler import StepContext, fill_decisions


def _game(mix: list[str]) -> tuple[IteratedGame, Population, DecisionRunner]:
    game = IteratedGame(IPDConfig(rounds=4))
    universe = (*sorted(game.strategies()), "llm")
    population = Population(
        pl.DataFrame({"id": [str(i) for i in range(len(mix))]}), universe,
        np.array([universe.index(p) for p in mix], np.int16),
    )  # fmt: skip
    game.bind(population, SocialGraph.complete_graph(len(mix)))
    setup = DecisionSetup(
        scenario=game.config, templates=game.templates(), backend=BackendConfig(), population=population
    )
    return game, population, DecisionRunner(setup)


def _step(game, population, runner, world, t, lost: set[int]):
    """One round: scripted answers, except the decisions in `lost`, which come back missing."""
    batches = game.plan(world, t, seeding.rng(0, "plan", t))
    fill_decisions(batches, StepContext("r", 0, population, "none", None), t)
    answers = runner.answer_scripted(batches)[0]
    if lost:
        index = np.array(sorted(lost))
        lost_answers = Decisions.unanswered(batches[0].spec, len(index))
        lost_answers.fallback_reason[:] = "timeout"
        answers[0].put(index, lost_answers)
    return game.resolve(world, t, batches, answers, seeding.rng(0, "resolve", t))


def test_a_missing_move_voids_the_round_for_both_players():
    game, population, runner = _game(["tit_for_tat", "always_defect"])
    world = game.init(np.random.default_rng(0))
    result = _step(game, population, runner, world, 0, {1})  # always_defect's first move is lost
    rows = result.tables["interactions"].frame().sort("actor_id")
    assert rows["action"].to_list() == ["J", None]
    assert rows["payoff_actor"].is_null().all() and rows["payoff_target"].is_null().all()
    assert world.moves[0, :, 0].tolist() == [0, -1]
    # round 2: tit-for-tat has seen nothing yet, so it opens again; round 3 it copies the defection
    second = _step(game, population, runner, world, 1, set()).tables["interactions"].frame().sort("actor_id")
    assert second["action"].to_list() == ["J", "F"] and second["payoff_actor"].to_list() == [0.0, 10.0]
    third = _step(game, population, runner, world, 2, set()).tables["interactions"].frame().sort("actor_id")
    assert third["action"].to_list() == ["F", "F"]


def test_strategies_look_back_past_void_rounds():
    from scenarios.ipd import STRATEGIES

    own = np.array([[0, 1, -1], [0, -1, 0]], np.int8)
    opp = np.array([[1, 1, 0], [1, 0, -1]], np.int8)
    u = np.zeros(2)
    # match 0: round 3 void (own unknown): tit-for-tat copies round 2's F; match 1: copies round 1's F
    assert STRATEGIES["tit_for_tat"](own, opp, 3, u).tolist() == [1, 1]
    assert STRATEGIES["grim_trigger"](own, opp, 3, u).tolist() == [1, 1]
    assert STRATEGIES["tit_for_two_tats"](own, opp, 3, u).tolist() == [1, 0]  # match 1 has one played round
    assert STRATEGIES["win_stay_lose_shift"](own, opp, 3, u).tolist() == [0, 1]


def test_a_void_round_reads_as_one_in_the_prompt():
    payoffs = IPDConfig().payoff_table().tolist()
    lines = history_lines([0, -1], [1, 0], payoffs, 0)
    assert lines[1] == "In round 2, no choice was recorded for one of you, so the round did not count."
    assert lines[0].startswith("In round 1, you chose Option J and the other player chose Option F.")
