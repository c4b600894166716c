"""Bounded confidence: socsim's Deffuant and Hegselmann-Krause against ndlib, same graphs and parameters.

Units, the same on both sides:
- Deffuant: pair updates per second, a pair update being one meeting of two neighbours drawn (whether
  or not they were close enough to move). socsim: pairs per step (from the run's log lines) x steps /
  the run's stepping time (manifest `wall_time_s`, recording and convergence checks included). ndlib:
  AlgorithmicBiasModel with gamma = 0 (sequential Deffuant with mu = 0.5: a random node, then a random
  neighbour), n meetings per iteration / iteration time.
- HK: agent updates per second (socsim: n per synchronous step; ndlib: n node evaluations per
  iteration). Speed only: ndlib's HKModel is not Hegselmann-Krause (it leaves the agent itself out of
  the average and writes back one node per iteration, ndlib issue #263), so it is never a reference
  for results.
One value dimension, positions uniform in [0, 1], epsilon 0.2, mu 0.5; socsim runs a fixed number of
steps (a tolerance too small to stop early). Graphs: complete (n = 1,000) and Watts-Strogatz
(n = 10,000, k = 6, p = 0.1, socsim's default k and p), built by networkx on both sides.

    python benchmarks/bench_bounded_confidence.py [--quick] [--repeats N] [--json FILE]
"""

from __future__ import annotations

import re

import procs
from figures import Figure, Reporter, Target, speedup

GROUP = "Bounded confidence vs ndlib"
EPSILON, MU, WS_K, WS_P = 0.2, 0.5, 6, 0.1
HK_NOTE = (
    "speed only: ndlib's HKModel is not Hegselmann-Krause (excludes the agent itself, writes back one "
    "node per iteration; ndlib issue #263)"
)


SCENARIO = {"deffuant": "deffuant", "hk": "hegselmann_krause"}


def overrides(model: str, graph: str, n: int, steps: int, dims: int = 1) -> list[str]:
    """The socsim side: scenario `deffuant` or `hegselmann_krause` (model "deffuant" or "hk")."""
    dimensions = "[" + ",".join(f"opinion{i}" for i in range(dims)) + "]"
    graph_args = (
        ["graph=complete"] if graph == "complete" else ["graph=watts_strogatz", f"graph.k={WS_K}", f"graph.p={WS_P}"]
    )
    return [
        f"scenario={SCENARIO[model]}", "scenario.initial=uniform",
        f"scenario.dimensions={dimensions}", f"scenario.epsilon={EPSILON}",
        *([f"scenario.mu={MU}"] if model == "deffuant" else []),
        f"scenario.max_steps={steps}", "scenario.tolerance=1e-12", *graph_args,
        f"population.size={n}", "seed=1", "run.log_every=1",
    ]  # fmt: skip


def workloads(quick: bool) -> list[dict]:
    """model, graph, n, socsim steps, ndlib iterations, target ratio (issue 16 item 2)."""
    return [
        {"model": "deffuant", "graph": "complete", "n": 1000, "steps": 50 if quick else 200,
         "iterations": 3 if quick else 10, "target": None},
        {"model": "deffuant", "graph": "watts_strogatz", "n": 10_000, "steps": 50 if quick else 200,
         "iterations": 2 if quick else 5, "target": 100.0},
        {"model": "hk", "graph": "watts_strogatz", "n": 10_000, "steps": 30 if quick else 100,
         "iterations": 1 if quick else 3, "target": 100.0},
    ]  # fmt: skip


PAIRS = re.compile(r"^step \d+: .*\bpairs=([0-9.eE+-]+)", re.MULTILINE)


def socsim_rate(work: dict, dims: int = 1) -> tuple[float | None, str]:
    """Updates per second of stepping, and a note (or the error)."""
    answer = procs.probe(overrides(work["model"], work["graph"], work["n"], work["steps"], dims))
    if "error" in answer:
        return None, f"failed: {answer['error']}"
    steps, seconds = answer["steps"], answer["wall_time_s"]
    if work["model"] == "hk":
        return work["n"] * steps / seconds, f"{steps} steps"
    pairs = [float(p) for p in PAIRS.findall(answer["stderr"])]
    if len(pairs) != steps:
        return None, f"failed: found {len(pairs)} 'pairs=' log lines for {steps} steps"
    return sum(pairs) / seconds, f"{steps} steps, {sum(pairs) / steps:,.0f} pairs per step"


def ndlib_rate(work: dict) -> float:
    args = [
        "--model", work["model"], "--graph", work["graph"], "--n", str(work["n"]), "--k", str(WS_K),
        "--p", str(WS_P), "--epsilon", str(EPSILON), "--iterations", str(work["iterations"]),
    ]  # fmt: skip
    answer, _ = procs.run_peer("ndlib_opinions.py", args)
    return answer["updates_per_s"]


def measure(work: dict, repeats: int, out: Reporter) -> None:
    have_peer = procs.peer_has("ndlib")
    ours, theirs, note = [], [], ""
    for _ in range(repeats):
        rate, note = socsim_rate(work)
        if rate is None:
            break
        ours.append(rate)
        if have_peer:
            theirs.append(ndlib_rate(work))
    unit = "agent updates/s" if work["model"] == "hk" else "pair updates/s"
    graph = "complete graph" if work["graph"] == "complete" else f"Watts-Strogatz k={WS_K} p={WS_P}"
    name = f"{'HK' if work['model'] == 'hk' else 'Deffuant'}, {graph}, n={work['n']:,}, 1 dimension"
    best_ours, best_theirs = procs.best(ours), procs.best(theirs)
    status = note if note.startswith("failed") else ""
    if work["model"] == "hk":
        note = f"{note}; {HK_NOTE}"
    peer_name = "ndlib HKModel" if work["model"] == "hk" else "ndlib AlgorithmicBias gamma=0"
    target = Target("ratio", ">=", work["target"], "issue 16 item 2") if work["target"] else None
    out.add(Figure(
        GROUP, name, best_ours, unit, peer=best_theirs, peer_name=peer_name if have_peer else "ndlib (not installed)",
        ratio=speedup(best_ours, best_theirs), target=target, note=f"{note}, best of {repeats}", status=status,
    ))  # fmt: skip


def measure_ten_dimensions(quick: bool, out: Reporter) -> None:
    """socsim alone: the default ten value dimensions (one meeting covers all ten)."""
    work = {"model": "deffuant", "graph": "watts_strogatz", "n": 10_000, "steps": 50 if quick else 200}
    rate, note = socsim_rate(work, dims=10)
    out.add(Figure(
        GROUP, "Deffuant, Watts-Strogatz, n=10,000, 10 dimensions (socsim only)", rate, "pair updates/s",
        note=note, status=note if note.startswith("failed") else "",
    ))  # fmt: skip


def main() -> None:
    args, out = procs.arguments(__doc__)
    if not procs.peer_has("ndlib"):
        print("ndlib is not installed in the peer environment: socsim's figures only (bash benchmarks/peers/setup.sh)")
    print(f"note: {HK_NOTE}")
    for work in workloads(args.quick):
        measure(work, procs.repeats_of(args), out)
    measure_ten_dimensions(args.quick, out)


if __name__ == "__main__":
    main()
