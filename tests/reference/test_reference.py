"""The reference implementations themselves, on cases small enough to work out by hand.

They are the yardstick in test_engine_agrees.py, so they get their own checks: single meetings and
updates, the pairing rules' draws, the cluster rules, the graphs and the two-sample test.
"""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from tests.reference.bounded_confidence import (
    deffuant,
    deffuant_meet,
    hegselmann_krause,
    hk_step,
    matching_round,
    random_meeting,
    uniform_opinions,
)
from tests.reference.clusters import graph_clusters, value_clusters
from tests.reference.graphs import complete_graph, from_edges, watts_strogatz
from tests.reference.two_sample import permutation_p_value


class ScriptedDraws(random.Random):
    """A generator whose randrange returns a given sequence: to follow a pairing rule draw by draw."""

    def __init__(self, draws: list[int]) -> None:
        super().__init__(0)
        self.draws = list(draws)

    def randrange(self, *args, **kwargs) -> int:  # type: ignore[no-untyped-def, override]
        return self.draws.pop(0)


# --- one meeting, one update ---------------------------------------------------------------------------


def test_deffuant_meeting() -> None:
    """0.25 and 0.375 (gap 0.125 < 0.2) meet at mu 0.5: both go to 0.3125. At mu 0.25: 0.28125, 0.34375."""
    x = [0.25, 0.375]
    deffuant_meet(x, 0, 1, eps=0.2, mu=0.5)
    assert x == [0.3125, 0.3125]
    x = [0.25, 0.375]
    deffuant_meet(x, 1, 0, eps=0.2, mu=0.25)
    assert x == [0.28125, 0.34375]


def test_deffuant_bound_is_strict() -> None:
    """Deffuant et al.: they interact only if the gap is *less than* the threshold."""
    x = [0.25, 0.5]
    deffuant_meet(x, 0, 1, eps=0.25, mu=0.5)
    assert x == [0.25, 0.5]


def test_hk_step_hears_within_eps_inclusive_and_only_neighbours() -> None:
    """Path 0-1-2 at 0, 0.25, 0.5 with eps 0.25 (bounds inclusive): 0 averages {0, 0.25} = 0.125, 1 averages
    all three = 0.25, 2 averages {0.25, 0.5} = 0.375. On the path 1-0-2, agent 1's only neighbour is 0:
    (0.25 + 0)/2 = 0.125; agent 2's only neighbour, 0, is 0.5 away: it stays."""
    path = from_edges(3, [(0, 1), (1, 2)])
    assert hk_step([0.0, 0.25, 0.5], path, 0.25) == [0.125, 0.25, 0.375]
    other = from_edges(3, [(1, 0), (0, 2)])
    assert hk_step([0.0, 0.25, 0.5], other, 0.25) == [0.125, 0.125, 0.5]


def test_hk_with_everyone_in_confidence_reaches_the_mean_in_one_step() -> None:
    rng = random.Random(4)
    x = uniform_opinions(30, rng)
    final = hegselmann_krause(x, complete_graph(30), eps=1.0)
    assert final == pytest.approx([sum(x) / 30] * 30)


def test_deffuant_runs_to_consensus_or_stays_put() -> None:
    rng = random.Random(5)
    x = uniform_opinions(40, rng)
    everyone = deffuant(x, complete_graph(40), eps=1.0, mu=0.5, pairing="matching", rng=rng)
    assert value_clusters(everyone) == 1 and max(everyone) - min(everyone) < 1e-3
    nobody = deffuant([0.0, 0.5, 1.0], complete_graph(3), eps=0.1, mu=0.5, pairing="edge", rng=rng)
    assert nobody == [0.0, 0.5, 1.0]


def test_unknown_pairing() -> None:
    with pytest.raises(ValueError, match="pairing must be one of"):
        deffuant([0.0, 1.0], complete_graph(2), 0.5, 0.5, "random", random.Random(0))  # type: ignore[arg-type]


# --- pairing rules --------------------------------------------------------------------------------------


def test_matching_on_a_complete_graph_is_perfect() -> None:
    rng = random.Random(6)
    for n in (10, 11):
        pairs = matching_round(complete_graph(n), rng)
        met = [i for pair in pairs for i in pair]
        assert len(pairs) == n // 2 and len(set(met)) == len(met) == 2 * (n // 2)


def test_matching_keeps_first_claims() -> None:
    """Path 0-1-2-3, edges indexed (0,1)=0, (1,2)=1, (2,3)=2; n = 4 draws per round.

    Draws 1, 0, 2, 2: (1,2) is kept; (0,1) and (2,3) touch an agent already drawn, so they are not.
    Draws 0, 2, 1, 0: (0,1) and (2,3) are kept; (1,2) touches both, (0,1) again touches 0."""
    path = from_edges(4, [(0, 1), (1, 2), (2, 3)])
    assert matching_round(path, ScriptedDraws([1, 0, 2, 2])) == [(1, 2)]
    assert matching_round(path, ScriptedDraws([0, 2, 1, 0])) == [(0, 1), (2, 3)]


