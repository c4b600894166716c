"""`run.dry_run=true` and prompts from config, as a user meets them on the command line: the exact
messages a run would send, with templates from a file and persona columns from a survey file, checked
before any server starts."""

from __future__ import annotations

import json

from tests.cli import socsim

UNREACHABLE = ["backend=vllm", "backend.base_url=http://127.0.0.1:9/v1", "backend.model=m"]  # nothing listens


def test_dry_run_prints_three_agents_messages_and_the_estimate_without_a_server(tmp_path):
    result = socsim("scenario=ipd", "population.size=10", "population.mix={llm:4,tit_for_tat:6}", "seed=3",
                    "run.dry_run=true", f"run.dir={tmp_path / 'run'}", *UNREACHABLE, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("--- step 0, ipd_move, agent ") == 3 and out.count("(llm: language model)") == 3
    assert out.count("[system]\nYou are playing a game repeatedly with another player.") == 3
    assert out.count("A: Option") == 3
    assert "pre-flight estimate:" in out and "agents 10 (4 language-model), edges 45" in out
    assert "decisions about 900 (90 in the first step that asks any), 360 by a language model" in out
    assert list(tmp_path.iterdir()) == []  # nothing written, not even Hydra's output folder


def test_dry_run_of_a_rule_driven_scenario_says_nothing_is_sent(tmp_path):
    result = socsim("scenario=deffuant", "population.size=30", "run.dry_run=true", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "step 0 asks no decisions: deffuant is rule-driven, nothing is sent" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_a_template_file_and_survey_columns_shape_the_prompt(tmp_path):
    (tmp_path / "people.csv").write_text(
        "id,religion,party\na,none,green\nb,catholic,labour\nc,none,green\nd,jewish,tory\n"
    )
    (tmp_path / "move.yaml").write_text(
        "system: 'You vote {persona.party}. {persona_text}'\nuser: 'Round {round}: J or F?'\n"
    )
    result = socsim("scenario=ipd", "population.source=people.csv", "population.mix={llm:1.0}",
                    "scenario.prompts.ipd_move=move.yaml", "run.dry_run=true", *UNREACHABLE, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (
        "[system]\nYou vote green. About you: religion: none; party: green.\n[user]\nRound 1: J or F?" in result.stdout
    )


def test_an_unbound_variable_fails_in_one_line_before_any_server_starts(tmp_path):
    (tmp_path / "move.yaml").write_text("user: 'Round {roundz}: J or F?'\n")
    result = socsim("scenario=ipd", "population.size=4", "population.mix={llm:1.0}",
                    "scenario.prompts.ipd_move=move.yaml", f"run.dir={tmp_path / 'run'}", *UNREACHABLE,
                    cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "socsim: error: prompt 'ipd_move': {roundz} is not bound (available: answer_format, first, history, "
        "persona_text, round, rules, second, persona.<column>)"
    ]
    assert not (tmp_path / "run").exists()
    unknown = socsim("scenario=deffuant", "+scenario.prompts.speech=move.yaml", cwd=tmp_path)
    assert (
        unknown.returncode == 2 and "scenario.prompts.speech: deffuant asks no decision of that kind" in unknown.stderr
    )


def test_a_mix_per_group_of_a_persona_column(tmp_path):
    (tmp_path / "people.csv").write_text("id,party\na,green\nb,green\nc,tory\nd,tory\n")
    result = socsim("scenario=ipd", "population.source=people.csv", "population.mix_by=party",
                    "population.mix={green:{always_cooperate:1.0},tory:{always_defect:1.0}}",
                    f"run.dir={tmp_path / 'run'}", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    import polars as pl

    agents = pl.read_parquet(tmp_path / "run" / "agents.parquet")
    assert dict(agents.select("party", "policy").unique().iter_rows()) == {
        "green": "always_cooperate",
        "tory": "always_defect",
    }
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["config"]["population"]["mix_by"] == "party"
