"""The one exception family of analysis/, so callers can tell bad input from a bug.

`AnalysisError` is defined beside the metric helpers (`scenarios.tables`), since the metrics a
scenario declares raise it too."""

from __future__ import annotations

from scenarios.tables import AnalysisError


class MissingTableError(AnalysisError, KeyError):
    """A table (interactions, states, ...) that no loaded run recorded."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


__all__ = ["AnalysisError", "MissingTableError"]
