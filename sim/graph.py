"""Social graph builders (networkx, seeded) and the edge-list loader, all returning a CSR SocialGraph."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import networkx as nx
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from scenarios.base import SocialGraph


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
            return SocialGraph.from_edges(n, complete_edges(n))
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
