"""Cultural evolution between generations (Vallinder & Hughes 2024, after Boyd & Richerson 1985):
selection of the best performers, and transmission of strategies to the agents who replace the rest.

Pure functions over per-slot arrays; the donor game calls them at the end of each generation. A
scripted newcomer copies a survivor's strategy (with mutation); a language-model newcomer is shown
the survivors' strategies and writes its own (the scenario asks for that as a decision).
"""

from __future__ import annotations

import numpy as np


def survivors(resources: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Mask of the top `fraction` by final resources (at least one agent); ties broken at random
    (a stable sort of a shuffled order)."""
    n = len(resources)
    keep = min(n, max(1, round(fraction * n)))
    shuffled = rng.permutation(n)
    best = shuffled[np.argsort(-resources[shuffled], kind="stable")[:keep]]
    mask = np.zeros(n, bool)
    mask[best] = True
    return mask


def inherit_scripted(
    codes: np.ndarray,
    survived: np.ndarray,
    scripted: np.ndarray,
    targets: np.ndarray,
    mutation_rate: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Policy codes of the next generation and each new scripted agent's parent slot (-1: none).

    A new scripted agent copies the strategy of a scripted survivor drawn uniformly (cultural
    transmission); with probability `mutation_rate` it switches to another of `targets` (the scripted
    strategies the run started with). Without scripted survivors it draws from `targets`."""
    new_codes = codes.copy()
    parent = np.full(len(codes), -1, np.int64)
    born = np.flatnonzero(~survived & scripted)
    if not len(born):
        return new_codes, parent
    pool = np.flatnonzero(survived & scripted)
    if len(pool):
        parent[born] = pool[rng.integers(0, len(pool), len(born))]
        new_codes[born] = codes[parent[born]]
    else:
        new_codes[born] = targets[rng.integers(0, len(targets), len(born))]
    if len(targets) > 1 and mutation_rate > 0:
        mutate = born[rng.random(len(born)) < mutation_rate]
        # shift by 1..len-1 places in the target list: uniform over the *other* strategies
        position = np.searchsorted(targets, new_codes[mutate])
        shift = rng.integers(1, len(targets), len(mutate))
        new_codes[mutate] = targets[(position + shift) % len(targets)]
    return new_codes, parent
