"""What a run will cost, known before it starts: memory (checked against the machine before anything is
built), agents, edges, decisions, prompt and completion tokens, and, with a live server, time.

Two stages. `check_memory` bounds the memory from the config alone (population size, the graph's
expected edges, the scenario's world, one buffer of records) and refuses a run that cannot fit with
one line giving the estimate and the limit, before a persona is sampled or an edge drawn. `estimate`
then measures the prepared run: decisions are those of the first step that asks any, times the steps
the scenario may take (an upper bound for runs that stop early); tokens are counted at four characters
a token over a sample of that step's rendered prompts; `calibrate` asks the server a few of them for
the time per decision. Printed at the start of every run and stored in its manifest.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import polars as pl

from sim.config import ConfigError

CHARS_PER_TOKEN = 4  # a rough rule for English text with BPE tokenizers
TOKEN_SAMPLE = 64  # prompts rendered to estimate tokens per call
CALIBRATION_DECISIONS = 8
PERSONA_BYTES = 640  # a sampled persona row: ten strings, fifteen floats
CSR_EDGE_BYTES = 40  # edges (16) + indices both ways (16) + the unique pass's temporaries


@dataclass(frozen=True)
class Estimate:
    agents: int
    edges: int
    llm_agents: int
    max_steps: int
    decisions_per_step: int
    decisions: int
    llm_decisions: int
    prompt_tokens: int
    completion_tokens: int
    memory_bytes: int
    seconds_per_llm_decision: float | None = None
    llm_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        lines = [
            f"agents {self.agents:,} ({self.llm_agents:,} language-model), edges {self.edges:,}",
            f"steps at most {self.max_steps:,}; decisions about {self.decisions:,} "
            f"({self.decisions_per_step:,} in the first step that asks any), "
            f"{self.llm_decisions:,} by a language model",
            f"tokens about {self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion "
            f"(at most; {CHARS_PER_TOKEN} characters a token)",
            f"memory about {self.memory_bytes / 2**20:,.1f} MiB (graph, world, personas, one buffer of records)",
        ]
        if self.llm_seconds is not None:
            lines.append(
                f"time for the model's decisions about {self.llm_seconds / 60:,.1f} min "
                f"({self.seconds_per_llm_decision * 1000:.0f} ms a decision at the configured concurrency)"
            )
        return lines


# ---- stage 1: from the config alone ----------------------------------------------------------------------


def memory_limit() -> int:
    """Bytes this process can still use: MemAvailable (Linux), else the machine's physical memory."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def expected_edges(graph: Any, n: int) -> float:
    """The expected number of undirected edges of a graph config over n nodes (every generator builds
    edge arrays directly: agents/generators.py, block_model.py, preferential_attachment.py)."""
    pairs = n * (n - 1) / 2
    match graph.kind:
        case "complete":
            return pairs
        case "erdos_renyi":
            return graph.p * pairs
        case "watts_strogatz":
            return n * graph.k / 2
        case "barabasi_albert":
            return float(graph.m * n)
        case "stochastic_block":
            size, blocks = n // graph.blocks, graph.blocks
            last = n - size * (blocks - 1)  # the last block takes the remainder
            inside = (blocks - 1) * size * (size - 1) / 2 + last * (last - 1) / 2
            return graph.p_in * inside + graph.p_out * (pairs - inside)
        case _:  # an edge list: its size on disk bounds it
            return os.path.getsize(graph.path) / 8


def memory_parts(config: Any, scenario: Any, rows: float | None = None) -> dict[str, float]:
    """Bytes by part (personas, graph, world, records buffer) from the config alone; `rows` caps the
    buffer by the rows the run can record at all (when known)."""
    from sim.recorder import full_schemas

    population = config.population
    if population.source and os.path.isfile(population.source):  # a missing file: the loader says so
        n = population.size or _lines(population.source)
        personas = 3.0 * os.path.getsize(population.source)
    else:
        n = population.size or scenario.default_population_size() or 20
        personas = float(n) * PERSONA_BYTES
    edges = expected_edges(config.graph, n)
    graph = 0.0 if config.graph.kind == "complete" else edges * CSR_EDGE_BYTES
    row = max((_row_bytes(s) for s in full_schemas(scenario.tables).values()), default=0)
    return {
        "personas": personas,
        "graph": graph + 16.0 * n,
        "world": float(scenario.world_bytes(n, edges)),
        "records buffer": float(min(config.run.flush_rows, rows if rows is not None else float("inf")) * row),
    }


def check_memory(config: Any, scenario: Any, limit: int | None = None) -> None:
    """Refuse (ConfigError, one line) a run whose estimated memory exceeds what the machine has free."""
    parts = memory_parts(config, scenario)
    total, limit = sum(parts.values()), limit or memory_limit()
    if total > limit:
        largest = max(parts, key=parts.__getitem__)
        detail = ", ".join(f"{k} {_size(v)}" for k, v in parts.items())
        raise ConfigError(
            f"pre-flight: this run needs about {_size(total)} ({detail}) but the machine has {_size(limit)} free; "
            f"the {largest} is the largest part: lower population.size or pick a sparser graph"
        )


def _size(n: float) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n / 2**10:,.0f} KiB"


