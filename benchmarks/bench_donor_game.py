"""One round of the scripted donor game for 1,000,000 agents (the five scripted strategies mixed),
timing each part: pairing + observations (plan), the strategies (decide), and payoffs, reputations
and the round's table rows (resolve); then a last round with a generation's end (selection,
inheritance, the strategies table, a new game).

The scenario's own functions are called directly, on an implicit complete graph (no edges stored:
pairing on a complete graph is a schedule). `--graph ring` times the sparse-graph pairing.

    /work/venv/bin/python benchmarks/bench_donor_game.py [--agents 1000000] [--graph complete|ring]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl

from agents.decisions import Decisions
from agents.graph import SocialGraph
from agents.population import Population
from scenarios.donor_game import DonorGame, DonorGameConfig


def ring(n: int, k: int = 4) -> SocialGraph:
    """Each agent linked to the k/2 nearest on either side (a Watts-Strogatz lattice without rewiring)."""
    i = np.arange(n)
    edges = np.concatenate([np.stack([i, (i + d) % n], axis=1) for d in range(1, k // 2 + 1)])
    return SocialGraph.from_edges(n, edges)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1_000_000)
    parser.add_argument("--graph", choices=["complete", "ring"], default="complete")
    args = parser.parse_args()
    n = args.agents
    scenario = DonorGame(DonorGameConfig(agents_per_generation=None, rounds=2, generations=1))
    universe = (*sorted(scenario.strategies()), "llm")
    rng = np.random.default_rng(1)
    codes = rng.integers(0, len(universe) - 1, n).astype(np.int16)  # the five scripted strategies
    population = Population(pl.DataFrame({"id": np.arange(n)}), universe, codes)
    graph = ring(n) if args.graph == "ring" else SocialGraph.complete_graph(n)  # implicit: no edges stored

    t0 = time.perf_counter()
    scenario.bind(population, graph)
    world = scenario.init(rng)
    print(f"donor game, {n:,} agents, {args.graph} graph (init {time.perf_counter() - t0:.3f} s)")
    policies = scenario.strategies()
    for label in ("round 1", "round 2 + generation end"):
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        (batch,) = scenario.plan(world, 0, rng)
        timings["plan (pairing, observations)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        answer = Decisions.empty(batch.spec, len(batch))
        order = np.argsort(batch.policies, kind="stable")
        found, starts = np.unique(batch.policies[order], return_index=True)
        for code, index in zip(found, np.split(order, starts[1:]), strict=True):
            answer.put(index, Decisions.scripted(policies[universe[code]].decide(batch.take(index))))
        timings["decide (five strategies)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = scenario.resolve(world, 0, [batch], [answer], rng)
        world = result.world
        timings["resolve (payoffs, reputations, rows)"] = time.perf_counter() - t0
        total = sum(timings.values())
        rows = {name: table.height for name, table in result.tables.items()}
        rate = len(batch) / total
        print(f"{label}: {len(batch):,} donations in {total:.3f} s ({rate:,.0f} donations/s); rows {rows}")
        for name, seconds in timings.items():
            print(f"  {name:<40} {seconds:8.3f} s")


if __name__ == "__main__":
    main()
