"""Do two checkouts of socsim record the same runs? Runs every scenario in a few configurations with two
Python interpreters (each a venv with socsim installed from its checkout: e.g. main's and a branch's)
and compares what they wrote: every table (all parts, in order), agents.parquet, graph.parquet, the
number of parts (unless `--parts-may-differ`), and the manifest's totals and outcome.

    python benchmarks/compare_records.py --base /path/main/.venv/bin/python --other .venv/bin/python

A configuration marked `changes` is expected to differ (a deliberate change, e.g. a graph from a new
generator); it is reported, not failed. Sparse graphs elsewhere come from one edge-list file both sides
read, so the rest of a run is compared on the same graph. Exit status 1 when an unmarked one differs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

SCRIPTED_DEBATE = "population.mix={bounded_confidence:0.75,stubborn:0.25}"


def configs(edges: Path) -> list[tuple[str, list[str], str]]:
    """(name, overrides, expected: "same" or why it changes)."""
    sparse = ["graph=edgelist", f"graph.path={edges}"]
    ipd_all = (
        "population.mix={tit_for_tat:3,always_defect:3,grim_trigger:3,win_stay_lose_shift:3,random:3,"
        "tit_for_two_tats:3,suspicious_tit_for_tat:3,alternate:3,defect_once:3,always_cooperate:3}"
    )
    return [
        ("ipd default", ["scenario=ipd"], "same"),
        ("ipd 30 agents x 60 rounds, every strategy",
         ["scenario=ipd", "population.size=30", ipd_all, "scenario.rounds=60"], "same"),
        ("ipd noise 0.1, BoS", ["scenario=ipd", "scenario.noise=0.1", "scenario.game=bos", "population.size=24"],
         "same"),
        ("ipd predict variant, per-agent order", ["scenario=ipd", "scenario.prompt_variant=predict",
                                                  "scenario.option_order=per_agent", "population.size=16"], "same"),
        ("ipd matches_per_agent=2, sparse graph",
         ["scenario=ipd", "population.size=40", "scenario.matches_per_agent=2", *sparse], "same"),
        ("ipd matches_per_agent=3, complete graph", ["scenario=ipd", "population.size=30",
                                                     "scenario.matches_per_agent=3"],
         "same"),
        ("ipd on Watts-Strogatz", ["scenario=ipd", "population.size=40", "graph=watts_strogatz"], "same"),
        ("ipd on Watts-Strogatz, 12,000 agents, 1 round",  # large enough for the array replay of the rewiring
         ["scenario=ipd", "population.size=12000", "graph=watts_strogatz", "scenario.rounds=1"], "same"),
        ("ipd on Erdős–Rényi", ["scenario=ipd", "population.size=40", "graph=erdos_renyi", "graph.p=0.2"], "same"),
        ("ipd on a stochastic block model, blocks out of numerical order",  # set(range(300, 600)) starts at 512
         ["scenario=ipd", "population.size=600", "graph=stochastic_block", "scenario.rounds=1"], "same"),
        ("ipd on a stochastic block model, 5 blocks", ["scenario=ipd", "population.size=40", "graph=stochastic_block",
                                                       "graph.blocks=5", "graph.p_in=0.5", "graph.p_out=0.1"], "same"),
        ("ipd on Barabási–Albert", ["scenario=ipd", "population.size=40", "graph=barabasi_albert"], "same"),
        ("ipd on Barabási–Albert, 60,000 agents, 1 round",  # large enough for the window replay
         ["scenario=ipd", "population.size=60000", "graph=barabasi_albert", "scenario.rounds=1"], "same"),
        ("donor game default", ["scenario=donor_game"], "same"),
        ("donor game 40 agents, sparse graph", ["scenario=donor_game", "scenario.agents_per_generation=null",
                                                 "population.size=40", "scenario.generations=3", *sparse], "same"),
        ("donor game punishment, global reputation, errors",
         ["scenario=donor_game", "scenario.punishment=true", "scenario.reputation=global",
          "scenario.execution_error=0.1", "scenario.assessment_error=0.05", "scenario.continuation=0.9",
          "population.mix={always_defect:3,fixed_fraction:3,image_scoring:3,standing_punisher:3}"], "same"),
        ("donor game notebook pairing", ["scenario=donor_game", "scenario.pairing=notebook"], "same"),
        ("deffuant default", ["scenario=deffuant", "scenario.max_steps=60"], "same"),
        ("deffuant sparse, interactions, stubborn", ["scenario=deffuant", "population.size=40", *sparse,
                                                      "scenario.record_interactions=true", "scenario.max_steps=30",
                                                      "population.mix={bounded_confidence:0.8,stubborn:0.2}"], "same"),
        ("deffuant edge pairing, uniform, 1 dimension", ["scenario=deffuant", "population.size=40", *sparse,
                                                         "scenario.pairing=edge", "scenario.initial=uniform",
                                                         "scenario.dimensions=[opinion]", "scenario.epsilon=0.3",
                                                         "scenario.tolerance=0.01"], "same"),
        ("deffuant node pairing, epsilon from a trait", ["scenario=deffuant", "population.size=40", *sparse,
                                                         "scenario.pairing=node", "scenario.max_steps=50",
                                                         "scenario.epsilon_trait=big5_openness"], "same"),
        ("hegselmann_krause default", ["scenario=hegselmann_krause"], "same"),
        ("hegselmann_krause sparse, interactions", ["scenario=hegselmann_krause", "population.size=40", *sparse,
                                                     "scenario.record_interactions=true",
                                                     "scenario.max_steps=20"], "same"),
        ("value_debate scripted arguers", ["scenario=value_debate", "population.size=12", SCRIPTED_DEBATE,
                                           "scenario.record_interactions=true"], "same"),
        ("value_debate scripted, sparse, likert", ["scenario=value_debate", "population.size=40", *sparse,
                                                   SCRIPTED_DEBATE, "scenario.record_interactions=true",
                                                   "scenario.llm_answer=likert", "scenario.max_steps=8"], "same"),
    ]  # fmt: skip


def run(python: str, overrides: list[str], run_dir: Path, seed: int, shards: int) -> str | None:
    argv = [python, "-m", "sim", *overrides, f"seed={seed}", f"run.dir={run_dir}", "run.progress=false",
            "run.log_every=0", "run.flush_rows=700", f"run.shards={shards}"]  # fmt: skip
    # from a neutral directory: `-m sim` must import the interpreter's own checkout, not the current one
    done = subprocess.run(argv, capture_output=True, text=True, start_new_session=True, timeout=1800,
                          cwd=run_dir.parent)  # fmt: skip
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    return None


def tables(run_dir: Path, count_parts: bool = True) -> dict[str, pl.DataFrame]:
    out = {}
    for folder in sorted(p for p in run_dir.iterdir() if p.is_dir() and list(p.glob("part-*.parquet"))):
        parts = sorted(folder.glob("part-*.parquet"))
        out[folder.name] = pl.concat([pl.read_parquet(p) for p in parts], how="vertical")
        if count_parts:
            out[folder.name + " parts"] = pl.DataFrame({"parts": [len(parts)]})
    for name in ("agents.parquet", "graph.parquet"):
        out[name] = pl.read_parquet(run_dir / name)
    return out


def differences(a: Path, b: Path, count_parts: bool = True) -> list[str]:
    found = []
    ta, tb = tables(a, count_parts), tables(b, count_parts)
    if ta.keys() != tb.keys():
        found.append(f"tables {sorted(ta)} vs {sorted(tb)}")
    for name in sorted(set(ta) & set(tb)):
        x, y = ta[name], tb[name]
        if name.startswith("interactions"):  # how long an answer took is no record of the science
            x, y = x.drop("latency_ms", strict=False), y.drop("latency_ms", strict=False)
        if x.schema != y.schema:
            found.append(f"{name}: schema {x.schema} vs {y.schema}")
        elif not x.equals(y):
            found.append(f"{name}: {x.height} vs {y.height} rows, values differ")
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    for key in ("steps", "decisions", "rows", "llm"):
        if ma["totals"].get(key) != mb["totals"].get(key):
            found.append(f"totals.{key}: {ma['totals'].get(key)} vs {mb['totals'].get(key)}")
    if ma.get("outcome") != mb.get("outcome"):
        found.append(f"outcome: {ma.get('outcome')} vs {mb.get('outcome')}")
    return found


def ring_edges(path: Path, n: int = 40, seed: int = 5) -> None:
    """A small-world edge list (ring of 4 neighbours with random chords), the same file for both sides."""
    rng = np.random.default_rng(seed)
    rows = [(i, (i + d) % n) for i in range(n) for d in (1, 2)]
    rows += [tuple(rng.choice(n, 2, replace=False)) for _ in range(n // 4)]
    path.write_text("\n".join(f"{a} {b}" for a, b in rows) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="python of the reference checkout's venv")
    parser.add_argument("--other", required=True, help="python of the checkout under test")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--shards", type=int, nargs="+", default=[0], help="run.shards values (0: in-process)")
    parser.add_argument("--only", nargs="*", help="configurations whose name contains one of these words")
    parser.add_argument("--parts-may-differ", action="store_true",
                        help="compare the rows only, not how many parts hold them (a change of how rows are split "
                        "into files)")  # fmt: skip
    args = parser.parse_args()
    args.base, args.other = (str(Path(p).absolute()) for p in (args.base, args.other))
    unexpected = 0
    with tempfile.TemporaryDirectory(prefix="socsim-compare-") as tmp:
        edges = Path(tmp) / "edges.txt"
        ring_edges(edges)
        for name, overrides, expected in configs(edges):
            if args.only and not any(word in name for word in args.only):
                continue
            for seed, shards in itertools.product(args.seeds, args.shards):
                dirs = [Path(tmp) / f"{side}-{abs(hash(name))}-{seed}-{shards}" for side in ("base", "other")]
                sides = zip((args.base, args.other), dirs, strict=True)
                errors = [run(python, overrides, d, seed, shards) for python, d in sides]
                if any(errors):
                    verdict = f"FAILED TO RUN: base: {errors[0]} / other: {errors[1]}"
                    unexpected += errors[0] != errors[1]
                else:
                    found = differences(*dirs, count_parts=not args.parts_may_differ)
                    if not found:
                        verdict = "same" if expected == "same" else f"same (expected a change: {expected})"
                    elif expected == "same":
                        verdict, unexpected = "DIFFERENT: " + "; ".join(found), unexpected + 1
                    else:
                        verdict = f"differs as expected ({expected}): " + "; ".join(found)[:200]
                print(f"{name} [seed {seed}, {shards} shards]: {verdict}", flush=True)
    print(f"\n{unexpected} unexpected difference(s)")
    sys.exit(1 if unexpected else 0)


if __name__ == "__main__":
    main()
