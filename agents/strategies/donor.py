"""Scripted donor-game strategies, each answering a whole batch of donations with numpy.

They read the observation columns the donor game puts in every "donor_donation" batch:
`resources` (what the donor holds), `observed` (whether the donor sees the recipient's standing
this round, probability q) and `good_<norm>` (the recipient's public binary reputation under
each assessment norm). Scripted agents never punish.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.decisions import DecisionBatch, Decisions


def _answer(batch: DecisionBatch, amount: np.ndarray) -> dict[str, np.ndarray]:
    """Values for every field of the donation spec: blank text, choice 0 ('donate') when present."""
    values = Decisions.empty(batch.spec, len(batch)).values
    values["amount"] = amount.astype(np.float64)
    return values


@dataclass(frozen=True)
class AlwaysDefect:
    """Never gives anything."""

    def decide(self, batch: DecisionBatch) -> dict[str, np.ndarray]:
        return _answer(batch, np.zeros(len(batch)))


@dataclass(frozen=True)
class FixedFraction:
    """Unconditional cooperator: always gives `fraction` of its resources (0 = defect, 1 = all)."""

    fraction: float

    def decide(self, batch: DecisionBatch) -> dict[str, np.ndarray]:
        return _answer(batch, self.fraction * batch.obs["resources"])


@dataclass(frozen=True)
class Discriminator:
    """Gives `fraction` of its resources to recipients in good standing under `norm`; when it
    cannot see the recipient's standing (probability 1 - q) it gives, as in Nowak & Sigmund."""

    norm: str
    fraction: float

    def decide(self, batch: DecisionBatch) -> dict[str, np.ndarray]:
        trusted = ~batch.obs["observed"] | batch.obs[f"good_{self.norm}"]
        return _answer(batch, np.where(trusted, self.fraction * batch.obs["resources"], 0.0))


def donor_strategies(fraction: float) -> dict[str, AlwaysDefect | FixedFraction | Discriminator]:
    """The scripted strategies of the donor game by policy name; `fraction` is what a cooperating
    scripted agent gives (fixed_fraction always, discriminators to recipients in good standing)."""
    return {
        "always_defect": AlwaysDefect(),
        "fixed_fraction": FixedFraction(fraction),
        "image_scoring": Discriminator("image_scoring", fraction),
        "standing": Discriminator("standing", fraction),
        "stern_judging": Discriminator("stern_judging", fraction),
    }
