"""LLM backends: an OpenAI-compatible async client (vLLM or any compatible API), a managed vLLM
server, a durable response cache with replay, and the LLM policy that turns DecisionBatches into
Decisions.

The engine wraps a run in `serving(config)` and builds one `LLMPolicy` per process that decides.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sim.backends.config import BackendConfig
from sim.backends.errors import BackendError

__all__ = ["BackendConfig", "BackendError", "serving"]


@contextmanager
def serving(config: BackendConfig) -> Iterator[BackendConfig]:
    """Make the configured backend available for the block; yields the config with its base_url.

    kind none: nothing to do. mode replay: answers come from the cache, no server is needed.
    launch=true: start a vLLM server and stop it on every exit path (normal, exception, Ctrl-C).
    Otherwise check before step 0 that the endpoints answer and serve `model`."""
    if config.kind == "none" or config.mode == "replay":
        yield config
        return
    from sim.backends.server import managed_server, preflight  # imports openai: only when a server is used
    if config.launch:
        with managed_server(config) as base_url:
            resolved = config.model_copy(update={"base_url": base_url})
            preflight(resolved)
            yield resolved
        return
    preflight(config)
    yield config
