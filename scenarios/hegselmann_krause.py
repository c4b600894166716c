"""Hegselmann–Krause bounded confidence (Hegselmann & Krause 2002) on a social graph.

A step is one synchronous update: every agent moves to the mean position of itself and the
neighbours within its ε (|x_i − x_j| ≤ ε_i) on each dimension. Complete graphs use the exact
sorted-window form (O(n log n)). The run stops early once no agent still hears a neighbour more than
`tolerance` away.

Interaction rows (with `record_interactions=true`): one per directed edge and dimension per step.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field

from scenarios import bounded_confidence as bc
from scenarios.opinion_dynamics import OpinionConfig, OpinionWorld, RuleDrivenOpinions


class HegselmannKrauseConfig(OpinionConfig):
    name: Literal["hegselmann_krause"] = "hegselmann_krause"
    max_steps: int = Field(default=1000, ge=1)


class HegselmannKrause(RuleDrivenOpinions):
    name = "hegselmann_krause"
    Config = HegselmannKrauseConfig
    strict = False
    config: HegselmannKrauseConfig

    def apply_rule(self, world: OpinionWorld, rng: np.random.Generator, tables: dict[str, pl.DataFrame]) -> dict:
        _, graph = self._bound()
        before = world.positions
        world.positions = bc.hk_step(before, graph, world.eps, self.movable_or_none())
        if self.config.record_interactions:
            listener, speaker = bc.directed_edges(graph)
            d = before.shape[1]
            dist = np.abs(before[speaker] - before[listener])
            tables["interactions"] = self.rows(
                phase="listen",
                round_=np.zeros(len(listener) * d, np.int32),
                speaker=np.repeat(speaker, d),
                listener=np.repeat(listener, d),
                dim=np.tile(np.arange(d), len(listener)),
                heard=(dist <= world.eps[listener, None]).ravel(),
                speaker_position=before[speaker].ravel(),
                before=before[listener].ravel(),
                after=world.positions[listener].ravel(),
            )
        return {}
