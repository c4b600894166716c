"""Every hand-coded strategy: the shared contract, then its known sequences against probes."""

from __future__ import annotations

import numpy as np
import pytest

from agents.decisions import DecisionBatch
from scenarios.ipd import MOVE_SPEC, STATES, STRATEGIES, IPDStrategy, state_of


def play(a: str, b: str, rounds: int = 10, seed: int = 0) -> tuple[str, str]:
    """One match, decided round by round through the same batch interface the engine uses."""
    moves = np.zeros((2, rounds), np.int8)
    rng = np.random.default_rng(seed)
    for t in range(rounds):
        for side, name in enumerate((a, b)):
            batch = DecisionBatch(
                spec=MOVE_SPEC, agent_ids=np.array([side]),
                obs={"own": moves[side : side + 1, :t], "opp": moves[1 - side : 2 - side, :t]},
                context={"round": t}, seeds=rng.integers(0, 2**63, 1, dtype=np.uint64),
            )  # fmt: skip
            moves[side, t] = IPDStrategy(name).decide(batch)["move"][0]
    return tuple("".join("JF"[m] for m in row) for row in moves)  # type: ignore[return-value]


@pytest.mark.parametrize("name", sorted(STRATEGIES))
class TestStrategyContract:
    def test_answers_every_decision_with_a_valid_move(self, name):
        rng = np.random.default_rng(1)
        for t in (0, 1, 5):
            own, opp = rng.integers(0, 2, (500, t), dtype=np.int8), rng.integers(0, 2, (500, t), dtype=np.int8)
            moves = STRATEGIES[name](own, opp, t, rng.random(500))
            assert moves.shape == (500,) and set(np.unique(moves)) <= {0, 1}

    def test_same_histories_and_seeds_same_moves(self, name):
        assert play(name, "random", seed=4) == play(name, "random", seed=4)

    def test_vectorised_equals_one_at_a_time(self, name):
        rng = np.random.default_rng(2)
        own, opp, u = (
            rng.integers(0, 2, (64, 4), dtype=np.int8),
            rng.integers(0, 2, (64, 4), dtype=np.int8),
            rng.random(64),
        )
        together = STRATEGIES[name](own, opp, 4, u)
        alone = [STRATEGIES[name](own[i : i + 1], opp[i : i + 1], 4, u[i : i + 1])[0] for i in range(64)]
        assert together.tolist() == alone


@pytest.mark.parametrize(
    ("a", "b", "expected_a", "expected_b"),
    [
        ("tit_for_tat", "defect_once", "JFJJJJJJJJ", "FJJJJJJJJJ"),
        ("grim_trigger", "alternate", "JJFFFFFFFF", "JFJFJFJFJF"),
        ("grim_trigger", "defect_once", "JFFFFFFFFF", "FJJJJJJJJJ"),
        ("tit_for_two_tats", "always_defect", "JJFFFFFFFF", "FFFFFFFFFF"),
        ("suspicious_tit_for_tat", "tit_for_tat", "FJFJFJFJFJ", "JFJFJFJFJF"),
        ("win_stay_lose_shift", "always_defect", "JFJFJFJFJF", "FFFFFFFFFF"),
        ("win_stay_lose_shift", "defect_once", "JFFFFFFFFF", "FJJJJJJJJJ"),  # T after S is a win: stays F
        ("always_cooperate", "always_defect", "JJJJJJJJJJ", "FFFFFFFFFF"),
    ],
)
def test_known_sequences(a, b, expected_a, expected_b):
    assert play(a, b) == (expected_a, expected_b)


def test_random_plays_each_option_about_half_the_time():
    moves = STRATEGIES["random"](np.zeros((20_000, 0), np.int8), np.zeros((20_000, 0), np.int8), 0,
                                 np.random.default_rng(0).random(20_000))  # fmt: skip
    assert 0.48 < moves.mean() < 0.52


def test_a_mixed_batch_in_one_pass_gives_each_decision_its_own_strategys_move():
    """`IPDStrategy.decide_mix` (the runner's one-pass path) against each strategy on its own part."""
    rng = np.random.default_rng(7)
    names = dict(enumerate(sorted(STRATEGIES)))
    for t in (0, 1, 2, 7):
        n = 400
        own, opp = rng.integers(-1, 2, (n, t), dtype=np.int8), rng.integers(-1, 2, (n, t), dtype=np.int8)
        codes = rng.integers(0, len(names), n).astype(np.int16)
        batch = DecisionBatch(spec=MOVE_SPEC, agent_ids=np.arange(n), obs={"own": own, "opp": opp},
                              context={"round": t}, seeds=rng.integers(0, 2**63, n, dtype=np.uint64))  # fmt: skip
        mixed = IPDStrategy.decide_mix(batch, names, codes)["move"]
        for code, name in names.items():
            part = np.flatnonzero(codes == code)
            alone = IPDStrategy(name).decide(batch.take(part))["move"]
            assert np.array_equal(mixed[part], alone), f"{name} in round {t}"


def test_every_memory_has_its_own_state_number():
    """The table path of `decide_mix` looks moves up by `state_of`: one number per memory, 0..53."""
    assert np.array_equal(state_of(STATES), np.arange(len(STATES)))
    assert len({tuple(int(f[i]) for f in (STATES.last_own, STATES.last_opp, STATES.prev_opp, STATES.opp_defected))
                for i in range(len(STATES))}) == len(STATES) == 54  # fmt: skip
