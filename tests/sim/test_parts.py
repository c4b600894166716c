"""A part written from rows given as columns reads back as the same table a DataFrame would give."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios.rows import Codes, Const, Rows
from sim.parts import write_rows

SCHEMA = pl.Schema({
    "run_id": pl.String(), "step": pl.Int64(), "actor_id": pl.Int64(), "action": pl.String(),
    "payoff": pl.Float64(), "flipped": pl.Boolean(), "model": pl.String(), "note": pl.String(),
})  # fmt: skip
LABELS = ("J", "F")


@st.composite
def steps(draw) -> Rows:
    n = draw(st.integers(0, 30))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    payoff = rng.random(n)
    payoff[rng.random(n) < 0.2] = np.nan  # recorded as null
    model = draw(st.sampled_from(["const", "none", "codes"]))
    return Rows(n, {
        "run_id": Const("r1"),
        "step": Const(draw(st.integers(0, 5))),
        "actor_id": rng.integers(0, 100, n),
        "action": Codes(rng.integers(-1, 2, n).astype(np.int8), LABELS),
        "payoff": payoff,
        "flipped": Const(False) if draw(st.booleans()) else rng.random(n) < 0.5,
        "model": {"const": Const("m-a"), "none": Const(None),
                  "codes": Codes(rng.integers(-1, 2, n).astype(np.int16), (None, "m-b"))}[model],
        "note": np.array([None if i % 3 else f"n{i}" for i in range(n)], object),
    })  # fmt: skip


@given(parts=st.lists(steps(), min_size=1, max_size=5))
@settings(max_examples=60, deadline=None)
def test_a_part_reads_back_as_the_dataframe_of_its_rows(parts, tmp_path_factory):
    path = tmp_path_factory.mktemp("part") / "part-0.parquet"
    write_rows(path, parts, SCHEMA)
    expected = pl.concat([part.frame(SCHEMA) for part in parts], how="vertical")
    read = pl.read_parquet(path)
    assert read.schema == SCHEMA
    assert read.equals(expected)