def _lines(path: str) -> int:
    with open(path, "rb") as handle:
        return sum(1 for _ in handle)


def _row_bytes(schema: pl.Schema) -> int:
    return sum(8 if dtype.is_numeric() or dtype == pl.Boolean else 32 for dtype in schema.values())


# ---- stage 2: the prepared run ------------------------------------------------------------------------------


def first_deciding_step(prepared: Any, lookahead: int = 8) -> tuple[int, list]:
    """Plan (without resolving) until a step asks decisions, with policies and seeds filled in as the
    scheduler would; rule-driven scenarios ask none."""
    from sim import seeding
    from sim.scheduler import StepContext, fill_decisions

    config, scenario = prepared.config, prepared.scenario
    ctx = StepContext("preflight", config.seed, prepared.population, config.backend.kind, config.backend.model)
    for step in range(min(lookahead, scenario.max_steps(prepared.world))):
        batches = scenario.plan(prepared.world, step, seeding.rng(config.seed, "plan", step))
        if batches and sum(len(b) for b in batches):
            fill_decisions(batches, ctx, step)
            return step, batches
        break  # a step without decisions would need resolving to reach the next one
    return 0, []


def llm_parts(batches: list, llm_codes: np.ndarray) -> list:
    """The language-model decisions of each batch (as sub-batches)."""
    parts = []
    for batch in batches:
        index = np.flatnonzero(np.isin(batch.policies, llm_codes))
        if len(index):
            parts.append(batch.take(index))
    return parts


def estimate(prepared: Any, batches: list, prompter: Any) -> Estimate:
    """The prepared run's figures, from the batches of its first deciding step."""
    graph, population, world = prepared.graph, prepared.population, prepared.world
    steps = int(prepared.scenario.max_steps(world))
    per_step = sum(len(b) for b in batches)
    llm = llm_parts(batches, population.llm_codes())
    llm_per_step = sum(len(b) for b in llm)
    chars = []
    for part in llm:
        for i in range(min(len(part), TOKEN_SAMPLE - len(chars))):
            messages = prompter.messages(part.spec.name, int(part.agent_ids[i]), part.row(i), part.context,
                                         int(part.seeds[i]))  # fmt: skip
            chars.append(sum(len(m["content"]) for m in messages))
    prompt_per_call = (sum(chars) / len(chars) / CHARS_PER_TOKEN) if chars else 0.0
    completion_per_call = max((b.spec.max_tokens for b in llm), default=0)
    arrays, _ = world.state()
    rows = max(per_step, population.size) * steps  # decisions, or a state row per agent, every step
    memory = (
        sum(memory_parts(prepared.config, prepared.scenario, rows).values())
        - float(prepared.scenario.world_bytes(population.size, graph.n_edges))
        + sum(a.nbytes for a in arrays.values())
    )  # the measured world instead of its estimate
    return Estimate(
        agents=population.size,
        edges=graph.n_edges,
        llm_agents=int(population.llm_mask.sum()),
        max_steps=steps,
        decisions_per_step=per_step,
        decisions=per_step * steps,
        llm_decisions=llm_per_step * steps,
        prompt_tokens=round(prompt_per_call * llm_per_step * steps),
        completion_tokens=completion_per_call * llm_per_step * steps,
        memory_bytes=int(memory),
    )


def calibrate(
    found: Estimate, batches: list, prepared: Any, policy: Any, parallel: int, codes: np.ndarray | None = None
) -> Estimate:
    """Ask the server a few of the first step's decisions; time per decision at `parallel` requests in
    flight (the answers go to the response cache, so the run itself does not pay for them again).
    `codes`: the policy codes `policy` answers for (default: every language-model policy)."""
    llm = llm_parts(batches, prepared.population.llm_codes() if codes is None else codes)
    if not llm:
        return found
    sample = llm[0].take(np.arange(min(CALIBRATION_DECISIONS, len(llm[0]))))
    answers = policy.decide(sample)
    fresh = answers.latency_ms[~answers.cached]
    if not len(fresh):
        return found
    per_decision = float(np.mean(fresh)) / 1000.0 / max(parallel, 1)
    return replace(found, seconds_per_llm_decision=per_decision, llm_seconds=per_decision * found.llm_decisions)


def context_samples(prepared: Any, choice_format: str, persona_sample: int = 2000) -> list[Any]:
    """The longest prompt of each kind of decision (the scenario's `longest_prompts`), rendered for the
    agent with the longest persona text among the first `persona_sample`, as the context pre-check
    takes them (sim.backends.context.PromptSample)."""
    from sim.backends.context import PromptSample
    from sim.backends.policy import json_overhead
    from sim.dryrun import prompter_of

    prompter = prompter_of(prepared)
    sample = range(min(prepared.population.size, persona_sample))
    agent = max(sample, key=lambda i: len(prompter.persona(i)[1]), default=0)
    out = []
    for batch, parameter in prepared.scenario.longest_prompts(prepared.world):
        seed = 0 if batch.seeds is None else int(batch.seeds[0])
        messages = prompter.messages(batch.spec.name, agent, batch.row(0), batch.context, seed)
        tokens = batch.spec.max_tokens + json_overhead(batch.spec, choice_format)
        out.append(PromptSample(batch.spec.name, messages, tokens, parameter))
    return out
