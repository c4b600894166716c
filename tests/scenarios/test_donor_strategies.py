"""Scripted donor-game strategies: the shared contract, then what each gives to whom."""

from __future__ import annotations

import numpy as np
import pytest

from agents.decisions import DecisionBatch
from scenarios.donor_game import DonorGameConfig, donation_spec, donor_strategies
from scenarios.donor_rules import NORMS

STRATEGIES = donor_strategies(0.4)


def batch(n: int, punishment: bool = False, seed: int = 0, **obs: np.ndarray) -> DecisionBatch:
    """A donation batch with random resources and reputations, overridden by `obs`."""
    rng = np.random.default_rng(seed)
    columns = {
        "resources": rng.uniform(0, 50, n),
        "observed": rng.random(n) < 0.5,
        **{f"good_{norm}": rng.random(n) < 0.5 for norm in NORMS},
    }
    columns.update(obs)
    spec = donation_spec(DonorGameConfig(punishment=punishment))
    return DecisionBatch(spec=spec, agent_ids=np.arange(n), obs=columns)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@pytest.mark.parametrize("punishment", [False, True])
class TestStrategyContract:
    def test_answers_every_field_within_the_donors_resources(self, name, punishment):
        b = batch(1000, punishment)
        values = STRATEGIES[name].decide(b)
        assert set(values) == {f.name for f in b.spec.fields}
        assert values["amount"].shape == (1000,)
        assert (values["amount"] >= 0).all() and (values["amount"] <= b.obs["resources"]).all()
        assert (values["justification"] == "").all()
        if punishment:
            assert (values["action"] == 0).all()  # scripted agents never punish

    def test_vectorised_equals_one_at_a_time(self, name, punishment):
        b = batch(64, punishment, seed=3)
        together = STRATEGIES[name].decide(b)["amount"]
        alone = [STRATEGIES[name].decide(b.take(np.array([i])))["amount"][0] for i in range(64)]
        assert together.tolist() == alone


def test_always_defect_gives_nothing():
    assert not STRATEGIES["always_defect"].decide(batch(100))["amount"].any()


def test_fixed_fraction_gives_its_fraction_whoever_the_recipient_is():
    b = batch(100)
    assert np.allclose(STRATEGIES["fixed_fraction"].decide(b)["amount"], 0.4 * b.obs["resources"])


@pytest.mark.parametrize("norm", NORMS)
def test_discriminator_gives_to_good_or_unseen_recipients_only(norm):
    b = batch(400, seed=5)
    amount = STRATEGIES[norm].decide(b)["amount"]
    seen_bad = b.obs["observed"] & ~b.obs[f"good_{norm}"]
    assert not amount[seen_bad].any()
    assert np.allclose(amount[~seen_bad], 0.4 * b.obs["resources"][~seen_bad])
    # it reads its own norm's reputation, not another's
    other = next(n for n in NORMS if n != norm)
    flipped = batch(400, seed=5, **{f"good_{other}": ~b.obs[f"good_{other}"]})
    assert STRATEGIES[norm].decide(flipped)["amount"].tolist() == amount.tolist()
