"""What a scenario is: one module (and one YAML beside it) declaring the whole game.

    class Config(ScenarioConfig)        name + parameters, with their defaults (the YAML is checked against them)
    class World(World)                  plain arrays and scalars between two steps (the checkpoint)
    class Game(BaseScenario[Config, World])
        specs()                         the kinds of decision this config asks (ActionSpecs)
        prompts                         a default template per spec and the variables it may use
        prompt_variants                 named alternative template sets (`scenario.prompt_variant` picks one)
        strategies()                    scripted policies by name, vectorised over a batch
        tables                          the recorded tables and their columns
        metrics                         what analysis computes from those tables (the first is the main one)
        init / plan / resolve / done    the rules: pure, seeded functions of the world

The engine never branches on a scenario's name: it reads these declarations, checks them when a run
is prepared (every spec has a template, every template variable is bound, every policy in the mix
exists), and steps plan → decide → resolve. Scenarios never do I/O and never know about Ray or the
LLM backend.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from agents.decisions import ActionSpec, DecisionBatch, Decisions
from agents.graph import SocialGraph
from agents.population import Population
from agents.prompts import Prompt, PromptError, PromptTemplate, load_template
from scenarios.rows import Rows
from scenarios.tables import AnalysisError, Frame
from scenarios.world import World

DEFAULT_VARIANT = "default"


class ScenarioConfig(BaseModel):
    """Base of every scenario's config; subclasses narrow `name` to a Literal and add their parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    # spec name -> template file (YAML: system/user) replacing the built-in prompt; a scenario lists its
    # specs with None so that `scenario.prompts.<spec>=path` is a plain override on the command line
    prompts: dict[str, str | None] = Field(default_factory=dict)
    # which of the scenario's named template sets the prompts use ("default": its `prompts`); a robustness
    # factor a sweep can vary (`-m scenario.prompt_variant=default,mistakes`)
    prompt_variant: str = Field(default=DEFAULT_VARIANT, min_length=1)


class ScriptedPolicy(Protocol):
    """A hand-coded strategy: answers a whole batch at once with numpy (one array per spec field)."""

    def decide(self, batch: DecisionBatch) -> dict[str, np.ndarray]: ...


class TableSource(Protocol):
    """Where a metric reads recorded tables from (analysis.RunSet is one): LazyFrames stacked over runs."""

    def table(self, name: str) -> pl.LazyFrame: ...


@dataclass(frozen=True)
class Metric:
    """A number analysis computes from a scenario's records, per run (and per `x` and `hue` group).

    `compute(source)` returns one row per run_id (and x, hue): the columns run_id, [x], [hue], `name`.
    Analysis averages it over seeds with intervals and draws it by `plot`: "line" (over x, one line
    per hue), "bars" (per hue), "shares" (stacked shares of hue over x) or "table". `hold` marks a
    state measured at recorded steps: a run that stopped early keeps its last value up to the longest
    run's last step. The first metric a scenario declares is its main one (sweep reports draw it
    against each swept parameter)."""

    name: str
    description: str
    compute: Callable[[TableSource], pl.DataFrame]
    x: str | None = None
    hue: str | None = None
    plot: Literal["line", "bars", "shares", "table"] = "line"
    hold: bool = False


@dataclass
class StepResult:
    """What `resolve` returns: the next world, the rows to record, a few numbers for the progress line.

    `decision_of[table]` gives, for each row of that table, the decision it records (an index into
    the step's batches concatenated in order), or -1 for a row that records none; the engine joins
    each such row to the decision's policy, model and accounting columns.

    A table is a DataFrame, or `scenarios.rows.Rows` (plain columns, constants and text codes) where a
    step's rows are many: those cost no DataFrame per step and are written once per part.
    """

    world: Any
    tables: dict[str, pl.DataFrame | Rows] = field(default_factory=dict)
    summary: dict[str, float] = field(default_factory=dict)
    decision_of: dict[str, np.ndarray] = field(default_factory=dict)


ConfigT = TypeVar("ConfigT", bound=ScenarioConfig)
WorldT = TypeVar("WorldT", bound=World)


