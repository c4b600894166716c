"""The world between two steps as plain data, so a checkpoint is the data itself.

A scenario's world is a dataclass derived from `World` whose fields are numpy arrays (numbers,
booleans, or 1-D text with None), scalars (int, float, bool, str, None), lists of those, or nested
`World` dataclasses. `state()` splits it into arrays and JSON-able values and `from_state` builds it
back, exactly: no pickling, so a checkpoint stays readable by any later version that keeps the fields.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Self

import numpy as np

Arrays = dict[str, np.ndarray]
Data = dict[str, Any]
_TEXT = "__text__"  # marks a 1-D object (text) array stored in the JSON part


class WorldStateError(TypeError):
    """A world field that is not plain data (a scenario bug: the world could not be checkpointed)."""


@dataclasses.dataclass
class World:
    """Base of every scenario's world (see the module docstring for what a field may hold)."""

    def state(self) -> tuple[Arrays, Data]:
        """(arrays by dotted field name, JSON-able values by dotted field name)."""
        arrays: Arrays = {}
        data: Data = {}
        self._split("", arrays, data)
        return arrays, data

    def _split(self, prefix: str, arrays: Arrays, data: Data) -> None:
        for f in dataclasses.fields(self):
            key, value = prefix + f.name, getattr(self, f.name)
            if isinstance(value, World):
                value._split(key + ".", arrays, data)
            elif isinstance(value, np.ndarray) and value.dtype != object:
                arrays[key] = value
            elif isinstance(value, np.ndarray):
                if value.ndim != 1 or not all(v is None or isinstance(v, str) for v in value):
                    raise WorldStateError(f"{type(self).__name__}.{f.name}: object arrays must be 1-D text or None")
                data[key] = {_TEXT: value.tolist()}
            elif _plain(value):
                data[key] = list(value) if isinstance(value, tuple) else value
            else:
                raise WorldStateError(f"{type(self).__name__}.{f.name}: {type(value).__name__} is not plain data")

    @classmethod
    def from_state(cls, arrays: Arrays, data: Data, prefix: str = "") -> Self:
        """The world `state()` described (arrays are copied, so the caller's buffers stay untouched)."""
        values = {}
        for f in dataclasses.fields(cls):
            key = prefix + f.name
            nested = _world_type(cls, f)
            if nested is not None and (key in data or any(k.startswith(key + ".") for k in (*arrays, *data))):
                values[f.name] = nested.from_state(arrays, data, key + ".") if data.get(key, ...) is not None else None
            elif key in arrays:
                values[f.name] = np.array(arrays[key], copy=True)
            elif key in data:
                values[f.name] = _restore(data[key])
        return cls(**values)

    def same_state(self, other: World) -> bool:
        """Equal field by field (arrays exactly, NaN equal to NaN): what a resumed run must reproduce."""
        a_arrays, a_data = self.state()
        b_arrays, b_data = other.state()
        if a_arrays.keys() != b_arrays.keys() or a_data != b_data:
            return False
        return all(
            a_arrays[k].dtype == b_arrays[k].dtype
            and np.array_equal(a_arrays[k], b_arrays[k], equal_nan=_nan_ok(a_arrays[k]))
            for k in a_arrays
        )


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return isinstance(value, (np.integer, np.floating, np.bool_))


def _restore(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {_TEXT}:
        out = np.empty(len(value[_TEXT]), dtype=object)
        out[:] = value[_TEXT]
        return out
    return value


def _nan_ok(array: np.ndarray) -> bool:
    return array.dtype.kind in "fc"


def _world_type(cls: type, f: dataclasses.Field) -> type[World] | None:
    """The World subclass a field holds, if any (read from its default or its annotation)."""
    if isinstance(f.default_factory, type) and issubclass(f.default_factory, World):  # type: ignore[misc]
        return f.default_factory
    hints = _hints(cls)
    hint = hints.get(f.name)
    for candidate in getattr(hint, "__args__", (hint,)):
        if isinstance(candidate, type) and issubclass(candidate, World):
            return candidate
    return None


def _hints(cls: type) -> dict[str, Any]:
    import sys
    import typing

    module = sys.modules.get(cls.__module__)
    try:
        return typing.get_type_hints(cls, vars(module) if module else None)
    except Exception:  # an annotation that cannot be resolved is not a World
        return {}
