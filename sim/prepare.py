"""Preparing a run: build population, graph, scenario and world from the validated config, and check
everything that can be checked before a file is written or a server started.

Checks (each a one-line ConfigError naming the field): the persona file and edge list, every policy in
the mix exists, the scenario's own requirements of the population, every spec has a template, every
template variable is bound (by the scenario or a persona column), `population.persona_fields` names
real columns, and language-model agents are only put where decisions are asked.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import polars as pl

from agents.graph import SocialGraph, build_graph
from agents.population import (
    LLM,
    Population,
    allocate_mix,
    assign_by_group,
    assign_policies,
    is_llm,
    load_personas,
    model_key,
    sample_personas,
)
from agents.prompts import PromptError, PromptTemplate, check_template
from scenarios import BaseScenario, scenario_class
from sim import seeding
from sim.backends.config import BackendConfig
from sim.budgets import Budgets
from sim.config import ConfigError, PopulationConfig, RunConfig
from sim.failures import FailureRules
from sim.preflight import check_memory
from sim.recorder import ENGINE_FRONT, full_schemas
from sim.runner import DecisionSetup
from sim.transcripts import COLUMNS as TRANSCRIPT_COLUMNS
from sim.transcripts import TRANSCRIPTS

DEFAULT_POPULATION_SIZE = 20


@dataclass
class Prepared:
    """Everything a run needs, built and checked before the run directory is touched."""

    config: RunConfig
    run_id: str
    scenario: BaseScenario
    population: Population
    graph: SocialGraph
    templates: dict[str, PromptTemplate]
    world: Any

    @property
    def has_llm(self) -> bool:
        return bool(self.population.llm_mask.any())

    def model_keys(self) -> list[str | None]:
        """The models the population's agents use (None: the default `backend.model`), in code order."""
        present = set(self.population.policy_codes.tolist())
        names = self.population.policy_names
        return [model_key(names[c]) for c in sorted(present) if is_llm(names[c])]

    def model_names(self) -> tuple[str | None, ...]:
        """The served model name of each policy code (None for scripted policies): the `model` column."""
        backend = self.config.backend
        return tuple(
            backend.for_model(model_key(name)).model if is_llm(name) and backend.kind != "none" else None
            for name in self.population.policy_names
        )

    def decision_setup(self, backend: Any | None = None) -> DecisionSetup:
        """What every process that answers decisions needs (the backend as served, if given)."""
        return DecisionSetup(
            scenario=self.config.scenario,
            templates=self.templates,
            backend=backend or self.config.backend,
            population=self.population,
            persona_fields=self.config.population.persona_fields,
            transcripts=self.config.run.record_transcripts,
        )

    def failure_rules(self) -> FailureRules | None:
        """How the run treats decisions a model could not give (None: it has no model)."""
        if not self.has_llm:
            return None
        backend = self.config.backend
        name = backend.stand_in_policy
        return FailureRules(
            on_failure=backend.on_failure,
            stand_in=None if name is None else self.scenario.strategies()[name],
            max_rate=backend.max_failure_rate,
            llm_codes=self.population.llm_codes(),
        )

    def budgets(self) -> Budgets:
        backend = self.config.backend
        return Budgets(backend.max_total_tokens, backend.max_requests, self.config.run.max_wall_time_s)

    def schemas(self) -> dict[str, Any]:
        """Every recorded table's schema: the scenario's, and the transcripts of a run with a model."""
        schemas = full_schemas(self.scenario.tables)
        if self.has_llm and self.config.run.record_transcripts:
            schemas[TRANSCRIPTS] = pl.Schema({**ENGINE_FRONT, **TRANSCRIPT_COLUMNS})
        return schemas


