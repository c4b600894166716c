"""One colour (and marker) per hue value, fixed for a whole report.

Matplotlib colours lines in the order they are drawn, so the same policy would be blue in one figure
and orange in the next whenever the figures hold different sets of policies. A `Palette` gives each
value (a policy, a strategy kind, a dimension) its colour once and keeps it: the report builds one,
seeded with the runs' policies in sorted order, and passes it to every figure. A figure drawn alone
gets a fresh palette, seeded with its own values in sorted order, so it is deterministic too.

The first ten colours are matplotlib's tab10 (the most distinct); the next ten are tab20's light
shades. Beyond twenty values colours repeat, and the marker changes with each round of twenty, so
no two values share both.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from matplotlib import colormaps

_TAB20 = colormaps["tab20"].colors
COLOURS: tuple[tuple[float, float, float], ...] = tuple(_TAB20[0::2]) + tuple(_TAB20[1::2])
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


class Palette:
    """Value -> colour and marker, assigned in order of first appearance and never changed."""

    def __init__(self, values: Iterable[Hashable] = ()) -> None:
        self._index: dict[str, int] = {}
        self.add(values)

    def add(self, values: Iterable[Hashable]) -> Palette:
        """Give every new value the next free colour, in sorted order (so the order of `values` does not matter)."""
        for value in sorted({_key(v) for v in values}):
            self._index.setdefault(value, len(self._index))
        return self

    def colour(self, value: Hashable) -> tuple[float, float, float]:
        return COLOURS[self._slot(value) % len(COLOURS)]

    def marker(self, value: Hashable) -> str:
        return MARKERS[(self._slot(value) // len(COLOURS)) % len(MARKERS)]

    def style(self, value: Hashable) -> dict[str, object]:
        """Keyword arguments for `ax.plot`/`ax.errorbar`: colour and marker of `value`."""
        return {"color": self.colour(value), "marker": self.marker(value)}

    def _slot(self, value: Hashable) -> int:
        return self._index.setdefault(_key(value), len(self._index))

    def __contains__(self, value: Hashable) -> bool:
        return _key(value) in self._index

    def __len__(self) -> int:
        return len(self._index)


def _key(value: Hashable) -> str:
    """Values are compared as text: the policy "llm" from one table and from another are one value."""
    return "null" if value is None else str(value)


def palette_for(values: Iterable[Hashable], palette: Palette | None) -> Palette:
    """The report's palette (extended by any value it has not seen), or a new one for a figure drawn alone."""
    return palette.add(values) if palette is not None else Palette(values)
