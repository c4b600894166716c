"""The one exception the backend raises for problems a user must fix (the CLI prints it as one line)."""

from __future__ import annotations


class BackendError(ValueError):
    """Server unreachable, model not served, managed server failed to start, replay cache miss."""
