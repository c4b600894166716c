"""How a part of rows given as columns (`scenarios.rows.Rows`) becomes a Parquet file.

The recorder buffers a table's rows step by step and writes them as a part once enough accumulate;
for rows given as columns the part is built here, on the recorder's writer thread, and written with
pyarrow: text held as codes and text the same in every row are dictionary-encoded (so a run id, a
policy name or a move is stored once per part and referred to by a small integer, not re-encoded row
by row); numbers, constant ones included, are plain columns, handed over without a copy where their
type is already the declared one. The file's schema is the table's declared one
(Arrow's own schema is not stored, so a reader sees plain String columns, exactly as if the part had
been written from a DataFrame holding the same values).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from scenarios.rows import Codes, Column, Const, Rows

COMPRESSION = "zstd"


@cache
def arrow_type(dtype: pl.DataType) -> pa.DataType:
    """The Arrow type a declared polars type is written as."""
    if dtype == pl.String:
        return pa.large_string()
    return pl.Series([], dtype=dtype).to_arrow().type


def _text_dictionary(labels: tuple[str | None, ...]) -> tuple[pa.Array, np.ndarray]:
    """The non-null labels as a dictionary, and where each label goes in it (-1: null)."""
    kept = [label for label in labels if label is not None]
    where = np.array([-1 if label is None else kept.index(label) for label in labels] + [-1], np.int32)
    return pa.array(kept, pa.large_string()), where


def arrow_column(column: Column, height: int, dtype: pl.DataType, name: str) -> pa.Array:
    """One column of a part as an Arrow array of the declared type (dictionary-encoded for text codes
    and constant text)."""
    target = arrow_type(dtype)
    if isinstance(column, Const):
        if column.value is None:
            return pa.nulls(height, target)
        if dtype == pl.String:
            return pa.DictionaryArray.from_arrays(pa.array(np.zeros(height, np.int8)), pa.array([column.value], target))
        return pa.array(np.full(height, column.value, dtype=target.to_pandas_dtype()), target)
    if isinstance(column, Codes):
        if dtype != pl.String:
            raise TypeError(f"column {name!r}: text codes for a {dtype} column")
        dictionary, where = _text_dictionary(column.labels)
        codes = where[np.asarray(column.codes, np.int64)] if (where[:-1] != np.arange(len(column.labels))).any() else (
            np.asarray(column.codes, np.int32)
        )  # fmt: skip
        return pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), dictionary)
    array = np.asarray(column)
    if array.dtype == object:
        return pa.array(array, target, from_pandas=True)
    if dtype == pl.String:
        raise TypeError(f"column {name!r}: {array.dtype} values for a String column")
    array = np.asarray(array, dtype=target.to_pandas_dtype())  # numpy casts (no pyarrow.compute needed)
    return pa.array(array, target, from_pandas=array.dtype.kind == "f")  # a NaN is recorded as null


def arrow_table(rows: Rows, schema: pl.Schema) -> pa.Table:
    """The rows as an Arrow table of exactly the declared columns, in the declared order."""
    columns = [arrow_column(rows.columns[name], rows.height, dtype, name) for name, dtype in schema.items()]
    return pa.Table.from_arrays(columns, names=list(schema))


def write_rows(path: Path, parts: list[Rows], schema: pl.Schema) -> None:
    """Write buffered rows (one or more steps' worth) as one Parquet file at `path`."""
    table = arrow_table(Rows.concat(parts), schema)
    # dictionaries for text only: trying one on every numeric column (ids, payoffs) costs a quarter of
    # the write and, where the values are many, is abandoned for plain encoding anyway
    text = [name for name, dtype in schema.items() if dtype == pl.String]
    pq.write_table(table, path, compression=COMPRESSION, store_schema=False, use_dictionary=text)
