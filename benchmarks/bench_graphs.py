"""Random graphs: socsim's set-up of a sparse graph against networkx's generator, same seed, same edges.

socsim's `build_graph` replays networkx's draws with numpy (agents/generators.py, agents/block_model.py,
agents/preferential_attachment.py) and builds the CSR arrays a run uses; the peer is what a run did
before: networkx's generator, its edges as an array and the same CSR build. Figures are edges per
second of the whole graph set-up, best of the repeats (interleaved); each workload first checks that
both sides give the same edges (issue 16 items 1 and 6: no Python loop over agents or edges in set-up).

    python benchmarks/bench_graphs.py [--quick] [--repeats N] [--json FILE]
"""

from __future__ import annotations

import time
from collections.abc import Callable

import networkx as nx
import numpy as np
import procs
from figures import Figure, Reporter, speedup

from agents.graph import (
    BarabasiAlbert,
    ErdosRenyi,
    GraphConfig,
    SocialGraph,
    StochasticBlock,
    WattsStrogatz,
    build_graph,
)

GROUP = "Graphs vs networkx"
SEED = 7


def workloads(quick: bool) -> list[tuple[str, int, GraphConfig, Callable[[int], nx.Graph]]]:
    """(label, agents, socsim's graph config, networkx's generator of the same graph)."""
    n = 100_000 if quick else 1_000_000
    degree = 6 / (n - 1)
    blocks = StochasticBlock()  # the default: 2 blocks, p_in 0.2, p_out 0.01 (one draw per pair inside a block)
    block_sizes = [n // 200, n // 200]
    block_probs = [[blocks.p_in, blocks.p_out], [blocks.p_out, blocks.p_in]]
    return [
        ("Watts-Strogatz k=6 p=0.1", n, WattsStrogatz(k=6, p=0.1),
         lambda s: nx.watts_strogatz_graph(n, 6, 0.1, seed=s)),
        ("Watts-Strogatz k=10 p=1 (every edge rewired)", n // 10, WattsStrogatz(k=10, p=1.0),
         lambda s: nx.watts_strogatz_graph(n // 10, 10, 1.0, seed=s)),
        ("Erdős–Rényi, mean degree 6", n, ErdosRenyi(p=degree), lambda s: nx.fast_gnp_random_graph(n, degree, seed=s)),
        ("Barabási–Albert m=3", n, BarabasiAlbert(m=3), lambda s: nx.barabasi_albert_graph(n, 3, seed=s)),
        ("stochastic block model, defaults", n // 100, blocks,
         lambda s: nx.stochastic_block_model(block_sizes, block_probs, seed=s)),
    ]  # fmt: skip


def through_networkx(n: int, generate: Callable[[int], nx.Graph]) -> SocialGraph:
    edges = np.array(list(generate(SEED).edges()), dtype=np.int64).reshape(-1, 2)
    return SocialGraph.from_edges(n, edges)


def timed(build: Callable[[], SocialGraph]) -> tuple[float, SocialGraph]:
    start = time.perf_counter()
    graph = build()
    return time.perf_counter() - start, graph


def measure(label: str, n: int, config: GraphConfig, generate: Callable, repeats: int, out: Reporter) -> None:
    ours, theirs = [], []
    same = True
    for _ in range(repeats):
        seconds, graph = timed(lambda: build_graph(config, n, SEED))
        ours.append(len(graph.edges) / seconds)
        peer_seconds, reference = timed(lambda: through_networkx(n, generate))
        theirs.append(len(reference.edges) / peer_seconds)
        same = same and np.array_equal(graph.edges, reference.edges)
        edges = len(graph.edges)
        del graph, reference
    best, peer = procs.best(ours), procs.best(theirs)
    out.add(Figure(
        GROUP, f"{label}, {n:,} agents: set-up", best, "edges/s", peer=peer, peer_name=f"networkx {nx.__version__}",
        ratio=speedup(best, peer), status="" if same else "failed: the edges differ from networkx's",
        note=f"{edges:,} edges, the same as networkx's; generator and CSR arrays; best of {repeats}"
        f" ({edges / best:.2f} s against {edges / peer:.2f} s)",
    ))  # fmt: skip


def main() -> None:
    args, out = procs.arguments(__doc__)
    for label, n, config, generate in workloads(args.quick):
        measure(label, n, config, generate, procs.repeats_of(args), out)


if __name__ == "__main__":
    main()
