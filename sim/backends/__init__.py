"""LLM backends. (Placeholder until the backend lands: only `kind: none`.)"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sim.backends.config import BackendConfig
from sim.backends.errors import BackendError

__all__ = ["BackendError", "serving"]


@contextmanager
def serving(config: BackendConfig) -> Iterator[BackendConfig]:
    yield config
