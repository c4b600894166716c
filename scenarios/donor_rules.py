"""The donor game's round mechanics (Vallinder & Hughes 2024; Nowak & Sigmund 1998): payoffs, binary
reputations under three assessment norms, and the traces a donor may see.

All functions take and return numpy arrays over agents so one call settles a whole round, however
many agents play. The scenario (`scenarios/donor_game.py`) only sequences them; selection and
inheritance between generations are in `scenarios/cultural_evolution.py`.
"""

from __future__ import annotations

import numpy as np

# Assessment norms for binary reputation (Nowak & Sigmund 1998; Ohtsuki & Iwasa 2004):
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
    what that target did when it last gave before that, ... up to `depth` links (Vallinder & Hughes 2024)."""
    rounds, actors, targets = trace_arrays(np.array([recipient]), t, depth, half, given_to)
    return [(int(k), int(a), int(b)) for k, a, b in zip(rounds[0], actors[0], targets[0], strict=True) if k >= 0]


def last_gift_any_round(before: np.ndarray, actor: np.ndarray, given_to: np.ndarray) -> np.ndarray:
    """Latest round k < before (0-based) in which each actor gave, read from `given_to` itself (for
    schedules without strict role alternation); -1 when there is none."""
    rounds = given_to.shape[0]
    gave = (given_to[:, actor] >= 0) & (np.arange(rounds)[:, None] < before[None, :])
    last = rounds - 1 - np.argmax(gave[::-1], axis=0)
    return np.where(gave.any(axis=0), last, -1)


def trace_arrays(
    recipients: np.ndarray,
    t: int,
    depth: int,
    half: np.ndarray,
    given_to: np.ndarray,
    alternating: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The traces of many recipients at once, before round t (0-based): (round k, actor, target)
    arrays of shape [len(recipients), depth], -1 past the end of each trace. `given_to[k, i]` is
    whom agent i gave to in round k (-1: nobody). With strict role alternation an agent's last gift
    follows from its `half`; otherwise (`alternating=False`) it is looked up. No loop over agents."""
    n = len(recipients)
    rounds = np.full((n, depth), -1, np.int64)
    actors = np.full((n, depth), -1, np.int64)
    targets = np.full((n, depth), -1, np.int64)
    actor = np.asarray(recipients, np.int64).copy()
    before = np.full(n, t, np.int64)
    alive = np.ones(n, bool)
    for level in range(depth):
        k = last_gift_round(before, half[actor]) if alternating else last_gift_any_round(before, actor, given_to)
        alive &= k >= 0
        target = np.where(alive, given_to[np.maximum(k, 0), actor], -1)
        alive &= target >= 0
        if not alive.any():
            break
        rounds[alive, level], actors[alive, level], targets[alive, level] = k[alive], actor[alive], target[alive]
        actor = np.where(alive, target, actor)
        before = np.where(alive, k, before)
    return rounds, actors, targets


def trace_standing(rounds: np.ndarray, cooperated: np.ndarray, norm: str) -> np.ndarray:
    """The recipient's standing under `norm` as a donor reads it off its trace alone ([m, depth] arrays:
    the link's round, -1 past the end; whether the link's actor cooperated).

    Read from the far end: whoever the trace says nothing about is presumed good; each link's actor
    is judged on what it did and on its recipient's standing so read (the next link is what that
    recipient did last before). Under image scoring only the recipient's own last act counts."""
    k = NORMS.index(norm)
    standing = np.ones(len(rounds), bool)
    for level in range(rounds.shape[1] - 1, -1, -1):
        known = rounds[:, level] >= 0
        judged = GOOD_AFTER[k][cooperated[:, level].astype(np.intp), standing.astype(np.intp)]
        standing = np.where(known, judged, True)
    return standing