def policy_universe(scenario: BaseScenario, models: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Every policy a run may use, in a fixed order (codes in the records index this): the scripted
    ones, `llm`, then `llm@<key>` for each key of backend.models (after the others, so a run without
    models keeps its codes)."""
    return (*sorted(scenario.strategies()), LLM, *(f"{LLM}@{key}" for key in sorted(models)))


def mix_policies(mix: dict[str, Any]) -> list[str]:
    """The policy names a mix (flat, or by group) uses, in order of appearance."""
    names: dict[str, None] = {}
    for key, value in mix.items():
        names.update(dict.fromkeys(value) if isinstance(value, dict) else {key: None})
    return list(names)


def check_models(policies: list[str], backend: BackendConfig) -> None:
    """Every `llm@<key>` of the mix names a key of backend.models, and plain `llm` has a default model:
    one line naming the field and what is allowed, before any server is contacted."""
    allowed = ", ".join(f"{LLM}@{key}" for key in sorted(backend.models)) or "none: backend.models is empty"
    for policy in policies:
        key = model_key(policy)
        if key is not None and key not in backend.models:
            raise ConfigError(f"population.mix: {policy!r} names no model of backend.models (choose from: {allowed})")
        if policy == LLM and backend.kind != "none" and not backend.model:
            raise ConfigError(
                f"population.mix: plain 'llm' needs backend.model (the default model), or name a model ({allowed})"
            )


def build_population(
    config: PopulationConfig, scenario: BaseScenario, seed: int, llm_available: bool, models: tuple[str, ...] = ()
) -> Population:
    """Personas (from the file, or sampled) and a policy per agent. Size: `population.size`, else the
    persona file's length, else the scenario's default, else 20. `models`: the keys of backend.models."""
    if config.source:
        personas = load_personas(config.source, config.max_text_chars)
        if config.size is not None and personas.height != config.size:
            raise ConfigError(
                f"population.size: is {config.size} but {config.source} holds {personas.height} personas; "
                f"set population.size={personas.height} (or null)"
            )
    else:
        size = config.size or scenario.default_population_size() or DEFAULT_POPULATION_SIZE
        personas = sample_personas(config.sampler, size, seeding.rng(seed, "personas"))
    universe = policy_universe(scenario, models)
    mix = config.mix or scenario.default_mix()
    rng = seeding.rng(seed, "policies")
    try:
        if config.mix_by is not None:
            if config.mix_by not in personas.columns:
                raise ValueError(
                    f"population.mix_by: no persona column {config.mix_by!r} (columns: {', '.join(personas.columns)})"
                )
            codes = assign_by_group(personas.get_column(config.mix_by), mix, universe, rng)  # type: ignore[arg-type]
        else:
            codes = assign_policies(allocate_mix(mix, personas.height), universe, rng)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    population = Population(personas=personas, policy_names=universe, policy_codes=codes)
    if population.llm_mask.any() and not llm_available:
        raise ConfigError("population.mix: 'llm' agents need a model; choose backend=vllm or backend=openai")
    return population


def check_prompts(
    scenario: BaseScenario, population: Population, fields: tuple[str, ...] | None
) -> dict[str, PromptTemplate]:
    """The run's templates, each checked: every variable bound by the scenario or a persona column."""
    try:
        templates = scenario.templates()
        for spec, template in templates.items():
            check_template(spec, template, scenario.prompts[spec].variables, population.columns)
    except PromptError as exc:
        raise ConfigError(str(exc)) from None
    unknown = [c for c in fields or () if c not in population.columns]
    if unknown:
        raise ConfigError(
            f"population.persona_fields: no persona column {unknown[0]!r} (columns: {', '.join(population.columns)})"
        )
    return templates


def run_id_of(config: RunConfig, templates: dict[str, PromptTemplate] | None = None) -> str:
    """Same science (scenario, graph, population, model, prompts asked, seed) → same id, however and
    wherever it was executed."""
    science = config.science_dict()
    if templates:
        science["prompts"] = {name: t.model_dump() for name, t in sorted(templates.items())}
    blob = json.dumps(science, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def prepare(config: RunConfig) -> Prepared:
    """Build scenario, population, graph and world; any bad input raises ConfigError (or a file error)."""
    scenario = scenario_class(config.scenario.name)(config.scenario)
    check_memory(config, scenario)  # before a persona is sampled or an edge drawn
    check_models(mix_policies(config.population.mix or {}), config.backend)
    population = build_population(
        config.population, scenario, config.seed, config.backend.kind != "none", tuple(config.backend.models)
    )
    problems = scenario.requirements(population)
    if problems:
        raise ConfigError(problems[0])
    if population.llm_mask.any() and not scenario.specs():
        llm = sorted({name for name in population.policy_names if is_llm(name)})
        raise ConfigError(
            f"population.mix: {scenario.name} asks no decisions, so {llm[0]!r} agents would never be asked; "
            f"use its scripted policies ({', '.join(sorted(scenario.strategies()))})"
        )
    templates = check_prompts(scenario, population, config.population.persona_fields)
    stand_in = config.backend.stand_in_policy
    if population.llm_mask.any() and stand_in is not None and stand_in not in scenario.strategies():
        raise ConfigError(
            f"backend.on_failure: policy:{stand_in} is not a scripted policy of {scenario.name} "
            f"(choose from {', '.join(sorted(scenario.strategies()))})"
        )
    try:
        graph = build_graph(
            config.graph, population.size, seeding.int_seed(config.seed, "graph"),
            population.personas.get_column("id").to_list(),
        )  # fmt: skip
        scenario.bind(population, graph)
        world = scenario.init(seeding.rng(config.seed, "init"))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    asked = templates if population.llm_mask.any() else None
    return Prepared(config, run_id_of(config, asked), scenario, population, graph, templates, world)
