"""The one exception family of analysis/, so callers can tell bad input from a bug."""

from __future__ import annotations


class AnalysisError(Exception):
    """Bad input to analysis: a missing or foreign file, a table a metric needs but the run lacks."""


class MissingTableError(AnalysisError, KeyError):
    """A table (interactions, states, ...) that no loaded run recorded."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
