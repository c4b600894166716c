"""ndlib's side of the bounded-confidence benchmark (runs in the peer environment, never socsim's).

- `--model deffuant`: ndlib's AlgorithmicBiasModel with gamma = 0, which is sequential Deffuant with
  mu = 0.5 on one dimension: each iteration draws n times a random node and a random neighbour and
  averages them when closer than epsilon. Unit: pair updates (meetings drawn) per second.
- `--model hk`: ndlib's HKModel, timed for speed only. It is not Hegselmann-Krause: an iteration
  evaluates n random nodes against their neighbours (the agent itself excluded) but writes back only
  the last one (ndlib issue #263), so it must never serve as a reference for HK results. Unit: node
  evaluations per second (n per iteration).

The first iteration of an ndlib model only reports the initial state, so it is run and not timed.
Prints one JSON line.

    python ndlib_opinions.py --model deffuant --graph watts_strogatz --n 10000 --iterations 3
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def build_graph(kind: str, n: int, k: int, p: float, seed: int):
    import networkx as nx

    if kind == "complete":
        return nx.complete_graph(n)
    return nx.watts_strogatz_graph(n, k, p, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["deffuant", "hk"], required=True)
    parser.add_argument("--graph", choices=["complete", "watts_strogatz"], required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--k", type=int, default=6)
    parser.add_argument("--p", type=float, default=0.1)
    parser.add_argument("--epsilon", type=float, default=0.2)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    import ndlib.models.ModelConfig as mc
    import numpy as np
    from ndlib.models.opinions import AlgorithmicBiasModel, HKModel

    np.random.seed(args.seed)
    started = time.perf_counter()
    graph = build_graph(args.graph, args.n, args.k, args.p, args.seed)
    graph_s = time.perf_counter() - started
    config = mc.Configuration()
    config.add_model_parameter("epsilon", args.epsilon)
    if args.model == "deffuant":
        config.add_model_parameter("gamma", 0)
        model = AlgorithmicBiasModel(graph, seed=args.seed)
    else:
        model = HKModel(graph)
    started = time.perf_counter()
    model.set_initial_status(config)
    model.iteration(node_status=False)  # iteration 0: the initial state, no dynamics
    init_s = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(args.iterations):
        model.iteration(node_status=False)
    iterate_s = time.perf_counter() - started
    updates = args.n * args.iterations
    answer = {
        "graph_s": graph_s,
        "init_s": init_s,
        "iterate_s": iterate_s,
        "iterations": args.iterations,
        "updates": updates,
        "updates_per_s": updates / iterate_s,
        "edges": graph.number_of_edges(),
    }
    print(json.dumps(answer), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
