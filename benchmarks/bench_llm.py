"""Decisions per second through LLMPolicy against a bare AsyncOpenAI loop at the same concurrency.

Two servers: a zero-latency OpenAI-compatible stand-in (sim.backends.fake_server, in its own
process), which shows the policy's own overhead (prompt rendering, parsing, cache writes); and a
real vLLM-on-CPU server with the tiny test model, which shows what a run gets end to end. The bare
loop sends the same pre-rendered requests with nothing else around them.

    /work/venv/bin/python benchmarks/bench_llm.py [--decisions 2000] [--repeats 3] [--concurrency 64] [--no-vllm]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from openai import AsyncOpenAI

from agents.decisions import DecisionBatch
from agents.population import Population, SamplerConfig, sample_personas
from agents.prompts import Prompter
from scenarios.ipd import MOVE_SPEC, IPDConfig, IteratedGame
from sim.backends.config import BackendConfig, socsim_cache_root
from sim.backends.policy import LLMPolicy

ROOT = Path(__file__).resolve().parents[1]


def ipd_batch(n: int, rounds_played: int = 5) -> tuple[DecisionBatch, Population]:
    """n IPD decisions in round `rounds_played` with random histories, one agent each."""
    rng = np.random.default_rng(0)
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


Rate = tuple[float, float]  # (decisions per wall second, client CPU ms per decision)


def prompter(population: Population) -> Prompter:
    game = IteratedGame(IPDConfig())
    return Prompter(game, game.templates(), population.personas)


def through_policy(config: BackendConfig, batch: DecisionBatch, population: Population) -> Rate:
    policy = LLMPolicy(config, prompter(population))
    try:
        start, cpu = time.perf_counter(), time.process_time()
        out = policy.decide(batch)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        policy.close()
    failed = sum(f is not None for f in out.fallback)
    if failed:
        print(f"  (policy: {failed} fallbacks)")
    return len(batch) / elapsed, cpu * 1000 / len(batch)


def bare_loop(config: BackendConfig, batch: DecisionBatch, population: Population) -> Rate:
    """The same requests (rendered beforehand, not timed) from one AsyncOpenAI under a semaphore."""
    helper = LLMPolicy(config.model_copy(update={"cache": False}), prompter(population))
    bodies = [
        helper.request(batch.spec, messages, int(seed) % 2**31, {})
        for messages, seed in zip(helper.prompter.batch(batch), batch.seeds, strict=True)
    ]

    async def main() -> Rate:
        client = AsyncOpenAI(base_url=config.base_url, api_key="EMPTY", max_retries=config.max_retries)
        gate = asyncio.Semaphore(config.max_concurrency)

        async def one(body: dict) -> str | None:
            async with gate:
                reply = await client.chat.completions.create(**body)
                return reply.choices[0].message.content

        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(b) for b in bodies))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        await client.close()
        return len(bodies) / elapsed, cpu * 1000 / len(bodies)

    return asyncio.run(main())


def compare(label: str, config: BackendConfig, n: int, repeats: int) -> None:
    """Interleaved repeats, best of each: the machine may be shared, so wall-clock rates are noisy;
    the client's CPU time per decision is the steadier measure of the policy's own overhead."""
    batch, population = ipd_batch(n)
    warm, _ = ipd_batch(min(n, 64))
    bare_loop(config, warm, population)  # warm-up: connections, imports, server caches
    runs: dict[str, list[Rate]] = {"bare": [], "off": [], "on": []}
    for _ in range(repeats):
        runs["bare"].append(bare_loop(config, batch, population))
        runs["off"].append(through_policy(config.model_copy(update={"cache": False}), batch, population))
        with tempfile.TemporaryDirectory() as cache:
            runs["on"].append(through_policy(config.model_copy(update={"cache_dir": cache}), batch, population))
    rate = {k: max(r for r, _ in v) for k, v in runs.items()}
    cpu = {k: min(c for _, c in v) for k, v in runs.items()}
    print(f"{label}: {n} decisions, concurrency {config.max_concurrency}, best of {repeats}")
    names = {"bare": "bare AsyncOpenAI loop", "off": "LLMPolicy (cache off)", "on": "LLMPolicy (cache on, cold)"}
    for key, name in names.items():
        ratio = "" if key == "bare" else f"   ratio {rate[key] / rate['bare']:.2f} (CPU x{cpu[key] / cpu['bare']:.2f})"
        print(f"  {name:27s} {rate[key]:8.1f} decisions/s  {cpu[key]:5.2f} CPU ms/decision{ratio}")


def fake_server() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.backends.fake_server", "--port", "0", "--model", "fake"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}/v1"


def tiny_model(python: str) -> Path:
    folder = socsim_cache_root() / "tiny-llama-v1"
    if not (folder / "model.safetensors").exists():
        subprocess.run([python, str(ROOT / "tests/backends/build_tiny_model.py"), str(folder)], check=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--vllm-decisions", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--no-vllm", action="store_true")
    args = parser.parse_args()

    proc, url = fake_server()
    try:
        config = BackendConfig(kind="vllm", model="fake", base_url=url, max_concurrency=args.concurrency)
        compare("zero-latency fake server", config, args.decisions, args.repeats)
    finally:
        proc.terminate()
        proc.wait()
    if args.no_vllm:
        return
    from sim.backends.server import managed_server

    launch = BackendConfig(kind="vllm", model="tiny", launch=True, model_path="unused")
    python = launch.resolved_python()
    launch = launch.model_copy(update={"model_path": str(tiny_model(python))})
    start = time.perf_counter()
    with managed_server(launch) as base_url:
        print(f"vLLM server (tiny model, CPU) answered after {time.perf_counter() - start:.0f} s")
        config = BackendConfig(kind="vllm", model="tiny", base_url=base_url, max_concurrency=args.concurrency)
        compare("real vLLM server, tiny model", config, args.vllm_decisions, args.repeats)


if __name__ == "__main__":
    main()
