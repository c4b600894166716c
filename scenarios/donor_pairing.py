"""Who meets whom in a round of the donor game: strict role alternation, no repeated partner.

Strict alternation fixes the roles for a whole game: the agents who give in round 1 give again in
rounds 3, 5, ... and receive in rounds 2, 4, ... So every game splits the agents into two halves
(`half` 0 gives on odd rounds, `half` 1 on even rounds, rounds counted from 1).

Complete graph (`bipartite_round`): with h = N/2, half 0 is `side_a` and half 1 `side_b`, in random
order. Round t (0-based) pairs side_a[i] with side_b[(i + o_t) % h]; side a gives when t is even,
side b when t is odd. The offsets o_t are a random permutation of 0..h-1 taken in an order that
(1) gives every agent a new partner in each of the first h rounds (all of the other half), and
(2) in rounds h..2h-1 meets each partner once more with the roles reversed, so no donor gives to
the same recipient twice within 2h rounds. With 12 agents and 12 rounds each agent meets 6 partners,
once as donor and once as recipient; more distinct partners are impossible under strict alternation.

The released notebook's schedule (`notebook_round`, `pairing=notebook`), which produced the paper's
published numbers: side b is rotated against side a (round i pairs a[j] with b[(j - i) mod h]) for h
rounds, roles toggling each round (a gives first); then the same h rounds again with every pair's roles
swapped. So every pair meets twice, and where the two halves join the same side gives two rounds in a
row (h even) or roles stop alternating with the recipient's last gift (h odd); traces then have to be
looked up instead of following from the halves.

Other graphs (`neighbour_round`): the givers of the round are the agents of the giving half; each
picks a recipient uniformly among its neighbours (either half), redrawing (up to `tries` times)
a neighbour it has already given to in this game. A recipient may then receive from several donors
or from none; agents without neighbours sit the round out.
"""

from __future__ import annotations

import numpy as np

from scenarios.base import SocialGraph


def split_halves(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random split for one game: (half per agent, side_a, side_b). N odd: side a has one more."""
    order = rng.permutation(n)
    side_a, side_b = order[: (n + 1) // 2], order[(n + 1) // 2 :]
    half = np.zeros(n, np.int8)
    half[side_b] = 1
    return half, side_a, side_b


def offset_slot(t: int, h: int) -> int:
    """Which entry of the game's offset permutation round t (0-based) uses (see module docstring)."""
    j = t % h
    if (t // h) % 2 == 1 and h % 2 == 0:
        j ^= 1  # h even: round t and t-h share a parity, so swap neighbours to reverse the roles
    return j


def bipartite_round(
    t: int, side_a: np.ndarray, side_b: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(donors, recipients) of round t on a complete graph; needs len(side_a) == len(side_b)."""
    h = len(side_a)
    partner = side_b[(np.arange(h) + offsets[offset_slot(t, h)]) % h]
    if t % 2 == 0:
        return side_a, partner
    return partner, side_a


def notebook_round(t: int, side_a: np.ndarray, side_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(donors, recipients) of round t (0-based) in the released notebook's schedule (module docstring);
    after 2h rounds it starts over."""
    h = len(side_a)
    base = t % (2 * h)
    i, swapped = base % h, base >= h
    partner = side_b[(np.arange(h) - i) % h]
    if (i % 2 == 0) != swapped:
        return side_a, partner
    return partner, side_a


def neighbour_round(
    t: int,
    half: np.ndarray,
    graph: SocialGraph,
    given_to: np.ndarray,
    rng: np.random.Generator,
    tries: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """(donors, recipients) of round t on a sparse graph. `given_to[k, i]` = whom i gave to in round
    k of this game (-1: nobody); a donor redraws a neighbour it already gave to, up to `tries` times."""
    donors = np.flatnonzero((half == t % 2) & (graph.degree > 0))
    start, degree = graph.indptr[donors], graph.degree[donors]
    recipients = graph.indices[start + rng.integers(0, degree)]
    past = given_to[:t, donors]
    todo = np.arange(len(donors))
    for _ in range(tries):
        if t == 0 or not len(todo):
            break
        repeat = (past[:, todo] == recipients[todo]).any(axis=0)
        # a donor that has already given to every neighbour must repeat one
        met = (past[:, todo] >= 0).sum(axis=0)
        todo = todo[repeat & (met < degree[todo])]
        recipients[todo] = graph.indices[start[todo] + rng.integers(0, degree[todo])]
    return donors, recipients
