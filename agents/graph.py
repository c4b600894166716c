"""The social graph agents live on: its compact CSR form (SocialGraph), the `graph` config group's kinds,
the seeded random graphs (networkx's generators, replayed with numpy) and the edge-list loader.
Scenarios read a SocialGraph; the engine builds it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agents.block_model import block_model_edges
from agents.generators import edge_keys, erdos_renyi_edges, watts_strogatz_edges
from agents.preferential_attachment import barabasi_albert_edges


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
    weights: np.ndarray | None = None  # per edge of `edges` (an edge list with a weight column), else None
    arc_weights: np.ndarray | None = None  # the same weights per CSR entry (aligned with `indices`)

    @classmethod
    def from_edges(cls, n: int, edges: np.ndarray, weights: np.ndarray | None = None) -> SocialGraph:
        """CSR from (u, v) pairs in any order; duplicates and reversed duplicates collapse to one edge
        (with `weights`, they must agree). No Python loop over edges."""
        edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
        if len(edges):
            if edges.min() < 0 or edges.max() >= n:
                raise ValueError(f"edge endpoint outside 0..{n - 1}")
            if (edges[:, 0] == edges[:, 1]).any():
                raise ValueError("self-loop in edge list")
        key = edge_keys(edges[:, 0], edges[:, 1], n)
        # Sorted, keeping the first of each run of equal keys: numpy 2's np.unique hashes int64 keys,
        # many times slower than sorting them at a few million edges.
        order = np.argsort(key, kind="stable") if weights is not None else None
        ordered = key[order] if order is not None else np.sort(key)
        first = np.ones(len(key), dtype=bool)
        np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
        keys = ordered[first]
        if order is not None:
            given = np.asarray(weights, np.float64)
            weights = given[order[first]]  # each edge's weight where it first appears
            edge_of = np.empty(len(key), dtype=np.int64)  # the edge each given pair is
            edge_of[order] = np.cumsum(first) - 1
            if (given != weights[edge_of]).any():
                raise ValueError("an edge appears twice with different weights")
        low, high = keys // n, keys % n  # the edges (low < high), sorted by low, then high
        und = np.stack([low, high], axis=1)
        # Node s's neighbours in order are the lows of its edges as the high end (all below s), then the
        # highs of its edges as the low end (all above s). The edges are sorted by low, so the second
        # group is in order as it stands, and a stable sort by high puts the first in order: two
        # scatters then fill the rows, with no sort of all 2m arcs.
        below, above = np.bincount(high, minlength=n), np.bincount(low, minlength=n)
        indptr, low_start, high_start = (np.zeros(n + 1, dtype=np.int64) for _ in range(3))
        np.cumsum(below + above, out=indptr[1:])
        np.cumsum(above, out=low_start[1:])  # where each node's edges as the low end begin in `keys`
        np.cumsum(below, out=high_start[1:])  # ... and as the high end, in `keys` sorted by high
        rank = np.arange(len(keys), dtype=np.int64)
        as_low = indptr[low] + below[low] + (rank - low_start[low])
        by_high = np.argsort(high, kind="stable")
        ends = high[by_high]
        as_high = np.empty(len(keys), dtype=np.int64)
        as_high[by_high] = indptr[ends] + (rank - high_start[ends])
        indices = np.empty(2 * len(keys), dtype=np.int64)
        indices[as_low], indices[as_high] = high, low
        arc = None
        if weights is not None:
            arc = np.empty(2 * len(keys), dtype=np.float64)
            arc[as_low], arc[as_high] = weights, weights
        return cls(n=n, indptr=indptr, indices=indices, edges=und, weights=weights, arc_weights=arc)

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
    k: int = Field(default=6, ge=2, description="neighbours of each node in the ring lattice (even: k/2 a side)")
    p: float = Field(default=0.1, ge=0.0, le=1.0)

    @field_validator("k")
    @classmethod
    def _even(cls, k: int) -> int:
        if k % 2:
            raise ValueError(f"must be even (k/2 neighbours on each side of the ring), got {k}")
        return k


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


def build_graph(config: GraphConfig, n: int, seed: int, persona_ids: list[str] | None = None) -> SocialGraph:
    """The run's graph over agents 0..n-1. `seed` is an integer derived from the root seed."""
    match config:
        case Complete():
            return SocialGraph.complete_graph(n)
        case ErdosRenyi(p=p):
            return SocialGraph.from_edges(n, erdos_renyi_edges(n, p, seed))
        case WattsStrogatz(k=k, p=p):
            if k >= n:
                raise ValueError(f"graph.k={k} must be smaller than population.size={n}")
            return SocialGraph.from_edges(n, watts_strogatz_edges(n, k, p, seed))
        case BarabasiAlbert(m=m):
            if m >= n:
                raise ValueError(f"graph.m={m} must be smaller than population.size={n}")
            return SocialGraph.from_edges(n, barabasi_albert_edges(n, m, seed))
        case StochasticBlock(blocks=b, p_in=p_in, p_out=p_out):
            if b > n:
                raise ValueError(f"graph.blocks={b} is more than population.size={n}")
            sizes = [n // b] * b
            sizes[-1] += n - sum(sizes)
            return SocialGraph.from_edges(n, block_model_edges(sizes, p_in, p_out, seed))
        case EdgeList(path=path):
            ids = persona_ids if persona_ids is not None else [str(i) for i in range(n)]
            edges, weights = load_edge_list(path, ids)
            try:
                return SocialGraph.from_edges(n, edges, weights)
            except ValueError as exc:
                raise EdgeListError(f"edge list {path}: {exc}") from None
    raise AssertionError(f"unhandled graph kind {config.kind}")


# source, target and an optional weight, separated by commas and/or white space; `#` starts a comment
_LINE = r"^\s*([^,\s]+)[,\s]+([^,\s]+)(?:[,\s]+([^,\s]+))?[,\s]*$"


def load_edge_list(path: str | Path, persona_ids: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Parse an edge list into agent-index pairs and, when it has a third column, edge weights.

    A first line whose two fields are both unknown ids (e.g. `source,target`) is a header. Unknown ids,
    self-loops, malformed lines, non-numeric weights and a weight column present on some lines only
    are refused with the file and line number. Vectorised (polars): a million edges parse in a second."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise EdgeListError(f"edge list {path}: not a text file ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise EdgeListError(f"edge list {path}: cannot be read ({exc.strerror})") from None
    if "\x00" in text:
        raise EdgeListError(f"edge list {path}: not a text file (it holds NUL bytes)")
    lines = pl.DataFrame({"raw": text.splitlines()}).with_row_index("line", offset=1)
    lines = lines.with_columns(pl.col("raw").str.replace(r"#.*$", "").str.strip_chars().alias("text"))
    lines = lines.filter(pl.col("text") != "")
    if lines.height == 0:
        raise EdgeListError(f"edge list {path}: no edges")
    parts = lines.with_columns(pl.col("text").str.extract_groups(_LINE).alias("f")).unnest("f")
    parts = parts.rename({"1": "a", "2": "b", "3": "w"}).with_columns(pl.col("a", "b").str.strip_chars('"'))
    bad = parts.filter(pl.col("a").is_null())
    if bad.height:
        row = bad.row(0, named=True)
        raise EdgeListError(f"edge list {path}, line {row['line']}: expected two node ids, got {row['raw'].strip()!r}")
    index = pl.DataFrame(
        {"id": pl.Series(persona_ids, dtype=pl.String), "i": pl.int_range(len(persona_ids), eager=True)}
    )
    parts = parts.join(index.rename({"id": "a", "i": "u"}), on="a", how="left", maintain_order="left")
    parts = parts.join(index.rename({"id": "b", "i": "v"}), on="b", how="left", maintain_order="left")
    if parts["u"][0] is None and parts["v"][0] is None:
        parts = parts.slice(1)  # a header line (source,target[,weight])
        if parts.height == 0:
            raise EdgeListError(f"edge list {path}: no edges")
    unknown = parts.filter(pl.col("u").is_null() | pl.col("v").is_null())
    if unknown.height:
        row = unknown.row(0, named=True)
        node = row["a"] if row["u"] is None else row["b"]
        raise EdgeListError(f"edge list {path}, line {row['line']}: unknown node id {node!r}")
    loops = parts.filter(pl.col("u") == pl.col("v"))
    if loops.height:
        row = loops.row(0, named=True)
        raise EdgeListError(f"edge list {path}, line {row['line']}: self-loop on node {row['a']!r}")
    edges = parts.select("u", "v").to_numpy().astype(np.int64)
    has_weight = parts["w"].is_not_null()
    if not has_weight.any():
        return edges, None
    if not has_weight.all():
        row = parts.filter(pl.col("w").is_null()).row(0, named=True)
        raise EdgeListError(f"edge list {path}, line {row['line']}: no weight, though other lines have one")
    weights = parts["w"].cast(pl.Float64, strict=False)
    bad_weight = parts.filter(weights.is_null() | ~weights.is_finite())
    if bad_weight.height:
        row = bad_weight.row(0, named=True)
        raise EdgeListError(f"edge list {path}, line {row['line']}: weight {row['w']!r} is not a finite number")
    return edges, weights.to_numpy()
