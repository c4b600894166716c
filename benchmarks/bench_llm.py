"""Decisions per second and client CPU per decision: the bare openai loop, LLMPolicy, and the whole CLI.

Against a zero-latency OpenAI-compatible stand-in (sim.backends.fake_server, in its own process,
so the client's CPU is what limits throughput on the other core):

- bare openai loop: `AsyncOpenAI().chat.completions.create` on the SDK's default httpx2 client, the
  same pre-rendered IPD requests under a semaphore (what an LLM client costs before socsim);
- LLMPolicy without transcript columns, with them, and with them plus the response cache (cold,
  the default of a run): prompt rendering, the counting transport, parsing, accounting;
- the `socsim` CLI on an LLM-only IPD run: the engine's CPU per decision end to end, as the
  difference of two run sizes (start-up and imports cancel out);
- the fake server's ceiling: a raw aiohttp loop's requests per second, to show it is not the limit.

Client CPU ms per decision is the steadier figure on a shared machine; decisions/s per core is
1000 / that. Repeats are interleaved, best of each. With --vllm, the same for a real vLLM-on-CPU
server with the tiny test model (end to end, the server is the limit there).

    .venv/bin/python benchmarks/bench_llm.py [--decisions 4000] [--repeats 5] [--concurrency 64] [--vllm]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from agents.decisions import DecisionBatch
from agents.population import Population, SamplerConfig, sample_personas
from agents.prompts import Prompter
from scenarios.ipd import MOVE_SPEC, IPDConfig, IteratedGame
from sim.backends.config import BackendConfig, socsim_cache_root
from sim.backends.policy import LLMPolicy, attempt_seed

ROOT = Path(__file__).resolve().parents[1]
Rate = tuple[float, float]  # (decisions per wall second, client CPU ms per decision)


def ipd_batch(n: int, rounds_played: int = 5, seed: int = 0) -> tuple[DecisionBatch, Population]:
    """n IPD decisions in round `rounds_played` with random histories, one agent each."""
    rng = np.random.default_rng(seed)
    own = rng.integers(0, 2, (n, rounds_played), dtype=np.int8)
    batch = DecisionBatch(
        spec=MOVE_SPEC,
        agent_ids=np.arange(n),
        obs={"own": own, "opp": rng.integers(0, 2, (n, rounds_played), dtype=np.int8), "side": np.zeros(n, np.int8)},
        context={"round": rounds_played, "rounds": 10, "game": "pd", "payoffs": IPDConfig().payoff_table().tolist()},
        seeds=rng.integers(0, 2**63, n, dtype=np.uint64),
    )
    personas = sample_personas(SamplerConfig(), n, rng)
    return batch, Population(personas, ("llm",), np.zeros(n, np.int16))


def prompter(population: Population) -> Prompter:
    game = IteratedGame(IPDConfig())
    return Prompter(game, game.templates(), population.personas)


def through_policy(config: BackendConfig, batch: DecisionBatch, population: Population, transcripts: bool) -> Rate:
    policy = LLMPolicy(config, prompter(population), transcripts=transcripts)
    try:
        policy.decide(ipd_batch(64, seed=1)[0])  # connections, imports
        start, cpu = time.perf_counter(), time.process_time()
        out = policy.decide(batch)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        policy.close()
    if out.missing.any():
        print(f"  (policy: {int(out.missing.sum())} missing decisions)")
    return len(batch) / elapsed, cpu * 1000 / len(batch)


def bare_loop(config: BackendConfig, batch: DecisionBatch, population: Population) -> Rate:
    """The same requests (rendered beforehand, not timed) through `chat.completions.create` on the
    SDK's default client, under a semaphore of the same concurrency."""
    from openai import AsyncOpenAI

    choice = {"structured_outputs": {"choice": ["J", "F"]}}
    requests = [
        {"model": config.model, "messages": messages, "temperature": 0.0, "max_tokens": 2,
         "seed": attempt_seed(int(seed), 0), "extra_body": choice}
        for messages, seed in zip(prompter(population).batch(batch), batch.seeds, strict=True)
    ]  # fmt: skip

    async def main() -> Rate:
        client = AsyncOpenAI(base_url=config.base_url, api_key="EMPTY", max_retries=config.max_retries)
        gate = asyncio.Semaphore(config.max_concurrency)

        async def one(body: dict) -> str | None:
            async with gate:
                reply = await client.chat.completions.create(**body)
                return reply.choices[0].message.content

        await asyncio.gather(*(one(b) for b in requests[:64]))
        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(b) for b in requests))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        await client.close()
        return len(requests) / elapsed, cpu * 1000 / len(requests)

    return asyncio.run(main())


