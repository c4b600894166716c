"""IPD moves per second through the whole engine: 1,000 agents round robin (499,500 matches x 10
rounds = 9,990,000 moves), in-process and with Ray shards, Parquet writing included.

    python benchmarks/bench_ipd.py [--agents 1000] [--shards 0 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from sim.config import compose
from sim.run import run


def bench(agents: int, shards: int, rounds: int, workdir: Path) -> dict[str, float]:
    mix = "{tit_for_tat:0.2,always_defect:0.2,grim_trigger:0.2,win_stay_lose_shift:0.2,random:0.2}"
    config = compose([
        "scenario=ipd", f"population.size={agents}", f"population.mix={mix}", f"scenario.rounds={rounds}",
        f"run.shards={shards}", "seed=1", f"run.dir={workdir / f'shards{shards}'}", "run.progress=false",
        "run.log_every=0",
    ])  # fmt: skip
    started = time.perf_counter()
    run_dir = run(config)
    elapsed = time.perf_counter() - started
    manifest = json.loads((run_dir / "manifest.json").read_text())
    moves = manifest["totals"]["rows"]["interactions"]
    size = sum(p.stat().st_size for p in (run_dir / "interactions").iterdir())
    return {
        "shards": shards,
        "moves": moves,
        "seconds": elapsed,
        "moves_per_s": moves / elapsed,
        "parquet_mb": size / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--shards", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for shards in args.shards:
            r = bench(args.agents, shards, args.rounds, Path(tmp))
            print(
                f"ipd {args.agents} agents round robin, shards={r['shards']}: "
                f"{r['moves']:,} moves in {r['seconds']:.2f} s "
                f"= {r['moves_per_s']:,.0f} moves/s (Parquet {r['parquet_mb']:.1f} MB, incl. start-up)"
            )


if __name__ == "__main__":
    main()
