"""LLM decisions per second through a whole socsim run against the zero-latency fake server, in-process
and with 1, 2 and 4 Ray shards (one client per shard), what the transcripts table costs, and the
client's own figures from
bench_llm.py (run as a separate process; it belongs to the LLM client's work).

The server (`python -m sim.backends.fake_server`) runs in its own process and answers at once, so the
figures are what socsim's side costs. Decisions/s = the run's LLM calls / its stepping time (manifest
`wall_time_s`, Ray start-up left out); CPU per decision is the in-process run's CPU time (set-up
included) / its calls. The response cache is off, so every decision is an HTTP request.

    python benchmarks/bench_llm_scaling.py [--quick] [--repeats N] [--json FILE] [--shards 0 1 2 4]
"""

from __future__ import annotations

import argparse
import re

import procs
from figures import Figure, Reporter, Target

GROUP = "LLM decisions"
AGENTS = 46  # 1,035 matches: 2,070 decisions per round


def overrides(base_url: str, rounds: int, shards: int, transcripts: bool = True) -> list[str]:
    """The socsim side (the one place to change when scenario names change)."""
    return [
        "scenario=ipd", f"scenario.rounds={rounds}", f"population.size={AGENTS}", "population.mix={llm:1.0}",
        "backend=vllm", f"backend.base_url={base_url}", "backend.model=fake", "backend.cache=false",
        f"run.shards={shards}", "seed=1", f"run.record_transcripts={str(transcripts).lower()}",
    ]  # fmt: skip


def scaling(quick: bool, repeats: int, shard_counts: list[int], out: Reporter) -> None:
    rounds = 1 if quick else 5
    rates: dict[int, float | None] = {}
    with procs.fake_server() as url:
        for shards in shard_counts:
            answers = [procs.probe(overrides(url, rounds, shards)) for _ in range(repeats)]
            good = [a for a in answers if "error" not in a]
            label = "in-process" if shards == 0 else f"{shards} shard{'s' if shards > 1 else ''}"
            if not good:
                out.add(Figure(GROUP, f"IPD {AGENTS} LLM agents, {label}", None, "decisions/s",
                               status=f"failed: {answers[0]['error']}"))  # fmt: skip
                rates[shards] = None
                continue
            best = max(good, key=lambda a: a["llm_calls"] / a["wall_time_s"])
            rates[shards] = best["llm_calls"] / best["wall_time_s"]
            note = f"{best['llm_calls']:,} decisions, best of {repeats}"
            if shards == 0:
                note += f"; {1000 * best['cpu_s'] / best['llm_calls']:.2f} CPU ms/decision"
            base = rates.get(1) if shards > 1 else None
            if base:
                note += f"; {rates[shards] / base:.2f}x one shard"
            out.add(Figure(
                GROUP, f"IPD {AGENTS} LLM agents, fake server, {label}", rates[shards], "decisions/s", note=note,
                target=Target("value", ">=", 2000, "issue 16 item 4: per core") if shards == 0 else None,
            ))  # fmt: skip


def transcripts_cost(quick: bool, repeats: int, out: Reporter) -> None:
    """What the transcripts table costs: in-process runs with and without it, interleaved (issue 12: at most
    5% of decisions/s). Each side's best run, so a slow moment of a shared machine counts against neither."""
    rounds = 1 if quick else 5
    rates: dict[bool, list[float]] = {True: [], False: []}
    with procs.fake_server() as url:
        for _ in range(repeats):
            for transcripts in (False, True):
                answer = procs.probe(overrides(url, rounds, 0, transcripts))
                if "error" not in answer:
                    rates[transcripts].append(answer["llm_calls"] / answer["wall_time_s"])
    if not rates[True] or not rates[False]:
        out.add(Figure(GROUP, "transcripts' cost", None, "%", status="failed: a run did not complete"))
        return
    with_, without = max(rates[True]), max(rates[False])
    out.add(Figure(
        GROUP, f"transcripts' cost, IPD {AGENTS} LLM agents, fake server, in-process", 100 * (1 - with_ / without), "%",
        note=f"{with_:,.0f} decisions/s with, {without:,.0f} without (best of {repeats} each, interleaved)",
        target=Target("value", "<=", 5, "issue 12: transcripts cost at most 5% of decisions/s"),
    ))  # fmt: skip


CLIENT_LINE = re.compile(
    r"^\s*(?P<name>bare openai loop \(httpx2?\)|LLMPolicy \+ transcripts \+ cache|LLMPolicy \+ transcripts|LLMPolicy)"
    r"\s+"
    r"(?P<rate>[0-9.]+) decisions/s\s+(?P<cpu>[0-9.]+) CPU ms/decision",
    re.MULTILINE,
)

ENGINE_LINE = re.compile(
    r"engine CPU per decision \(difference\): (?P<ms>[0-9.]+) ms = (?P<rate>[0-9.]+) decisions/s per core"
    r"(?: \((?P<how>[^)]*)\))?"
)


def client(quick: bool, repeats: int, out: Reporter) -> None:
    """bench_llm.py's fake-server comparison, run as it is and read from its output."""
    argv = [procs.PROJECT_PYTHON, str(procs.HERE / "bench_llm.py"), "--repeats", str(repeats)]
    argv += ["--decisions", "500" if quick else "4000"]
    done = procs.run_timed(argv, timeout_s=1800)
    print(done.stdout.rstrip())
    found = {m["name"]: m for m in CLIENT_LINE.finditer(done.stdout)}
    if done.returncode != 0 or not found:
        out.add(Figure(GROUP, "bench_llm.py (fake server)", None, "decisions/s",
                       status=f"failed or unreadable output: {done.tail()}"))  # fmt: skip
        return
    engine = ENGINE_LINE.search(done.stdout)
    if engine:
        out.add(Figure(
            GROUP, "bench_llm.py: engine CPU per decision, full CLI run", float(engine["rate"]),
            "decisions/s per core", target=Target("value", ">=", 2000, "issue 16 item 4: per core"),
            note=f"{engine['ms']} CPU ms/decision (two LLM-only IPD runs' CPU difference over their decisions"
            + (f"; {engine['how']})" if engine["how"] else ")"),
        ))  # fmt: skip
    for name, match in found.items():
        target = Target("value", ">=", 2000, "issue 16 item 4: per core") if name == "LLMPolicy" else None
        out.add(Figure(
            GROUP, f"bench_llm.py: {name}", float(match["rate"]), "decisions/s", target=target,
            note=f"{match['cpu']} CPU ms/decision; client micro-benchmark, no engine",
        ))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, nargs="+", default=[0, 1, 2, 4])
    parser.add_argument("--skip-client", action="store_true", help="leave out bench_llm.py")
    args, out = procs.arguments(__doc__, parser)
    scaling(args.quick, procs.repeats_of(args), args.shards, out)
    transcripts_cost(args.quick, procs.repeats_of(args), out)
    if not args.skip_client:
        client(args.quick, procs.repeats_of(args), out)


if __name__ == "__main__":
    main()
