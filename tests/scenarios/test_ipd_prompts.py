"""The IPD/BoS prompt follows Akata et al.: rules in words, one history line per round with the
right points for each side, the question ending in "A: Option", option order shuffled by seed in
the PD only; static text first (rules, then persona) for prefix caching."""

from __future__ import annotations

import numpy as np
import pytest

from agents.population import SamplerConfig, sample_personas
from agents.prompts import Prompter
from scenarios.ipd import IPDConfig, IteratedGame

PD = IPDConfig(game="pd").payoff_table().tolist()
BOS = IPDConfig(game="bos").payoff_table().tolist()


PERSONAS = sample_personas(SamplerConfig(), 3, np.random.default_rng(1))
GAME = IteratedGame(IPDConfig())
PROMPTER = Prompter(GAME, GAME.templates(), PERSONAS)


@pytest.fixture(scope="module")
def personas() -> list[int]:
    return [0, 1, 2]  # agent ids into PERSONAS


def render(agent, own, opp, side=0, game="pd", seed=5, rounds=10):
    obs = {"own": np.array(own, np.int8), "opp": np.array(opp, np.int8), "side": np.int8(side)}
    context = {"round": len(own), "rounds": rounds, "game": game, "payoffs": PD if game == "pd" else BOS}
    return PROMPTER.messages("ipd_move", agent, obs, context, seed)


def test_history_lines_carry_moves_and_points_in_order(personas):
    system, user = render(personas[0], own=[0, 1, 1], opp=[1, 1, 0])
    assert system["role"] == "system" and user["role"] == "user"
    lines = user["content"].splitlines()
    assert lines[:3] == [
        "In round 1, you chose Option J and the other player chose Option F. "
        "Thus, you won 0 points and the other player won 10 points.",
        "In round 2, you chose Option F and the other player chose Option F. "
        "Thus, you won 5 points and the other player won 5 points.",
        "In round 3, you chose Option F and the other player chose Option J. "
        "Thus, you won 10 points and the other player won 0 points.",
    ]
    assert lines[3] == "You are currently playing round 4."
    assert lines[4] in (
        "Q: Which Option do you choose, Option J or Option F?",
        "Q: Which Option do you choose, Option F or Option J?",
    )
    assert lines[5] == "A: Option" and len(lines) == 6


def test_rules_in_words_from_each_side_of_battle_of_the_sexes(personas):
    row = render(personas[0], [], [], side=0, game="bos")[0]["content"]
    col = render(personas[0], [], [], side=1, game="bos")[0]["content"]
    assert "You will play 10 rounds in total with the same player." in row
    assert ("If you choose Option J and the other player chooses Option J, then you win 10 points "
            "and the other player wins 7 points.") in row  # fmt: skip
    assert ("If you choose Option J and the other player chooses Option J, then you win 7 points "
            "and the other player wins 10 points.") in col  # fmt: skip
    assert ("If you choose Option F and the other player chooses Option F, then you win 10 points "
            "and the other player wins 7 points.") in col  # fmt: skip
    history = render(personas[0], [1], [1], side=1, game="bos")[1]["content"]
    assert "Thus, you won 10 points and the other player won 7 points." in history


def test_static_text_first_rules_then_persona(personas):
    systems = [render(p, [0], [1])[0]["content"] for p in personas]
    rules = systems[0].split("\n\n")[0]
    assert rules.startswith("You are playing a game repeatedly with another player.")
    assert all(s.startswith(rules + "\n\n") for s in systems)  # shared prefix across agents
    for agent, system in zip(personas, systems, strict=True):
        assert PERSONAS["name"][agent] in system.split("\n\n", 1)[1]
    assert render(personas[0], [0, 0], [0, 1])[0] == render(personas[0], [0], [1])[0]  # history not in system


def test_option_order_shuffled_by_seed_in_pd_only(personas):
    def question(game, seed):
        return render(personas[0], [0], [0], game=game, seed=seed)[1]["content"].splitlines()[-2]

    pd_orders = [question("pd", seed) for seed in range(200)]
    assert 60 <= sum("Option J or Option F" in q for q in pd_orders) <= 140
    assert question("pd", 12345) == question("pd", 12345)
    assert {question("bos", seed) for seed in range(50)} == {"Q: Which Option do you choose, Option J or Option F?"}


def test_rounds_and_first_round(personas):
    system, user = render(personas[1], [], [], rounds=7)
    assert "You will play 7 rounds in total" in system["content"]
    assert user["content"].startswith("You are currently playing round 1.")