def test_a_dropped_draw_still_claims_its_agents() -> None:
    """Draws (1,2), (2,3), (3,4)... on the path 0-...-4: (2,3) is dropped because 2 was met, and it still
    claims 3, so (3,4) is dropped too (socsim: 'the first draw touching both of its endpoints')."""
    path = from_edges(5, [(0, 1), (1, 2), (2, 3), (3, 4)])
    assert matching_round(path, ScriptedDraws([1, 2, 3, 1, 1])) == [(1, 2)]


# A star with a tail: 0 joined to 1, 2, 3, and 3 joined to 4 (degrees 3, 1, 1, 2, 1).
TAILED_STAR = from_edges(5, [(0, 1), (0, 2), (0, 3), (3, 4)])
# Node rule: P(u, v meet) = (1/n)(1/d_u + 1/d_v) -> (0,1), (0,2): 4/15; (0,3): 1/6; (3,4): 3/10.
NODE_RULE = {(0, 1): 4 / 15, (0, 2): 4 / 15, (0, 3): 1 / 6, (3, 4): 3 / 10}


@pytest.mark.parametrize(
    ("pairing", "expected"), [("edge", dict.fromkeys(TAILED_STAR.edges, 0.25)), ("node", NODE_RULE)]
)
def test_random_meetings_follow_their_rule(pairing: str, expected: dict[tuple[int, int], float]) -> None:
    """40,000 meetings: each edge's frequency within 4 standard errors (at most 0.0092) of its probability."""
    rng = random.Random(7)
    draws = 40_000
    seen = Counter(tuple(sorted(random_meeting(TAILED_STAR, pairing, rng))) for _ in range(draws))  # type: ignore[arg-type]
    for edge, probability in expected.items():
        assert seen[edge] / draws == pytest.approx(
            probability, abs=4 * (probability * (1 - probability) / draws) ** 0.5
        )


def test_node_rule_on_an_isolated_agent() -> None:
    lonely = from_edges(3, [(0, 1)])
    assert random_meeting(lonely, "node", ScriptedDraws([2])) is None


# --- clusters -----------------------------------------------------------------------------------------


def test_value_clusters() -> None:
    """200 agents: 150 at 0.2, 49 at 0.8, 1 at 0.5 -> the lone agent is 0.5% < 1%: two clusters."""
    values = [0.2] * 150 + [0.8] * 49 + [0.5]
    assert value_clusters(values) == 2
    assert value_clusters(values, min_share=0.0) == 3
    assert value_clusters([0.1, 0.105, 0.11, 0.5]) == 2  # chained within 0.01


def test_graph_clusters_see_the_topology() -> None:
    """Ring of 6 at 0.3, 0.3, 0.7, 0.3, 0.3, 0.7: the value rule sees 2 groups; on the ring the 0.3s form two
    arcs cut apart by the 0.7s (0-1 and 3-4), and the two 0.7s are not neighbours: 4 components."""
    ring = from_edges(6, [(i, (i + 1) % 6) for i in range(6)])
    x = [0.3, 0.3, 0.7, 0.3, 0.3, 0.7]
    assert value_clusters(x) == 2
    assert graph_clusters(x, ring) == 4


def test_both_rules_agree_on_a_complete_graph() -> None:
    rng = random.Random(8)
    graph = complete_graph(60)
    for _ in range(20):
        x = [round(rng.random() * 40) / 40 + rng.random() * 0.004 for _ in range(60)]  # clumps near k/40
        assert graph_clusters(x, graph) == value_clusters(x)


# --- graphs -------------------------------------------------------------------------------------------


def test_watts_strogatz_lattice_and_rewiring() -> None:
    lattice = watts_strogatz(20, 4, 0.0, random.Random(0))
    assert len(lattice.edges) == 40 and all(len(nb) == 4 for nb in lattice.neighbours)
    assert (0, 1) in lattice.edges and (0, 2) in lattice.edges and (0, 3) not in lattice.edges
    for p in (0.1, 1.0):
        graph = watts_strogatz(200, 6, p, random.Random(1))
        assert len(graph.edges) == 600  # rewiring moves edges, never adds or removes one
        assert all(u < v for u, v in graph.edges) and len(set(graph.edges)) == 600
    rewired = len(
        set(watts_strogatz(200, 6, 0.1, random.Random(2)).edges)
        - set(watts_strogatz(200, 6, 0.0, random.Random(2)).edges)
    )
    assert 30 <= rewired <= 90  # about p · 600 = 60 edges moved


# --- the two-sample test ------------------------------------------------------------------------------


def test_permutation_test_extremes() -> None:
    assert permutation_p_value([1, 2, 3] * 10, [3, 2, 1] * 10) == 1.0
    assert permutation_p_value([0] * 20, [1] * 20, permutations=999) == 1 / 1000


def test_permutation_test_holds_its_level() -> None:
    """300 pairs of samples from one distribution (Poisson counts, 30 each): rejections at 5% stay near or
    below 5% (ties make the permutation test slightly conservative)."""
    rng = np.random.default_rng(9)
    p = [permutation_p_value(rng.poisson(3, 30), rng.poisson(3, 30), permutations=999, seed=k) for k in range(300)]
    assert np.mean(np.array(p) <= 0.05) <= 0.08
