"""Rows as plain columns: what a scenario may hand the engine instead of a DataFrame, so that a step's
records cost no DataFrame at all (a part is built once from many steps' columns, on the recorder's
writer thread).

    Rows(2 * m, {"round": Const(t + 1), "actor_id": actors, "action": Codes(moves, ("J", "F"))})

A column is one of:
- a numpy array (numbers or booleans; an object array of str/None for free text). A NaN in a float
  column is recorded as null: a value that is not there;
- `Codes(codes, labels)`: text as small integer codes into a few labels (-1: null). Written as a
  dictionary-encoded column, so "J"/"F" or a policy name is never re-encoded row by row;
- `Const(value)`: the same value in every row (None, or a float NaN: null in every row). Written once
  per part, as a one-entry dictionary (a boolean as a column of bits, which Parquet stores compactly).
Types are the table's declared ones (the recorder casts); a column read back is the same as if it had
been written from a DataFrame with those values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl


@dataclass(frozen=True)
class Codes:
    """Text as codes into `labels` (-1: null)."""

    codes: np.ndarray
    labels: tuple[str | None, ...]

    def __len__(self) -> int:
        return len(self.codes)

    def series(self, name: str) -> pl.Series:
        codes = pl.Series(np.asarray(self.codes, np.int64))
        return pl.Series(name, self.labels, dtype=pl.String).gather(codes.replace(-1, None))


@dataclass(frozen=True)
class Const:
    """One value in every row (None: null)."""

    value: Any


Column = np.ndarray | Codes | Const


class Rows:
    """n rows as named columns (see the module docstring). Cheap to build, to extend and to buffer."""

    __slots__ = ("columns", "height")

    def __init__(self, height: int, columns: Mapping[str, Column]) -> None:
        self.height = int(height)
        self.columns: dict[str, Column] = dict(columns)
        for name, column in self.columns.items():
            if not isinstance(column, Const) and len(column) != self.height:
                raise ValueError(f"column {name!r} has {len(column)} rows, expected {self.height}")

    def __len__(self) -> int:
        return self.height

    def with_columns(self, columns: Mapping[str, Column]) -> Rows:
        out = Rows(self.height, columns)  # checks the new columns only
        out.columns = {**self.columns, **out.columns}
        return out

    def take(self, index: np.ndarray) -> Rows:
        """The rows at `index` (non-negative positions)."""
        return self._pick(index, len(index))

    def slice(self, offset: int, length: int) -> Rows:
        """`length` rows from `offset` on, as views (no copy); as polars' `DataFrame.slice`."""
        return self._pick(slice(offset, offset + length), max(0, min(length, self.height - offset)))

    def _pick(self, where: np.ndarray | slice, height: int) -> Rows:
        picked: dict[str, Column] = {}
        for name, column in self.columns.items():
            if isinstance(column, Const):
                picked[name] = column
            elif isinstance(column, Codes):
                picked[name] = Codes(column.codes[where], column.labels)
            else:
                picked[name] = column[where]
        return Rows(height, picked)

    def frame(self, schema: Mapping[str, pl.DataType] | None = None) -> pl.DataFrame:
        """The rows as a DataFrame (columns cast to `schema` where it names them)."""
        schema = schema or {}
        series = [_series(name, column, self.height, schema.get(name)) for name, column in self.columns.items()]
        return pl.DataFrame(series, height=self.height) if series else pl.DataFrame(height=self.height)

    def equals(self, other: Any) -> bool:
        """Same rows, column by column (as DataFrames: NaN-as-null and codes compared by their text)."""
        return isinstance(other, Rows) and self.frame().equals(other.frame())

    @staticmethod
    def concat(parts: Sequence[Rows]) -> Rows:
        """Rows of several steps one after another (columns in the first part's order)."""
        if len(parts) == 1:
            return parts[0]
        names = list(parts[0].columns)
        for part in parts[1:]:
            if list(part.columns) != names:
                raise ValueError(f"cannot stack rows with columns {list(part.columns)} under {names}")
        height = sum(p.height for p in parts)
        heights = [p.height for p in parts]
        return Rows(height, {name: _stack([p.columns[name] for p in parts], heights) for name in names})


def _series(name: str, column: Column, height: int, dtype: pl.DataType | None) -> pl.Series:
    if isinstance(column, Const):
        value = None if isinstance(column.value, float) and math.isnan(column.value) else column.value
        series = pl.repeat(value, height, dtype=dtype, eager=True).alias(name)
    elif isinstance(column, Codes):
        series = column.series(name)
    elif column.dtype == object:
        series = pl.Series(name, column.tolist(), dtype=dtype or pl.String)
    else:
        series = pl.Series(name, column, nan_to_null=column.dtype.kind == "f")
    return series if dtype is None or series.dtype == dtype else series.cast(dtype, strict=True)


def _stack(columns: list[Column], heights: list[int]) -> Column:
    """One column from several parts' (constant if they all hold the same constant). Thousands of small
    steps may make one part, so the common shapes are stacked with one numpy call each."""
    first = columns[0]
    kinds = {type(c) for c in columns}
    if kinds == {Const}:
        values = [c.value for c in columns]  # type: ignore[union-attr]
        if all(_same(v, values[0]) for v in values):
            return first
        if not any(v is None or isinstance(v, str) for v in values):
            return np.repeat(np.array(values), heights)  # e.g. the step, or a round number
    if kinds == {Codes} and all(c.labels is first.labels or c.labels == first.labels for c in columns):  # type: ignore[union-attr]
        return Codes(np.concatenate([c.codes for c in columns]), first.labels)  # type: ignore[union-attr]
    if kinds == {np.ndarray}:
        return np.concatenate(columns)  # type: ignore[arg-type]
    if kinds <= {Codes, Const}:
        labels: list[str | None] = []
        for c in columns:
            for label in c.labels if isinstance(c, Codes) else (c.value,):  # type: ignore[union-attr]
                if label is not None and label not in labels:
                    labels.append(label)
        if all(isinstance(label, str) for label in labels):
            where = {label: i for i, label in enumerate(labels)}
            codes = []
            for c, h in zip(columns, heights, strict=True):
                if isinstance(c, Const):
                    codes.append(np.full(h, -1 if c.value is None else where[c.value], np.int32))
                else:
                    remap = np.array([-1 if label is None else where[label] for label in c.labels] + [-1], np.int32)  # type: ignore[union-attr]
                    codes.append(remap[c.codes])  # type: ignore[union-attr]  # code -1 reads the last entry: null
            return Codes(np.concatenate(codes), tuple(labels))
    return np.concatenate([_array(c, h) for c, h in zip(columns, heights, strict=True)])


def _array(column: Column, height: int) -> np.ndarray:
    if isinstance(column, Const):
        value = column.value
        if value is None:
            return np.full(height, None, object)
        return np.full(height, value, object if isinstance(value, str) else None)
    if isinstance(column, Codes):
        labels = np.array([*column.labels, None], object)
        return labels[column.codes]
    return column


def _same(a: Any, b: Any) -> bool:
    return a is b or (type(a) is type(b) and a == b)
