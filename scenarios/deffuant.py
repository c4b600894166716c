"""Deffuant–Weisbuch bounded confidence (Deffuant, Neau, Amblard & Weisbuch 2000) on a social graph.

Pairs of neighbours meet; where their positions on a dimension differ by less than the listener's
ε, each moves μ of the way towards the other. Which pairs meet is `pairing`:
- `matching` (the default): a step is `matchings_per_step` random matchings along edges, applied one
  after another: a matching on the complete graph is ⌊n/2⌋ disjoint pairs (N=1000: 500 pair draws, so
  a step is 5,000 draws and the literature's 10^6 draws are 200 steps); on other graphs about n/4
  pairs (see `bounded_confidence.random_matching`). An agent meets at most one partner per matching,
  so on a heterogeneous graph a hub meets about as often as a leaf.
- `edge`: a step is `matchings_per_step` x ⌊n/2⌋ meetings, each a uniformly random edge, applied in
  sequence (a hub meets in proportion to its degree);
- `node`: the same number of meetings, each a uniformly random agent and a uniformly random neighbour
  of it (ndlib's and most papers' rule; a hub meets about as often as anyone, so less per edge).
On a complete graph `edge` and `node` are the same draw (a uniformly random pair). The run stops early
once no agent still hears a neighbour more than `tolerance` away (nothing can change any more).

Interaction rows (with `record_interactions=true`): two per pair and dimension; `round` numbers the
matchings of a step (under `edge`/`node`: the layers of disjoint pairs the sequence is applied in).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field

from scenarios import bounded_confidence as bc
from scenarios.opinion_dynamics import OpinionConfig, OpinionWorld, RuleDrivenOpinions


class DeffuantConfig(OpinionConfig):
    name: Literal["deffuant"] = "deffuant"
    mu: float = Field(default=0.5, gt=0.0, le=0.5, description="convergence rate")
    pairing: bc.Pairing = Field(default="matching", description="matching | edge | node: which pairs meet")
    matchings_per_step: int = Field(default=10, ge=1, le=10_000)
    max_steps: int = Field(default=5000, ge=1)


class Deffuant(RuleDrivenOpinions):
    name = "deffuant"
    Config = DeffuantConfig
    strict = True
    config: DeffuantConfig

    def apply_rule(self, world: OpinionWorld, rng: np.random.Generator, tables: dict[str, pl.DataFrame]) -> dict:
        _, graph = self._bound()
        c = self.config
        movable = self.movable_or_none()
        if not c.record_interactions:  # the same positions, without keeping what each pair did
            pairs = bc.meetings(graph, rng, c.matchings_per_step, c.pairing)
            return {"pairs": float(bc.deffuant_advance(world.positions, pairs, world.eps, c.mu, movable))}
        updates = bc.deffuant_step(
            world.positions, graph, world.eps, c.mu, rng, c.matchings_per_step, movable, c.pairing
        )
        tables["interactions"] = pl.concat([self._pair_rows(r, u) for r, u in enumerate(updates)])
        return {"pairs": float(sum(len(u.u) for u in updates))}

    def _pair_rows(self, round_: int, up: bc.PairUpdate) -> pl.DataFrame:
        """Two rows per pair and dimension: u listening to v, then v listening to u."""
        m, d = up.before_u.shape
        return self.rows(
            phase="listen",
            round_=np.full(2 * m * d, round_, np.int32),
            speaker=np.repeat(np.concatenate([up.v, up.u]), d),
            listener=np.repeat(np.concatenate([up.u, up.v]), d),
            dim=np.tile(np.arange(d), 2 * m),
            heard=np.concatenate([up.u_heard_v, up.v_heard_u]).ravel(),
            speaker_position=np.concatenate([up.before_v, up.before_u]).ravel(),
            before=np.concatenate([up.before_u, up.before_v]).ravel(),
            after=np.concatenate([up.after_u, up.after_v]).ravel(),
        )
