"""IPD: socsim against the Axelrod library, same players, payoffs and turns, side by side.

Workloads (issue 16 item 1): a round robin of 1,000 agents x 10 rounds (499,500 matches) and 30 agents
x 1,000 rounds. Agent i plays socsim's strategy s_i and Axelrod's player i the counterpart of s_i
(names mapped in peers/axelrod_ipd.py); every pair i < j plays one match; payoffs R=8, S=0, T=10, P=5;
both sides write every move (socsim to Parquet, Axelrod to its CSV). Figures are moves per second:
in-process (socsim's `run(config)` against Axelrod's Tournament set-up and play) and through the
command line (the whole process, imports included). Scores: every player's total over the matches
between two deterministic players must be identical on both sides; the check is printed.

    python benchmarks/bench_ipd.py [--quick] [--repeats N] [--json FILE]
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import procs
from figures import Figure, Reporter, Target, speedup
from peers.axelrod_ipd import AXELROD_NAMES, STOCHASTIC

GROUP = "IPD vs Axelrod"
STRATEGIES = list(AXELROD_NAMES)  # the socsim strategies that have an exact Axelrod counterpart


def overrides(agents: int, rounds: int) -> list[str]:
    """The socsim side of a workload (the one place to change when scenario names change)."""
    mix = "{" + ",".join(f"{name}:{1 / len(STRATEGIES):.12f}" for name in STRATEGIES) + "}"  # sums to 1 within 1e-6
    return [
        "scenario=ipd", f"scenario.rounds={rounds}", "graph=complete",
        f"population.size={agents}", f"population.mix={mix}", "seed=1",
    ]  # fmt: skip


def workloads(quick: bool) -> list[tuple[str, int, int, float | None]]:
    """(label, agents, rounds, target ratio in-process). Quick mode shrinks the round robin, and a
    target belongs to the issue's workload only."""
    return [
        ("round robin", 200, 10, None) if quick else ("round robin", 1000, 10, 100.0),
        ("long matches", 30, 1000, 10.0),
    ]


def socsim_scores(run_dir: Path) -> tuple[list[str], np.ndarray]:
    """Strategy of each agent, and each agent's total over deterministic-vs-deterministic matches."""
    agents = pl.read_parquet(run_dir / "agents.parquet", columns=["agent_id", "policy"]).sort("agent_id")
    stochastic = agents.select("agent_id", random=pl.col("policy").is_in(list(STOCHASTIC)))
    moves = pl.scan_parquet(run_dir / "interactions" / "*.parquet").select("actor_id", "target_id", "payoff_actor")
    totals = (
        moves.join(stochastic.lazy(), left_on="actor_id", right_on="agent_id")
        .join(stochastic.lazy(), left_on="target_id", right_on="agent_id", suffix="_target")
        .filter(~pl.col("random") & ~pl.col("random_target"))
        .group_by("actor_id")
        .agg(pl.col("payoff_actor").sum())
        .collect()
    )
    scores = np.zeros(agents.height)
    scores[totals["actor_id"].to_numpy()] = totals["payoff_actor"].to_numpy()
    return agents["policy"].to_list(), scores


def measure(label: str, agents: int, rounds: int, target: float | None, repeats: int, out: Reporter) -> None:
    config = overrides(agents, rounds)
    name = f"{agents:,} agents x {rounds:,} rounds ({label})"
    have_peer = procs.peer_has("axelrod")
    ours_in, ours_cli, peer_in, peer_cli = [], [], [], []
    moves = None
    with tempfile.TemporaryDirectory(prefix="bench-ipd-") as tmp:
        first = Path(tmp) / "probe"
        strategies_file = Path(tmp) / "strategies.json"
        peer_scores = None
        for repeat in range(repeats):
            answer = procs.probe(config, run_dir=first if repeat == 0 else None)
            if "error" in answer:
                out.add(Figure(GROUP, name, None, "moves/s", status=f"failed: {answer['error']}"))
                return
            moves = answer["rows"]["interactions"]
            ours_in.append(moves / answer["run_s"])
            done, manifest = procs.cli_run(config, Path(tmp) / f"cli{repeat}")
            if manifest.get("status") == "completed":
                ours_cli.append(moves / done.wall_s)
            if repeat == 0:
                policies, our_scores = socsim_scores(first)
                strategies_file.write_text(json.dumps(policies))
            if have_peer:
                args = ["--strategies", str(strategies_file), "--turns", str(rounds)]
                peer, finished = procs.run_peer("axelrod_ipd.py", args + (["--scores"] if repeat == 0 else []))
                peer_in.append(peer["moves"] / peer["total_s"])
                peer_cli.append(peer["moves"] / finished.wall_s)
                if repeat == 0:
                    peer_scores = np.array(peer["scores"])
                    version = peer["version"]
    peer_name = f"Axelrod {version}" if have_peer else "Axelrod (not installed)"
    best_in, best_cli = procs.best(ours_in), procs.best(ours_cli)
    best_peer_in, best_peer_cli = procs.best(peer_in), procs.best(peer_cli)
    note = f"{moves:,} moves, best of {repeats}"
    out.add(Figure(
        GROUP, f"{name}, in-process", best_in, "moves/s", peer=best_peer_in, peer_name=peer_name,
        ratio=speedup(best_in, best_peer_in), note=note,
        target=Target("ratio", ">=", target, "issue 16 item 1") if target else None,
    ))  # fmt: skip
    out.add(Figure(
        GROUP, f"{name}, command line", best_cli, "moves/s", peer=best_peer_cli, peer_name=peer_name,
        ratio=speedup(best_cli, best_peer_cli), note=note + "; whole process, imports included",
    ))  # fmt: skip
    writes = procs.probe(config, time_parts=True).get("part_writes")
    if writes:
        budget = (
            f"; {target:g}x Axelrod leaves {moves / (target * best_peer_in):.3f} s for the whole run"
            if (target and best_peer_in)
            else ""
        )
        out.add(Figure(
            GROUP, f"{name}: CPU encoding its records to Parquet, alone", writes["alone_cpu_s"], "s",
            note=f"{writes['rows']:,} rows in {writes['parts']} part(s), encoded again after one more run with nothing"
            f" else running (during the run, beside its steps: {writes['cpu_s']:.3f} s)" + budget,
        ))  # fmt: skip
    if peer_scores is not None:
        deterministic = int(sum(p not in STOCHASTIC for p in policies))
        mismatched = int(np.sum(peer_scores != our_scores))
        out.add(Figure(
            GROUP, f"{name}, scores differing from Axelrod's", mismatched, "players",
            target=Target("value", "<=", 0, "issue 16 item 1"),
            note=f"identical for {len(policies) - mismatched} of {len(policies)} players "
            f"({deterministic} deterministic; matches with a random player left out)",
        ))  # fmt: skip


def main() -> None:
    args, out = procs.arguments(__doc__)
    if not procs.peer_has("axelrod"):
        print("Axelrod is not installed in the peer environment: socsim's figures only "
              "(bash benchmarks/peers/setup.sh)")  # fmt: skip
    for label, agents, rounds, target in workloads(args.quick):
        measure(label, agents, rounds, target, procs.repeats_of(args), out)


if __name__ == "__main__":
    main()
