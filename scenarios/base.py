"""The interfaces every scenario implements, and the compact graph they run on.

A scenario is a set of pure, seeded functions over a serialisable world state: `init` builds the
world, `plan` says who decides what this step, `resolve` applies the answers and returns the new
world with the rows to record. Scenarios never do I/O and never know about Ray or the LLM backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict

from agents.decisions import DecisionBatch, Decisions
from agents.population import Population


class ScenarioConfig(BaseModel):
    """Base of every scenario's config; subclasses add `name: Literal[...]` and their parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class SocialGraph:
    """Undirected graph in CSR form: the neighbours of i are indices[indptr[i]:indptr[i+1]].

    `edges` lists each undirected edge once as (u, v) with u < v, sorted; node i is agent i.
    """

    n: int
    indptr: np.ndarray
    indices: np.ndarray
    edges: np.ndarray

    @classmethod
    def from_edges(cls, n: int, edges: np.ndarray) -> SocialGraph:
        edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
        if len(edges):
            if edges.min() < 0 or edges.max() >= n:
                raise ValueError(f"edge endpoint outside 0..{n - 1}")
            if (edges[:, 0] == edges[:, 1]).any():
                raise ValueError("self-loop in edge list")
        lo, hi = np.minimum(edges[:, 0], edges[:, 1]), np.maximum(edges[:, 0], edges[:, 1])
        und = np.unique(np.stack([lo, hi], axis=1), axis=0) if len(edges) else edges
        src = np.concatenate([und[:, 0], und[:, 1]])
        dst = np.concatenate([und[:, 1], und[:, 0]])
        order = np.lexsort((dst, src))
        src, dst = src[order], dst[order]
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
        return cls(n=n, indptr=indptr, indices=dst.astype(np.int64), edges=und)

    @property
    def degree(self) -> np.ndarray:
        return np.diff(self.indptr)

    def neighbours(self, i: int) -> np.ndarray:
        return self.indices[self.indptr[i] : self.indptr[i + 1]]

    @property
    def is_complete(self) -> bool:
        return len(self.edges) == self.n * (self.n - 1) // 2


@dataclass
class StepResult:
    """What `resolve` returns: the next world, the rows to record, a few numbers for the progress line.

    `tables` maps a table name ("interactions", "states", "strategies", ...) to rows. Rows of the
    "interactions" table that answer a decision carry its index in the step's concatenated batches in
    an integer column `_decision` (null otherwise); the engine joins policy and accounting columns on it.
    """

    world: Any
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    summary: dict[str, float] = field(default_factory=dict)


class ScriptedPolicy(Protocol):
    """A hand-coded strategy: answers a whole batch at once with numpy."""

    def decide(self, batch: DecisionBatch) -> dict[str, np.ndarray]: ...


class Scenario(Protocol):
    """One game or dynamic. Implementations live in `scenarios/<name>.py` with `conf/scenario/<name>.yaml`."""

    name: ClassVar[str]
    Config: ClassVar[type[ScenarioConfig]]

    def __init__(self, config: ScenarioConfig) -> None: ...

    def policies(self) -> dict[str, ScriptedPolicy]:
        """Scripted policies usable in `population.mix`, by name (`llm` is added by the engine)."""
        ...

    def default_mix(self) -> dict[str, float]:
        """Population mix used when the user gives none."""
        ...

    def default_population_size(self) -> int | None:
        """Population size used when `population.size` is null (None: the engine's default)."""
        ...

    def table_schemas(self) -> dict[str, dict[str, pl.DataType]]:
        """Columns (and types) of every table this scenario records, before the engine's columns."""
        ...

    def init(self, population: Population, graph: SocialGraph, rng: np.random.Generator) -> Any:
        """The world at step 0 (a picklable object: the checkpoint of the run)."""
        ...

    def max_steps(self, world: Any) -> int:
        """Upper bound on the number of steps (for the progress bar)."""
        ...

    def done(self, world: Any) -> bool:
        """True once the run is over (fixed length, or converged)."""
        ...

    def plan(self, world: Any, step: int, rng: np.random.Generator) -> list[DecisionBatch]:
        """The decisions to make this step (may be empty for rule-driven dynamics)."""
        ...

    def resolve(
        self,
        world: Any,
        step: int,
        batches: list[DecisionBatch],
        decisions: list[Decisions],
        rng: np.random.Generator,
    ) -> StepResult:
        """Apply the answers; return the next world and the rows of this step."""
        ...

    def finish(self, world: Any) -> dict[str, pl.DataFrame]:
        """Rows recorded once at the end (e.g. final states); may be empty."""
        ...
