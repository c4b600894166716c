"""How a part of rows given as columns (`scenarios.rows.Rows`) becomes a Parquet file.

The recorder buffers a table's rows step by step and writes them as a part once enough accumulate;
for rows given as columns the part is built here, on the recorder's writer thread, and written with
pyarrow. Each column is encoded the way that costs least to write for what it holds:
- a value the same in every row (a run id, the step, a zero token count) is a one-entry dictionary:
  stored once per part, the rows refer to it by a run of zeros (a boolean, which Parquet cannot
  dictionary-encode, is a column of bits);
- text held as codes is a dictionary too (a policy name or a move is stored once per part, not
  re-encoded row by row);
- numbers that take few distinct values (payoffs, the ids of a small population) are dictionary-
  encoded, and integers that never decrease (match ids) delta-encoded; other numbers are
  plain, handed over without a copy where their type is already the declared one.
Statistics (min/max per column) are kept for numbers, which readers use to skip parts (a filter on
the step or an id), and left out for text, where they cost about as much as writing the column.
The choice changes how a part is stored, never what it holds. The file's schema is the table's
declared one (Arrow's own schema is not stored, so a reader sees plain String columns, exactly as if
the part had been written from a DataFrame holding the same values).
"""

from __future__ import annotations

import math
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from scenarios.rows import Codes, Column, Const, Rows

COMPRESSION = "zstd"
SAMPLE = 4_096  # evenly spaced values of a number column looked at to choose its encoding
FEW_DISTINCT = 4  # a dictionary when the sample holds at most 1/FEW_DISTINCT as many distinct values
DICTIONARY, DELTA, PLAIN = "dictionary", "DELTA_BINARY_PACKED", "PLAIN"


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
    and for a value the same in every row)."""
    target = arrow_type(dtype)
    if isinstance(column, Const):
        if column.value is None or (isinstance(column.value, float) and math.isnan(column.value)):
            return pa.nulls(height, target)  # a NaN is recorded as null, as in a column of numbers
        if dtype == pl.Boolean:  # Parquet has no dictionary for booleans: bits, which cost less
            return pa.array(np.full(height, bool(column.value)), target)
        return pa.DictionaryArray.from_arrays(_only_entry(height), pa.array([column.value], target), safe=False)
    if isinstance(column, Codes):
        if dtype != pl.String:
            raise TypeError(f"column {name!r}: text codes for a {dtype} column")
        dictionary, where = _text_dictionary(column.labels)
        codes = np.asarray(column.codes)
        if codes.dtype.kind != "i" or (where[:-1] != np.arange(len(column.labels))).any():
            codes = where[codes.astype(np.int64)]  # labels renumbered around the null ones
        nulls = codes < 0 if len(codes) and codes.min() < 0 else None  # the codes are used as they are
        return pa.DictionaryArray.from_arrays(pa.array(codes, mask=nulls), dictionary)
    array = np.asarray(column)
    if array.dtype == object:
        return pa.array(array, target, from_pandas=True)
    if dtype == pl.String:
        raise TypeError(f"column {name!r}: {array.dtype} values for a String column")
    array = np.asarray(array, dtype=target.to_pandas_dtype())  # numpy casts (no pyarrow.compute needed)
    nan = array.dtype.kind == "f" and bool(np.isnan(array).any())
    return pa.array(array, target, from_pandas=nan)  # a NaN is recorded as null; without one, no copy


@lru_cache(maxsize=4)
def _only_entry(height: int) -> pa.Array:
    """`height` references to the only entry of a one-entry dictionary: one array (immutable) for all
    the constant columns of parts of this height."""
    return pa.array(np.zeros(height, np.int8))


def arrow_table(rows: Rows, schema: pl.Schema) -> pa.Table:
    """The rows as an Arrow table of exactly the declared columns, in the declared order."""
    columns = [arrow_column(rows.columns[name], rows.height, dtype, name) for name, dtype in schema.items()]
    return pa.Table.from_arrays(columns, names=list(schema))


def number_encoding(values: np.ndarray) -> str:
    """How a column of numbers is stored: DELTA for integers that never decrease (each value written
    as a small step from the last), DICTIONARY when few distinct values repeat (judged on an evenly
    spaced sample, so the choice costs a few microseconds; if the values turn out many, pyarrow falls
    back to plain on its own), else PLAIN. Depends on the values only, so the same rows give the same
    file."""
    if values.dtype.kind in "iu" and len(values) > 1 and bool(np.all(values[1:] >= values[:-1])):
        return DELTA
    if values.dtype.kind not in "iuf" or len(values) == 0:
        return PLAIN
    sample = values[:: max(1, len(values) // SAMPLE)]
    return DICTIONARY if len(np.unique(sample)) * FEW_DISTINCT <= len(sample) else PLAIN


def write_options(table: pa.Table) -> dict[str, object]:
    """pyarrow's per-column writing options for a part (see the module docstring)."""
    dictionary, encodings, statistics = [], {}, []
    for field, column in zip(table.schema, table.columns, strict=True):
        name = field.name
        if pa.types.is_dictionary(field.type) or pa.types.is_large_string(field.type):
            dictionary.append(name)  # text, or a value the same in every row
        elif pa.types.is_integer(field.type) or pa.types.is_floating(field.type):
            encoding = number_encoding(_values(column))
            if encoding == DICTIONARY:
                dictionary.append(name)
            elif encoding == DELTA:
                encodings[name] = DELTA
        text = pa.types.is_large_string(field.type) or (
            pa.types.is_dictionary(field.type) and pa.types.is_large_string(field.type.value_type)
        )
        if not text:
            statistics.append(name)
    return {"use_dictionary": dictionary, "column_encoding": encodings, "write_statistics": statistics}


def _values(column: pa.ChunkedArray) -> np.ndarray:
    """A number column's values as numpy (without a copy where it is one chunk without nulls; a null
    counts as a value of its own kind, NaN, for choosing the encoding)."""
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return array.to_numpy(zero_copy_only=False)


def write_rows(path: Path, parts: list[Rows], schema: pl.Schema) -> None:
    """Write buffered rows (one or more steps' worth) as one Parquet file at `path`."""
    table = arrow_table(Rows.concat(parts), schema)
    pq.write_table(table, path, compression=COMPRESSION, store_schema=False, **write_options(table))
