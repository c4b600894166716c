"""Slow, plain-Python reference implementations of bounded-confidence opinion dynamics, for tests only.

Written from the papers, not from socsim's kernels, with loops over agents and pairs, Python floats and
Python's own `random.Random` (no numpy), so a mistake in the engine's vectorised code cannot be
repeated here by construction:

- Deffuant, Neau, Amblard & Weisbuch (2000), "Mixing beliefs among interacting agents", Advances in
  Complex Systems 3, 87–98: two agents meet; if their opinions differ by less than the threshold d
  (here `eps`), each moves a fraction mu of the gap towards the other.
- Hegselmann & Krause (2002), "Opinion dynamics and bounded confidence: models, analysis and
  simulation", JASSS 5(3): all agents update at once to the mean opinion of every agent (themselves
  included) whose opinion lies within eps of their own, |x_i - x_j| <= eps; on a graph, "every agent"
  means i and its neighbours.

Which pairs meet (the pairing rule):
- `matching`: socsim's rule (scenarios/bounded_confidence.py). A round is a set of disjoint pairs; on a
  complete graph a uniformly random perfect matching; on any other graph n edges drawn uniformly with
  replacement, keeping each draw whose two endpoints no earlier draw of the round has touched.
- `edge`: each meeting is a uniformly random edge.
- `node`: each meeting is a uniformly random agent and a uniformly random neighbour of it.

All runs go until nothing can change any more (no two neighbours that still hear each other differ by
`tolerance` or more), as the engine's own stopping rule does, or until `max_rounds`. A round is one
matching, or n meetings under `edge`/`node`; the final state does not depend on that unit.
"""

from __future__ import annotations

import random
from typing import Literal

from tests.reference.graphs import Graph

Pairing = Literal["matching", "edge", "node"]
PAIRINGS: tuple[Pairing, ...] = ("matching", "edge", "node")


def uniform_opinions(n: int, rng: random.Random) -> list[float]:
    return [rng.random() for _ in range(n)]


def deffuant_meet(x: list[float], i: int, j: int, eps: float, mu: float) -> None:
    """One meeting of the Deffuant et al. (2000) model, in place: both move mu of the gap when |gap| < eps."""
    gap = x[j] - x[i]
    if abs(gap) < eps:
        x[i] += mu * gap
        x[j] -= mu * gap


def matching_round(graph: Graph, rng: random.Random) -> list[tuple[int, int]]:
    """The disjoint pairs of one `matching` round (see the module note)."""
    if graph.complete:
        order = list(range(graph.n))
        rng.shuffle(order)
        return [(order[2 * k], order[2 * k + 1]) for k in range(graph.n // 2)]
    pairs = []
    touched: set[int] = set()
    for _ in range(graph.n):
        u, v = graph.edges[rng.randrange(len(graph.edges))]
        if u not in touched and v not in touched:
            pairs.append((u, v))
        touched.add(u)
        touched.add(v)
    return pairs


def random_meeting(graph: Graph, pairing: Pairing, rng: random.Random) -> tuple[int, int] | None:
    """One meeting under `edge` or `node` (None when the drawn agent has no neighbour)."""
    if pairing == "edge":
        return graph.edges[rng.randrange(len(graph.edges))]
    i = rng.randrange(graph.n)
    if not graph.neighbours[i]:
        return None
    return i, graph.neighbours[i][rng.randrange(len(graph.neighbours[i]))]


def spread(x: list[float], graph: Graph, eps: float, strict: bool) -> float:
    """Largest gap between two neighbours who still hear each other (< eps if strict, else <= eps)."""
    worst = 0.0
    for u, v in graph.edges:
        gap = abs(x[u] - x[v])
        if (gap < eps if strict else gap <= eps) and gap > worst:
            worst = gap
    return worst


def deffuant(
    x: list[float],
    graph: Graph,
    eps: float,
    mu: float,
    pairing: Pairing,
    rng: random.Random,
    *,
    tolerance: float = 1e-3,
    max_rounds: int = 100_000,
) -> list[float]:
    """Run the Deffuant model from opinions x until it cannot change any more; returns the final opinions."""
    if pairing not in PAIRINGS:
        raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}")
    x = list(x)
    if not graph.edges:
        return x
    for _ in range(max_rounds):
        if spread(x, graph, eps, strict=True) < tolerance:
            break
        if pairing == "matching":
            for i, j in matching_round(graph, rng):
                deffuant_meet(x, i, j, eps, mu)
        else:
            for _ in range(graph.n):
                pair = random_meeting(graph, pairing, rng)
                if pair is not None:
                    deffuant_meet(x, pair[0], pair[1], eps, mu)
    return x


def hk_step(x: list[float], graph: Graph, eps: float) -> list[float]:
    """One synchronous Hegselmann–Krause (2002) update: each agent takes the mean of the opinions within
    eps of its own among itself and its neighbours, all read before anyone moves."""
    new = []
    for i in range(graph.n):
        total, count = x[i], 1
        for j in graph.neighbours[i]:
            if abs(x[j] - x[i]) <= eps:
                total += x[j]
                count += 1
        new.append(total / count)
    return new


def hegselmann_krause(
    x: list[float], graph: Graph, eps: float, *, tolerance: float = 1e-3, max_rounds: int = 10_000
) -> list[float]:
    """Run synchronous Hegselmann–Krause from opinions x until it cannot change any more."""
    x = list(x)
    for _ in range(max_rounds):
        if spread(x, graph, eps, strict=False) < tolerance:
            break
        x = hk_step(x, graph, eps)
    return x
