"""What a run will cost, estimated before it starts: agents, edges, decisions, prompt tokens and memory.

Printed by the dry run (`run.dry_run=true`). Decisions are those of the first step that asks any,
times the steps the scenario may take (an upper bound for runs that stop early); tokens are estimated
at four characters a token from the first step's rendered prompts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl

CHARS_PER_TOKEN = 4  # a rough rule for English text with BPE tokenizers


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        return [
            f"agents {self.agents:,} ({self.llm_agents:,} language-model), edges {self.edges:,}",
            f"steps at most {self.max_steps:,}; decisions about {self.decisions:,} "
            f"({self.decisions_per_step:,} in the first step that asks any), "
            f"{self.llm_decisions:,} by a language model",
            f"tokens about {self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion "
            f"(at most; {CHARS_PER_TOKEN} characters a token)",
            f"memory about {self.memory_bytes / 2**20:,.1f} MiB (graph, world, personas, one buffer of records)",
        ]


def _row_bytes(schema: pl.Schema) -> int:
    return sum(8 if dtype.is_numeric() or dtype == pl.Boolean else 32 for dtype in schema.values())


def estimate(prepared: Any, batches: list[Any], messages: list[list[dict[str, str]]]) -> Estimate:
    """From a prepared run, the batches of its first deciding step and the messages of its LLM decisions."""
    from sim.recorder import full_schemas

    graph, population, world = prepared.graph, prepared.population, prepared.world
    steps = int(prepared.scenario.max_steps(world))
    per_step = sum(len(b) for b in batches)
    llm_codes = population.llm_codes()
    llm_per_step = sum(int(np.isin(b.policies, llm_codes).sum()) for b in batches if b.policies is not None)
    chars = [sum(len(m["content"]) for m in msgs) for msgs in messages]
    prompt_per_call = (sum(chars) / len(chars) / CHARS_PER_TOKEN) if chars else 0.0
    completion_per_call = max((b.spec.max_tokens for b in batches), default=0)
    arrays, _ = world.state()
    schemas = full_schemas(prepared.scenario.tables)
    buffer_rows = prepared.config.run.flush_rows
    memory = (
        graph.indptr.nbytes + graph.indices.nbytes + graph.edges.nbytes
        + sum(a.nbytes for a in arrays.values())
        + population.personas.estimated_size()
        + buffer_rows * max((_row_bytes(s) for s in schemas.values()), default=0)
    )  # fmt: skip
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
