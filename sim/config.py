"""The validated run configuration. Hydra composes YAML + overrides into a dict once, at the entry
point; `validate_config` turns it into a frozen pydantic RunConfig and nothing below sees OmegaConf."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError, model_validator

from agents.graph import GraphConfig
from agents.population import DEFAULT_MAX_TEXT_CHARS, SamplerConfig
from scenarios import ScenarioConfig, names, scenario_class
from scenarios.registry import UnknownScenarioError
from sim.backends.config import BackendConfig


class ConfigError(ValueError):
    """Bad configuration: the message is one line naming the field and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PopulationConfig(_Strict):
    """Who is in the run. `mix` maps a policy name to a count or a fraction (null: the scenario's
    default); with `mix_by: <persona column>` it maps each value of that column to such a mix."""

    size: int | None = Field(default=None, ge=2, description="null: the scenario's default, else 20")
    mix: dict[str, float] | dict[str, dict[str, float]] | None = None
    mix_by: str | None = None
    source: str | None = None
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    persona_fields: tuple[str, ...] | None = Field(
        default=None, description="persona columns prompts show in {persona_text}; null: all; []: none"
    )
    max_text_chars: int = Field(default=DEFAULT_MAX_TEXT_CHARS, ge=1, description="longest text in a persona file")

    @model_validator(mode="after")
    def _mix_shape(self) -> PopulationConfig:
        nested = self.mix is not None and any(isinstance(v, dict) for v in self.mix.values())
        if self.mix_by is not None and self.mix is not None and not nested:
            raise ValueError(
                f"with mix_by={self.mix_by} the mix maps each group to a mix, e.g. {{group: {{llm: 1.0}}}}"
            )
        if self.mix_by is None and nested:
            raise ValueError("a mix of mixes needs population.mix_by (the persona column that names the groups)")
        return self


class RunOptions(_Strict):
    """How the run executes; none of these change its results."""

    dir: str
    dry_run: bool = Field(default=False, description="print the first step's prompts and the estimate; run nothing")
    shards: int = Field(default=0, ge=0, description="0: in-process; K >= 1: K Ray actors")
    ray_address: str | None = None
    shard_cpus: float = Field(default=1.0, gt=0)
    overwrite: bool = False
    flush_rows: int = Field(
        default=500_000, ge=1, description="rows buffered per table before a write, in parts of at most this many"
    )
    progress: bool = True
    log_every: int = Field(default=1, ge=0, description="a summary line every k steps; 0 = none")
    checkpoint_every: int | None = Field(
        default=None,
        ge=0,
        description="steps between checkpoints; null: automatic (every step with LLM agents, else as often as "
        "costs at most 5% of run time); 0: only when the run is stopped",
    )
    keep_checkpoints: Literal["last", "all"] = Field(
        default="last", description="last: the newest only; all: every one (fork at any checkpointed step)"
    )
    heartbeat_s: float = Field(default=5.0, gt=0, description="seconds between the manifest's heartbeats")
    shard_restarts: int = Field(
        default=3, ge=0, description="Ray restarts of a dead shard (and retries of its task) before a replay"
    )
    max_wall_time_s: float | None = Field(
        default=None, gt=0, description="budget: seconds of stepping (across resumes); then status budget_exhausted"
    )
    record_transcripts: bool = Field(
        default=True, description="write every language-model call (messages, reply, attempts) to `transcripts`"
    )


class RunConfig(_Strict):
    seed: int = Field(ge=0, lt=2**63)
    scenario: SerializeAsAny[ScenarioConfig]
    graph: GraphConfig
    population: PopulationConfig = Field(default_factory=PopulationConfig)
    backend: BackendConfig = Field(default_factory=BackendConfig)
    run: RunOptions

    def science_dict(self) -> dict[str, Any]:
        """Everything that determines the results (not where or how fast they are computed)."""
        data = self.model_dump(mode="json")
        data.pop("run")
        backend = data.get("backend", {})
        data["backend"] = {k: backend.get(k) for k in ("kind", "model", "temperature") if k in backend}
        if self.backend.models:  # which model answers is science; where it is served is not
            data["backend"]["models"] = {
                key: {"model": view.model, "temperature": view.temperature, "choice_format": view.choice_format}
                for key in sorted(self.backend.models)
                for view in [self.backend.for_model(key)]
            }
        return data


def _format_error(exc: ValidationError, prefix: str = "", data: dict[str, Any] | None = None) -> str:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    # Drop the union tag pydantic inserts for discriminated unions (graph.erdos_renyi.p -> graph.p).
    if data and len(loc) > 1 and isinstance(data.get(loc[0]), dict) and loc[1] == data[loc[0]].get("kind"):
        del loc[1]
    field = ".".join(([prefix] if prefix else []) + loc)
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown key"
    elif err["type"] != "missing" and "input" in err and not isinstance(err["input"], (dict, list)):
        message += f" (got {err['input']!r})"
    return f"{field}: {message}" if field else message


def validate_config(data: dict[str, Any]) -> RunConfig:
    """Validate a composed config dict; raise ConfigError with one line on the first problem."""
    if not isinstance(data, dict):
        raise ConfigError("config must be a mapping")
    scenario_data = data.get("scenario")
    if not isinstance(scenario_data, dict) or "name" not in scenario_data:
        raise ConfigError("scenario: missing (choose one of: " + ", ".join(names()) + ")")
    try:
        cls = scenario_class(str(scenario_data["name"]))
    except UnknownScenarioError as exc:
        raise ConfigError(f"scenario.name: {exc}") from None
    try:
        scenario = cls.Config.model_validate(scenario_data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, "scenario")) from None
    try:
        return RunConfig.model_validate({**data, "scenario": scenario})
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, data=data)) from None


def compose(
    overrides: list[str] | None = None, config_dir: str | None = None, config_name: str = "config"
) -> RunConfig:
    """Compose the config as the CLI would (same YAML, same override syntax) and validate it.

    For notebooks and tests. `run.dir` must be given: there is no Hydra output dir here."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir, initialize_config_module

    from scenarios.registry import register_configs

    register_configs()
    overrides = list(overrides or [])
    if not any(o.startswith("run.dir=") for o in overrides):
        raise ConfigError("run.dir: required when composing outside the socsim command")
    init = (
        initialize_config_dir(config_dir=config_dir, version_base=None)
        if config_dir
        else initialize_config_module(config_module="sim.conf", version_base=None)
    )
    with init:
        try:
            cfg = hydra_compose(config_name=config_name, overrides=overrides)
        except Exception as exc:  # Hydra's composition errors (unknown key, bad override syntax)
            raise ConfigError(hydra_error_line(exc)) from None
        return validate_config(to_plain(cfg))


def hydra_error_line(exc: BaseException) -> str:
    """One line from a Hydra/OmegaConf error (they span several lines and chain their causes)."""
    lines: list[str] = []
    while exc is not None:
        lines += [line.strip() for line in str(exc).splitlines() if line.strip()]
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    key = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("full_key:")), None)
    if any("not in struct" in line for line in lines) and key:
        return f"{key}: unknown key (to add a new key use +{key}=...)"
    if any(line.startswith("Missing mandatory value") for line in lines) and key:
        return f"{key}: missing value (set {key}=...)"
    head = lines[0] if lines else "invalid configuration"
    return f"{head} ({key})" if key and key not in head else head


def to_plain(cfg: Any) -> dict[str, Any]:
    """DictConfig → dict, resolving interpolations; a missing mandatory value (???) is a ConfigError."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        raise ConfigError(hydra_error_line(exc)) from None
