"""The social graph agents live on: its compact CSR form (SocialGraph), the `graph` config group's kinds,
the seeded networkx builders and the edge-list loader. Scenarios read a SocialGraph; the engine builds it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import networkx as nx
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator


@dataclass(frozen=True)
class SocialGraph:
    """Undirected graph in CSR form: the neighbours of i are indices[indptr[i]:indptr[i+1]].

    `edges` lists each undirected edge once as (u, v) with u < v, sorted; node i is agent i.
    A complete graph is implicit (`complete=True`, no arrays): everyone is everyone's neighbour, and
    what needs a pairing or a neighbour mean works from that fact instead of n²/2 stored edges.
    """

    n: int
    indptr: np.ndarray
    indices: np.ndarray
    edges: np.ndarray
    complete: bool = False

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

    @classmethod
    def complete_graph(cls, n: int) -> SocialGraph:
        """Everyone linked to everyone, without storing a single edge."""
        empty = np.zeros(0, np.int64)
        return cls(n=n, indptr=np.zeros(n + 1, np.int64), indices=empty, edges=empty.reshape(0, 2), complete=True)

    @property
    def is_complete(self) -> bool:
        return self.complete or (self.n > 1 and len(self.edges) == self.n * (self.n - 1) // 2)

    @property
    def n_edges(self) -> int:
        return self.n * (self.n - 1) // 2 if self.complete else len(self.edges)

    @property
    def degree(self) -> np.ndarray:
        return np.full(self.n, self.n - 1, np.int64) if self.complete else np.diff(self.indptr)

    def edge_list(self) -> np.ndarray:
        """Every undirected edge (u < v), materialised: only for what needs each pair (a round robin)."""
        return complete_edges(self.n) if self.complete else self.edges

    def directed(self) -> tuple[np.ndarray, np.ndarray]:
        """(listener, speaker) for every directed edge, listeners in order, each one's neighbours sorted."""
        if not self.complete:
            return np.repeat(np.arange(self.n), self.degree), self.indices
        listener = np.repeat(np.arange(self.n), self.n - 1)
        others = np.tile(np.arange(self.n - 1), self.n)
        return listener, others + (others >= listener)

    def neighbours(self, i: int) -> np.ndarray:
        if self.complete:
            return np.delete(np.arange(self.n), i)
        return self.indices[self.indptr[i] : self.indptr[i + 1]]


class EdgeListError(ValueError):
    """An edge-list file that cannot be used; the message names the file and the line."""


class _Graph(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Complete(_Graph):
    kind: Literal["complete"] = "complete"


class ErdosRenyi(_Graph):
    kind: Literal["erdos_renyi"] = "erdos_renyi"
    p: float = Field(default=0.1, ge=0.0, le=1.0)


class WattsStrogatz(_Graph):
    kind: Literal["watts_strogatz"] = "watts_strogatz"
    k: int = Field(default=6, ge=2)
    p: float = Field(default=0.1, ge=0.0, le=1.0)


class BarabasiAlbert(_Graph):
    kind: Literal["barabasi_albert"] = "barabasi_albert"
    m: int = Field(default=3, ge=1)


class StochasticBlock(_Graph):
    """Blocks of equal size (the last takes the remainder); p_in within, p_out across blocks."""

    kind: Literal["stochastic_block"] = "stochastic_block"
    blocks: int = Field(default=2, ge=1)
    p_in: float = Field(default=0.2, ge=0.0, le=1.0)
    p_out: float = Field(default=0.01, ge=0.0, le=1.0)


class EdgeList(_Graph):
    """A file of `source target` pairs (CSV or whitespace) naming persona ids; `#` starts a comment."""

    kind: Literal["edgelist"] = "edgelist"
    path: str

    @model_validator(mode="after")
    def _exists(self) -> EdgeList:
        if not Path(self.path).is_file():
            raise ValueError(f"edge list file {self.path!r} not found")
        return self


GraphConfig = Annotated[
    Complete | ErdosRenyi | WattsStrogatz | BarabasiAlbert | StochasticBlock | EdgeList,
    Field(discriminator="kind"),
]


def complete_edges(n: int) -> np.ndarray:
    u, v = np.triu_indices(n, k=1)
    return np.stack([u, v], axis=1)


def _from_networkx(n: int, graph: nx.Graph) -> SocialGraph:
    edges = np.array(list(graph.edges()), dtype=np.int64).reshape(-1, 2)
    return SocialGraph.from_edges(n, edges)


def build_graph(config: GraphConfig, n: int, seed: int, persona_ids: list[str] | None = None) -> SocialGraph:
    """The run's graph over agents 0..n-1. `seed` is an integer derived from the root seed."""
    match config:
        case Complete():
            return SocialGraph.complete_graph(n)
        case ErdosRenyi(p=p):
            return _from_networkx(n, nx.fast_gnp_random_graph(n, p, seed=seed))
        case WattsStrogatz(k=k, p=p):
            if k >= n:
                raise ValueError(f"graph.k={k} must be smaller than population.size={n}")
            return _from_networkx(n, nx.watts_strogatz_graph(n, k, p, seed=seed))
        case BarabasiAlbert(m=m):
            if m >= n:
                raise ValueError(f"graph.m={m} must be smaller than population.size={n}")
            return _from_networkx(n, nx.barabasi_albert_graph(n, m, seed=seed))
        case StochasticBlock(blocks=b, p_in=p_in, p_out=p_out):
            if b > n:
                raise ValueError(f"graph.blocks={b} is more than population.size={n}")
            sizes = [n // b] * b
            sizes[-1] += n - sum(sizes)
            probs = [[p_in if i == j else p_out for j in range(b)] for i in range(b)]
            return _from_networkx(n, nx.stochastic_block_model(sizes, probs, seed=seed))
        case EdgeList(path=path):
            ids = persona_ids if persona_ids is not None else [str(i) for i in range(n)]
            return SocialGraph.from_edges(n, load_edge_list(path, ids))
    raise AssertionError(f"unhandled graph kind {config.kind}")


_SPLIT = re.compile(r"[,\s]+")


def load_edge_list(path: str | Path, persona_ids: list[str]) -> np.ndarray:
    """Parse an edge list into agent-index pairs. Rejects unknown ids and self-loops with the line number.

    A first line whose two fields are both unknown ids (e.g. `source,target`) is taken as a header.
    Extra columns (weights) are ignored; duplicates and reversed duplicates collapse to one edge."""
    index = {pid: i for i, pid in enumerate(persona_ids)}
    edges: list[tuple[int, int]] = []
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            fields = [f.strip().strip('"') for f in _SPLIT.split(line) if f.strip()]
            if len(fields) < 2:
                raise EdgeListError(f"edge list {path}, line {number}: expected two node ids, got {line!r}")
            a, b = fields[0], fields[1]
            if not edges and number == _first_data_line(path) and a not in index and b not in index:
                continue  # header
            for node in (a, b):
                if node not in index:
                    raise EdgeListError(f"edge list {path}, line {number}: unknown node id {node!r}")
            if a == b:
                raise EdgeListError(f"edge list {path}, line {number}: self-loop on node {a!r}")
            edges.append((index[a], index[b]))
    if not edges:
        raise EdgeListError(f"edge list {path}: no edges")
    return np.array(edges, dtype=np.int64)


def _first_data_line(path: str | Path) -> int:
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.split("#", 1)[0].strip():
                return number
    return 0
