"""LLM backends: an OpenAI-compatible async client (vLLM or any compatible API), a managed vLLM
server, a durable response cache with replay, and the LLM policy that turns DecisionBatches into
Decisions (missing, with a reason, where no valid answer could be had).

The engine wraps a run in `serving(config)`, checks the scenario's longest prompts with
`sim.backends.context.check_context` before step 0, and builds one `LLMPolicy` per process that
decides. `BackendOutage` means the server stayed down: checkpoint and stop, resumable.
`redact_url`/`redact_text` strip credentials from anything printed or recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from sim.backends.config import BackendConfig
from sim.backends.errors import BackendError, BackendOutage
from sim.backends.redact import redact_text, redact_url

__all__ = ["BackendConfig", "BackendError", "BackendOutage", "redact_text", "redact_url", "serving"]


@contextmanager
def serving(config: BackendConfig, models: Iterable[str | None] = (None,)) -> Iterator[BackendConfig]:
    """Make the configured backend available for the block; yields the config with its base_url.

    kind none: nothing to do. mode replay: answers come from the cache, no server is needed.
    launch=true: start a vLLM server (serving the default model and every model of backend.models
    without endpoints of its own) and stop it on every exit path (normal, exception, Ctrl-C).
    Then check before step 0 that the endpoints of each model the run uses (`models`: keys of
    backend.models, None for the default model) answer and serve it."""
    if config.kind == "none" or config.mode == "replay":
        yield config
        return
    from sim.backends.client import quiet_http_loggers  # imports openai: only when a server is used
    from sim.backends.server import managed_server, preflight

    quiet_http_loggers()

    models = list(dict.fromkeys(models))
    if config.launch:
        with managed_server(config) as base_url:
            resolved = config.model_copy(update={"base_url": base_url})
            for key in models:
                preflight(resolved.for_model(key))
            yield resolved
        return
    for key in models:
        preflight(config.for_model(key))
    yield config