def server_ceiling(base_url: str, n: int, concurrency: int) -> float:
    """Requests per second a raw aiohttp loop gets from the server: the most any client could get."""
    import aiohttp

    body = json.dumps({"model": "fake", "messages": [{"role": "user", "content": "x " * 300}], "seed": 1,
                       "max_tokens": 2, "structured_outputs": {"choice": ["J", "F"]}}).encode()  # fmt: skip

    async def main() -> float:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
            gate = asyncio.Semaphore(concurrency)

            async def one() -> bytes:
                async with gate, session.post(f"{base_url}/chat/completions", data=body,
                                              headers={"Content-Type": "application/json"}) as r:  # fmt: skip
                    return await r.read()

            await asyncio.gather(*(one() for _ in range(200)))
            start = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(n)))
            return n / (time.perf_counter() - start)

    return asyncio.run(main())


def compare(label: str, config: BackendConfig, n: int, repeats: int) -> dict[str, Rate]:
    """Interleaved repeats, best of each (the machine may be shared: CPU per decision is the steadier)."""
    batch, population = ipd_batch(n)
    runs: dict[str, Callable[[], Rate]] = {
        "bare": lambda: bare_loop(config, batch, population),
        "policy": lambda: through_policy(config.model_copy(update={"cache": False}), batch, population, False),
        "transcripts": lambda: through_policy(config.model_copy(update={"cache": False}), batch, population, True),
        "cached": lambda: _with_cold_cache(config, batch, population),
    }
    results: dict[str, list[Rate]] = {k: [] for k in runs}
    for _ in range(repeats):
        for key, fn in runs.items():
            results[key].append(fn())
    best = {k: (max(r for r, _ in v), min(c for _, c in v)) for k, v in results.items()}
    names = {
        "bare": "bare openai loop (httpx2)",
        "policy": "LLMPolicy",
        "transcripts": "LLMPolicy + transcripts",
        "cached": "LLMPolicy + transcripts + cache",
    }
    print(f"{label}: {n} decisions, concurrency {config.max_concurrency}, transport {config.transport}, "
          f"best of {repeats}")  # fmt: skip
    bare_cpu = best["bare"][1]
    for key, name in names.items():
        rate, cpu = best[key]
        print(f"  {name:33s} {rate:8.0f} decisions/s  {cpu:6.3f} CPU ms/decision  "
              f"{1000 / cpu:7.0f} decisions/s per core  x{bare_cpu / cpu:4.2f} of bare")  # fmt: skip
    medians = {k: float(np.median([c for _, c in v])) for k, v in results.items()}
    cost = medians["transcripts"] / medians["policy"] - 1
    print(f"  transcripts cost (median CPU per decision, with vs without): {cost * 100:+.1f}%")
    return best


def _with_cold_cache(config: BackendConfig, batch: DecisionBatch, population: Population) -> Rate:
    with tempfile.TemporaryDirectory() as cache:
        return through_policy(config.model_copy(update={"cache_dir": cache}), batch, population, True)