class BaseScenario(Generic[ConfigT, WorldT]):
    """The base every scenario derives from (see the module docstring for the shape of a scenario)."""

    name: ClassVar[str]
    Config: ClassVar[type[ScenarioConfig]]
    World: ClassVar[type[World]]
    prompts: ClassVar[Mapping[str, Prompt]] = {}
    # variant name -> {spec name -> template}: alternative wordings of some specs (the others keep the
    # default); their variables must be among the spec's declared `Prompt.variables`
    prompt_variants: ClassVar[Mapping[str, Mapping[str, PromptTemplate]]] = {}
    tables: ClassVar[Mapping[str, Mapping[str, pl.DataType]]] = {}
    metrics: ClassVar[tuple[Metric, ...]] = ()

    def __init__(self, config: ConfigT) -> None:
        self.config = config
        self.population: Population | None = None
        self.graph: SocialGraph | None = None

    # ---- declarations ---------------------------------------------------------------------------
    @classmethod
    def config_file(cls) -> Path:
        """The scenario's YAML (the Hydra `scenario/<name>` defaults): beside the module, same stem."""
        from scenarios.registry import yaml_beside

        return yaml_beside(Path(inspect.getfile(cls)), cls.name)

    def specs(self) -> dict[str, ActionSpec]:
        """Every kind of decision this configuration may ask, by spec name."""
        raise NotImplementedError

    def strategies(self) -> dict[str, ScriptedPolicy]:
        """Scripted policies usable in `population.mix`, by name (language models are added by the engine)."""
        raise NotImplementedError

    def default_mix(self) -> dict[str, float]:
        """Population mix used when the user gives none."""
        raise NotImplementedError

    def default_population_size(self) -> int | None:
        """Population size used when `population.size` is null (None: the engine's default)."""
        return None

    def variant_names(self) -> list[str]:
        """The prompt variants `scenario.prompt_variant` may name."""
        return [DEFAULT_VARIANT, *sorted(v for v in self.prompt_variants if v != DEFAULT_VARIANT)]

    def templates(self) -> dict[str, PromptTemplate]:
        """The template of every spec: the built-in one of the chosen `prompt_variant` (the default where
        the variant leaves a spec alone), or the file `scenario.prompts.<spec>` names. Raises PromptError
        (one line) for a file that cannot be used, a name that is no spec, or an unknown variant."""
        specs = self.specs()
        unknown = [name for name, path in self.config.prompts.items() if path and name not in specs]
        if unknown:
            raise PromptError(
                f"scenario.prompts.{unknown[0]}: {self.name} asks no decision of that kind "
                f"(kinds: {', '.join(sorted(specs)) or 'none'})"
            )
        variant = self.config.prompt_variant
        if variant not in self.variant_names():
            raise PromptError(
                f"scenario.prompt_variant: {self.name} has no prompt variant {variant!r} "
                f"(variants: {', '.join(self.variant_names())})"
            )
        chosen = self.prompt_variants.get(variant, {})
        out = {}
        for spec in specs:
            if spec not in self.prompts:
                raise PromptError(f"{self.name}: decisions of kind {spec!r} have no prompt template")
            default = chosen.get(spec, self.prompts[spec].template)
            path = self.config.prompts.get(spec)
            try:
                out[spec] = load_template(path, default) if path else default
            except PromptError as exc:
                raise PromptError(f"scenario.prompts.{spec}: {exc}") from None
        return out

    def prompt_variables(
        self, spec: str, obs: Mapping[str, Any], context: Mapping[str, Any], seed: int
    ) -> dict[str, Any]:
        """The values of `prompts[spec].variables` for one decision (its observation row and the
        batch's context). Pure: runs wherever the decision is asked (a Ray shard)."""
        raise NotImplementedError(f"{self.name}: no prompt for decisions of kind {spec!r}")

    @classmethod
    def cooperated(cls, frame: Frame) -> pl.Expr:
        """Boolean expression over this scenario's interactions: did the actor cooperate? (null where
        the row holds no decision). Scenarios without a notion of cooperation keep this default."""
        raise AnalysisError(f"scenario {cls.name!r} has no notion of cooperation")

    def longest_prompts(self, world: WorldT) -> list[tuple[DecisionBatch, str]]:
        """For the context pre-check: per kind of decision, a batch whose first decision has the longest
        prompt this configuration can produce (built with `plan` on a made-up world), and the config
        field that makes it long (e.g. "scenario.rounds"). [] (the default) skips the check."""
        return []

    def world_bytes(self, n: int, edges: float) -> float:
        """About how many bytes the world (and a step's working copies) takes for n agents and this many
        edges, before anything is built: the pre-flight check refuses runs that cannot fit."""
        return 64.0 * n

    def persona_text_excludes(self, columns: tuple[str, ...]) -> set[str]:
        """Persona columns `{persona_text}` leaves out because this configuration states them itself
        (e.g. value positions that change during the run); `columns` are the population's."""
        return set()

    def requirements(self, population: Population) -> list[str]:
        """Problems with this population for this scenario (e.g. a persona column it needs), one line each."""
        return []

    # ---- the rules ----------------------------------------------------------------------------------
    def bind(self, population: Population, graph: SocialGraph) -> None:
        """Give the scenario the run's fixed facts (who, and on which graph) before init or a resume."""
        self.population, self.graph = population, graph

    def init(self, rng: np.random.Generator) -> WorldT:
        """The world at step 0."""
        raise NotImplementedError

    def restore(self, arrays: dict[str, np.ndarray], data: dict[str, Any]) -> WorldT:
        """The world a checkpoint holds (see `World.state`)."""
        return self.World.from_state(arrays, data)  # type: ignore[return-value]

    def max_steps(self, world: WorldT) -> int:
        """Upper bound on the number of steps (for the progress bar)."""
        raise NotImplementedError

    def done(self, world: WorldT) -> bool:
        """True once the run is over (fixed length, or converged)."""
        raise NotImplementedError

    def plan(self, world: WorldT, step: int, rng: np.random.Generator) -> list[DecisionBatch]:
        """The decisions to make this step (may be empty for rule-driven dynamics)."""
        raise NotImplementedError

    def resolve(
        self,
        world: WorldT,
        step: int,
        batches: list[DecisionBatch],
        decisions: list[Decisions],
        rng: np.random.Generator,
    ) -> StepResult:
        """Apply the answers; return the next world and the rows of this step."""
        raise NotImplementedError

    def finish(self, world: WorldT) -> dict[str, pl.DataFrame]:
        """Rows recorded once at the end (e.g. final states); rows carry their own `step`."""
        return {}

    def outcome(self, world: WorldT) -> dict[str, Any]:
        """Facts about how the run ended, for the manifest (e.g. converged, and at which step)."""
        return {}

    # ---- helpers for subclasses ---------------------------------------------------------------------
    def _bound(self) -> tuple[Population, SocialGraph]:
        if self.population is None or self.graph is None:
            raise RuntimeError(f"{self.name}: bind(population, graph) must come before init/restore")
        return self.population, self.graph
