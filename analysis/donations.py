"""Donor game measures (Vallinder & Hughes 2024): donations per generation and their trend,
inequality, reputation. They are the donor_game scenario's own; here for notebooks and the report."""

from scenarios.donor_game import (
    donation_fraction,
    donation_trend,
    final_round,
    reputation_columns,
    reputation_dynamics,
    resource_gini,
    strategy_labels,
)

__all__ = [
    "donation_fraction",
    "donation_trend",
    "final_round",
    "reputation_columns",
    "reputation_dynamics",
    "resource_gini",
    "strategy_labels",
]