def cli_cpu_per_decision(base_url: str, agents: tuple[int, int], rounds: int, repeats: int) -> None:
    """The engine end to end: `socsim` LLM-only IPD runs of two sizes; CPU per decision from the
    difference (start-up, imports and the run directory cancel out). The pair runs `repeats` times,
    interleaved, and the median difference is reported. A process's start-up CPU alone moves by a
    tenth of a second or more between runs, so the sizes are far apart (12 and 40 agents: 660 and
    7,800 decisions), where that moves the figure by a few hundredths of a millisecond."""
    per_pair = []
    for _ in range(repeats):
        measured = []
        for size in agents:
            with tempfile.TemporaryDirectory() as tmp:
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                overrides = [
                    "scenario=ipd", f"population.size={size}", f"population.mix={{llm:{size}}}",
                    f"scenario.rounds={rounds}", "backend=vllm", f"backend.base_url={base_url}", "backend.model=fake",
                    f"backend.cache_dir={tmp}/cache", f"run.dir={tmp}/run", "run.progress=false",
                    f"hydra.run.dir={tmp}/h",
                ]  # fmt: skip
                subprocess.run([sys.executable, "-m", "sim", *overrides], check=True, capture_output=True, cwd=ROOT)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
                decisions = size * (size - 1) * rounds  # complete graph, both players, every round
                measured.append((decisions, cpu, time.perf_counter() - start))
        (d1, c1, w1), (d2, c2, w2) = measured
        per_pair.append((c2 - c1) * 1000 / (d2 - d1))
        print(f"socsim CLI, LLM-only IPD, {rounds} rounds: {d1} decisions {c1:.2f} CPU s ({w1:.1f} s wall); "
              f"{d2} decisions {c2:.2f} CPU s ({w2:.1f} s wall)")  # fmt: skip
    per = statistics.median(per_pair)
    print(f"  engine CPU per decision (difference): {per:.3f} ms = {1000 / per:.0f} decisions/s per core "
          f"(median of {repeats} pairs; {min(per_pair):.3f}-{max(per_pair):.3f} ms)")  # fmt: skip


def fake_server() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.backends.fake_server", "--port", "0", "--model", "fake"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    port = int(proc.stdout.readline())  # type: ignore[union-attr]
    return proc, f"http://127.0.0.1:{port}/v1"


def tiny_model(python: str) -> Path:
    folder = socsim_cache_root() / "tiny-llama-v1"
    if not (folder / "model.safetensors").exists():
        subprocess.run([python, str(ROOT / "tests/backends/build_tiny_model.py"), str(folder)], check=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=4000)
    parser.add_argument("--vllm-decisions", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--transport", choices=("aiohttp", "httpx"), default="aiohttp")
    parser.add_argument("--no-cli", action="store_true", help="skip the end-to-end socsim runs")
    parser.add_argument("--vllm", action="store_true", help="also benchmark a real vLLM-on-CPU server (slow start)")
    args = parser.parse_args()

    proc, url = fake_server()
    try:
        ceiling = server_ceiling(url, args.decisions, args.concurrency)
        print(f"fake server ceiling (raw aiohttp client, concurrency {args.concurrency}): {ceiling:.0f} requests/s")
        config = BackendConfig(kind="vllm", model="fake", base_url=url, max_concurrency=args.concurrency,
                               transport=args.transport)  # fmt: skip
        best = compare("zero-latency fake server", config, args.decisions, args.repeats)
        fastest = max(rate for rate, _ in best.values())
        print(f"  fastest client wall rate {fastest:.0f}/s vs server ceiling {ceiling:.0f}/s: "
              f"{'the server is not the limit' if fastest < 0.8 * ceiling else 'near the server ceiling'}")  # fmt: skip
        if not args.no_cli:
            cli_cpu_per_decision(url, (12, 40), rounds=5, repeats=args.repeats)
    finally:
        proc.terminate()
        proc.wait()
    if not args.vllm:
        return
    from sim.backends.server import managed_server

    launch = BackendConfig(kind="vllm", model="tiny", launch=True, model_path="unused")
    launch = launch.model_copy(update={"model_path": str(tiny_model(launch.resolved_python()))})
    start = time.perf_counter()
    with managed_server(launch) as base_url:
        print(f"vLLM server (tiny model, CPU) answered after {time.perf_counter() - start:.0f} s")
        config = BackendConfig(kind="vllm", model="tiny", base_url=base_url, max_concurrency=args.concurrency)
        compare("real vLLM server, tiny model", config, args.vllm_decisions, args.repeats)


if __name__ == "__main__":
    main()
