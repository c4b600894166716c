"""Pure rules of the donor game: payoffs, binary reputations, traces, selection and inheritance.

All functions take and return numpy arrays over agents so one call settles a whole round, however
many agents play. The scenario (`scenarios/donor_game.py`) only sequences them.
"""

from __future__ import annotations

import numpy as np

# Assessment norms for binary reputation (Nowak & Sigmund; SCIENCE.md §1):
# GOOD_AFTER[norm][cooperated][recipient_good] -> the donor's new standing.
NORMS = ("image_scoring", "standing", "stern_judging")
GOOD_AFTER = np.array(
    [
        [[False, False], [True, True]],  # image scoring: only what you did counts
        [[True, False], [True, True]],  # simple standing: refusing a bad recipient is justified
        [[True, False], [False, True]],  # stern judging: helping a bad recipient is bad too
    ]
)


def settle(
    resources: np.ndarray,
    donors: np.ndarray,
    recipients: np.ndarray,
    amount: np.ndarray,
    punish: np.ndarray,
    multiplier: float,
    cost_multiplier: float,
) -> np.ndarray:
    """Resources after one round. Every donor pays `amount` (capped at what it holds); a donation
    gives the recipient multiplier x amount, a punishment takes cost_multiplier x amount from it
    (floored at 0). Moves are simultaneous: all read the resources at the start of the round."""
    n = len(resources)
    amount = np.clip(amount, 0.0, resources[donors])
    after = resources - np.bincount(donors, weights=amount, minlength=n)
    after += multiplier * np.bincount(recipients, weights=np.where(punish, 0.0, amount), minlength=n)
    if punish.any():
        lost = cost_multiplier * np.bincount(recipients, weights=np.where(punish, amount, 0.0), minlength=n)
        after = np.maximum(after - lost, 0.0)
    return after


def assess(reputation: np.ndarray, donors: np.ndarray, recipients: np.ndarray, cooperated: np.ndarray) -> np.ndarray:
    """New reputations (norms x agents) after a round: each donor is judged under every norm on
    what it did and on the recipient's standing at the start of the round (public information)."""
    after = reputation.copy()
    for k in range(len(NORMS)):
        after[k, donors] = GOOD_AFTER[k][cooperated.astype(np.intp), reputation[k, recipients].astype(np.intp)]
    return after


def last_gift_round(t: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Latest round k < t (0-based) in which agents of `half` gave (they give when k % 2 == half);
    -1 when there is none."""
    k = t - 1 - ((t - 1 - half) % 2)
    return np.where(k >= 0, k, -1)


def trace_links(
    recipient: int,
    t: int,
    depth: int,
    half: np.ndarray,
    given_to: np.ndarray,
) -> list[tuple[int, int, int]]:
    """The recipient's trace as (round k, actor, target): what the recipient did when it last gave,
    what that target did when it last gave before that, ... up to `depth` links (SCIENCE.md §1)."""
    links: list[tuple[int, int, int]] = []
    actor, before = recipient, t
    for _ in range(depth):
        k = int(last_gift_round(np.array(before), half[actor]))
        if k < 0 or given_to[k, actor] < 0:
            break
        target = int(given_to[k, actor])
        links.append((k, actor, target))
        actor, before = target, k
    return links


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
