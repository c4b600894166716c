"""A part written from rows given as columns reads back as the same table a DataFrame would give,
whichever encoding each column gets (dictionary, delta or plain)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios.rows import Codes, Const, Rows
from sim.parts import DELTA, DICTIONARY, PLAIN, number_encoding, write_rows

SCHEMA = pl.Schema({
    "run_id": pl.String(), "step": pl.Int64(), "actor_id": pl.Int64(), "action": pl.String(),
    "payoff": pl.Float64(), "flipped": pl.Boolean(), "model": pl.String(), "note": pl.String(),
    "match_id": pl.Int64(), "score": pl.Float64(), "tokens": pl.Int32(),
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
        "payoff": Const(float("nan")) if draw(st.booleans()) and n % 4 == 0 else payoff,  # a NaN: null
        "flipped": Const(False) if draw(st.booleans()) else rng.random(n) < 0.5,
        "model": {"const": Const("m-a"), "none": Const(None),
                  "codes": Codes(rng.integers(-1, 2, n).astype(np.int16), (None, "m-b"))}[model],
        "note": np.array([None if i % 3 else f"n{i}" for i in range(n)], object),
        "match_id": np.sort(rng.integers(-3, 40, n)),  # never decreasing: delta-encoded
        "score": rng.choice([0.0, 1.0, 3.0, 5.0, np.nan], n),  # few distinct: a dictionary
        "tokens": Const(draw(st.sampled_from([None, 0, 7]))),
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


def test_each_column_gets_the_encoding_that_fits_what_it_holds():
    few = np.tile([0.0, 3.0, 5.0], 2_000)
    assert number_encoding(np.arange(10_000) // 7) == DELTA  # never decreasing
    assert number_encoding(few) == DICTIONARY
    assert number_encoding(np.random.default_rng(1).random(10_000)) == PLAIN
    assert number_encoding(np.random.default_rng(1).integers(0, 1_000_000, 10_000)) == PLAIN
    assert number_encoding(np.array([], np.int64)) == PLAIN


def test_a_large_part_is_written_with_its_chosen_encodings(tmp_path):
    n = 50_000
    rng = np.random.default_rng(2)
    rows = Rows(n, {
        "run_id": Const("r1"), "step": Const(3), "actor_id": rng.integers(0, 10**9, n),
        "action": Codes(rng.integers(0, 2, n).astype(np.int8), LABELS), "payoff": rng.choice([0.0, 5.0], n),
        "flipped": rng.random(n) < 0.5, "model": Const(None), "note": np.full(n, None, object),
        "match_id": np.arange(n) // 2, "score": rng.random(n), "tokens": Const(0),
    })  # fmt: skip
    path = tmp_path / "part.parquet"
    write_rows(path, [rows], SCHEMA)
    columns = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {columns.column(i).path_in_schema: set(columns.column(i).encodings) for i in range(len(SCHEMA))}
    assert "DELTA_BINARY_PACKED" in encodings["match_id"]
    assert "RLE_DICTIONARY" in encodings["payoff"] and "RLE_DICTIONARY" in encodings["step"]
    assert "RLE_DICTIONARY" not in encodings["actor_id"] and "RLE_DICTIONARY" not in encodings["score"]
    statistics = {columns.column(i).path_in_schema: columns.column(i).is_stats_set for i in range(len(SCHEMA))}
    assert statistics["step"] and statistics["match_id"] and not statistics["action"]
    assert pl.read_parquet(path).equals(rows.frame(SCHEMA))
