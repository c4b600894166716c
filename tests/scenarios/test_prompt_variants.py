"""Prompt variants as a general mechanism of BaseScenario (issue 14.4): a scenario declares named
template sets, `scenario.prompt_variant` picks one, a template file still overrides it, and every
declared variant binds its variables (about 5 s)."""

from __future__ import annotations

import pytest

from agents.prompts import PromptTemplate, check_template
from scenarios import names, scenario_class
from sim.config import ConfigError, compose
from sim.prepare import prepare


@pytest.mark.parametrize("name", names())
def test_every_declared_variant_binds_its_variables(name):
    cls = scenario_class(name)
    for variant, templates in cls.prompt_variants.items():
        for spec, template in templates.items():
            assert spec in cls.prompts, f"{name}: variant {variant!r} words {spec!r}, which has no default prompt"
            check_template(f"{variant}.{spec}", template, cls.prompts[spec].variables, ())


@pytest.mark.parametrize("variant", ["default", "mistakes", "predict", "single_message"])
def test_each_ipd_variant_prepares_and_is_recorded_in_the_templates(tmp_path, variant):
    overrides = ["scenario=ipd", f"scenario.prompt_variant={variant}", f"run.dir={tmp_path / 'x'}"]
    prepared = prepare(compose(overrides))
    scenario = prepared.scenario
    expected = scenario.prompt_variants.get(variant, {}).get("ipd_move", scenario.prompts["ipd_move"].template)
    assert prepared.templates["ipd_move"] == expected


def test_a_scenario_without_variants_names_its_only_one(tmp_path):
    message = r"^scenario\.prompt_variant: donor_game has no prompt variant 'terse' \(variants: default\)$"
    with pytest.raises(ConfigError, match=message):
        prepare(compose(["scenario=donor_game", "scenario.prompt_variant=terse", f"run.dir={tmp_path / 'x'}"]))
    assert not (tmp_path / "x").exists()


def test_a_variant_changes_the_run_id(tmp_path):
    """The variant is part of the config and its templates part of what the run_id hashes."""
    base = ["scenario=ipd", "population.size=4", "population.mix={llm:2,tit_for_tat:2}", "backend=vllm",
            "backend.base_url=http://127.0.0.1:9/v1", "backend.model=m", f"run.dir={tmp_path / 'x'}"]  # fmt: skip
    plain, mistakes = (prepare(compose([*base, f"scenario.prompt_variant={v}"])) for v in ("default", "mistakes"))
    assert plain.run_id != mistakes.run_id
    assert isinstance(mistakes.templates["ipd_move"], PromptTemplate)
