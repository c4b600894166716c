"""Bounded-confidence steps per second on large sparse graphs (the pure numpy dynamics, no recording).

A Deffuant step is `--matchings` random matchings (about n/4 disjoint pairs each on these graphs), as a
run takes it (nothing kept of the pairs) and recorded (every pair's before and after kept, as with
`scenario.record_interactions=true`); an HK step is one synchronous update of every agent. Each figure
also shows a full pass of the convergence check (the scenario checks incrementally and makes a full pass
now and then), and a 1,000-agent complete graph for scale.

    python benchmarks/bench_value_diffusion.py [--sizes 10000 100000] [--dims 1 10] [--matchings 10] [--degree 10]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import networkx as nx
import numpy as np

from agents.graph import SocialGraph
from scenarios import bounded_confidence as bc


def graphs(n: int, degree: int, seed: int) -> dict[str, SocialGraph]:
    ws = nx.watts_strogatz_graph(n, degree, 0.1, seed=seed)
    er = nx.fast_gnp_random_graph(n, degree / (n - 1), seed=seed)
    return {
        f"watts_strogatz(k={degree}, p=0.1)": SocialGraph.from_edges(n, np.array(ws.edges(), dtype=np.int64)),
        f"erdos_renyi(mean degree {degree})": SocialGraph.from_edges(n, np.array(er.edges(), dtype=np.int64)),
    }


def rate(step: Callable[[], object], budget_s: float) -> float:
    """Steps per second over at least 3 steps and about `budget_s` seconds."""
    step()  # warm-up
    count, started = 0, time.perf_counter()
    while count < 3 or time.perf_counter() - started < budget_s:
        step()
        count += 1
    return count / (time.perf_counter() - started)


def bench(name: str, graph: SocialGraph, dims: int, matchings: int, budget_s: float) -> None:
    rng = np.random.default_rng(0)
    eps = np.full(graph.n, 0.2)
    x = rng.random((graph.n, dims))
    # recorded: what each pair did is kept (scenario.record_interactions=true); the default keeps nothing
    recorded = rate(lambda: bc.deffuant_step(x, graph, eps, 0.5, rng, matchings), budget_s)
    deffuant = rate(lambda: bc.deffuant_advance(x, bc.meetings(graph, rng, matchings, "matching"), eps, 0.5), budget_s)
    pairs = np.mean([len(bc.random_matching(graph, rng)[0]) for _ in range(5)])
    y = rng.random((graph.n, dims))
    hk = rate(lambda: bc.hk_step(y, graph, eps), budget_s)
    check = rate(lambda: bc.interacting_spread(y, graph, eps, strict=False), budget_s)
    print(
        f"{name:<34} n={graph.n:>9,} edges={len(graph.edges):>9,} dims={dims:>2} | "
        f"deffuant {deffuant:8.2f} steps/s ({deffuant * matchings * pairs / 1e6:6.2f} M pair updates/s; "
        f"recorded {recorded:8.2f}) | hk {hk:7.2f} steps/s | convergence check {check:7.2f}/s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--degree", type=int, default=10)
    parser.add_argument("--matchings", type=int, default=10, help="Deffuant matchings per step (scenario default)")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per measurement")
    args = parser.parse_args()
    complete = SocialGraph.from_edges(1000, np.stack(np.triu_indices(1000, 1), axis=1))
    for dims in args.dims:
        bench("complete", complete, dims, args.matchings, args.budget)
    for n in args.sizes:
        built = time.perf_counter()
        found = graphs(n, args.degree, seed=1)
        print(f"(built {n:,}-node graphs with networkx in {time.perf_counter() - built:.1f} s)", flush=True)
        for name, graph in found.items():
            for dims in args.dims:
                bench(name, graph, dims, args.matchings, args.budget)


if __name__ == "__main__":
    main()
