"""A two-sample permutation test for "do these two samples of final cluster counts share one distribution?".

Statistic: the two-sample Cramér–von Mises distance (Anderson 1962, "On the distribution of the
two-sample Cramér–von Mises criterion", Ann. Math. Statist. 33), the squared gap between the two
empirical distribution functions summed over the pooled observations. It reacts to a shift of the
whole distribution (a different epsilon) and to a change of its shape. Its null distribution comes
from relabelling the pooled observations at random, so ties (counts are small integers) and small
samples need no approximation. Written with numpy, seeded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _cvm(in_a: np.ndarray, below: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The statistic for each labelling (rows of in_a: True where a pooled observation belongs to a)."""
    n_a = in_a[0].sum()
    n_b = in_a.shape[1] - n_a
    ecdf_a = in_a.astype(np.float64) @ below / n_a
    ecdf_b = (~in_a).astype(np.float64) @ below / n_b
    return ((ecdf_a - ecdf_b) ** 2 * weight).sum(axis=1)


def permutation_p_value(a: Sequence[float], b: Sequence[float], *, permutations: int = 9999, seed: int = 0) -> float:
    """P-value of the permutation test that a and b come from one distribution: (1 + #{relabelled
    statistic >= observed}) / (1 + permutations), never 0 (Phipson & Smyth 2010)."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(x) == 0 or len(y) == 0:
        raise ValueError("both samples need at least one value")
    pooled = np.concatenate([x, y])
    support = np.unique(pooled)
    below = (pooled[:, None] <= support[None, :]).astype(np.float64)  # (pooled, support)
    weight = (pooled[:, None] == support[None, :]).sum(axis=0)  # pooled observations at each support value
    labels = np.arange(len(pooled)) < len(x)
    observed = _cvm(labels[None, :], below, weight)[0]
    rng = np.random.default_rng(seed)
    shuffled = rng.permuted(np.tile(labels, (permutations, 1)), axis=1)
    null = _cvm(shuffled, below, weight)
    at_least = int((null >= observed - 1e-12 * max(1.0, observed)).sum())
    return (1 + at_least) / (1 + permutations)
