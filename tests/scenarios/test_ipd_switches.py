"""The IPD/BoS robustness switches (issues 13.3 and 14.4): option labels, option order, the paper's
free-text answers, prompt variants and the persona-free condition, through prompts, records and a
fake OpenAI-compatible server (about 10 s)."""

from __future__ import annotations

import json
import re

import numpy as np
import polars as pl
import pytest

from agents.population import SamplerConfig, sample_personas
from agents.prompts import Prompter
from scenarios.ipd import IPDConfig, IteratedGame, seed_bits
from sim.backends.fake_server import FakeOpenAIServer
from sim.config import ConfigError, compose
from sim.prepare import prepare
from tests.contract import fake_backend, read_table, run_with

PERSONAS = sample_personas(SamplerConfig(), 4, np.random.default_rng(1))
MASK64 = (1 << 64) - 1
SCRIPTED = ["scenario=ipd", "population.size=8", "scenario.rounds=4", "seed=2",
            "population.mix={tit_for_tat:2,always_defect:2,random:2,alternate:2}"]  # fmt: skip


def render(seed: int = 5, agent: int = 0, flip: bool | None = None, **config) -> list[dict[str, str]]:
    game = IteratedGame(IPDConfig(**config))
    prompter = Prompter(game, game.templates(), PERSONAS)
    obs = {"own": np.array([0, 1], np.int8), "opp": np.array([1, 1], np.int8), "side": np.int8(0)}
    if flip is not None:
        obs["order_flip"] = np.bool_(flip)
    c = game.config
    context = {"round": 2, "rounds": c.rounds, "game": c.game, "payoffs": game.payoffs.tolist(),
               "labels": list(c.labels), "option_order": c.option_order, "reply": c.reply}  # fmt: skip
    return prompter.messages("ipd_move", agent, obs, context, seed)


def question(messages) -> str:
    return next(line for line in messages[-1]["content"].splitlines() if line.startswith("Q:"))


# ---- labels and order ------------------------------------------------------------------------------


def test_labels_name_the_options_everywhere_in_the_prompt():
    system, user = render(labels=("A", "B"), option_order="fixed")
    assert "you can choose between Option A and Option B" in system["content"]
    assert "If you choose Option A and the other player chooses Option B, then you win 0 points" in system["content"]
    assert "In round 1, you chose Option A and the other player chose Option B." in user["content"]
    assert question([user]) == "Q: Which Option do you choose, Option A or Option B?"
    assert not re.search(r"Option [JF]\b", system["content"] + user["content"])


def test_labels_must_be_two_distinct_words(tmp_path):
    for labels, expected in (("[J,j]", "the two labels must differ"), ("['a b',c]", "is one word")):
        with pytest.raises(ConfigError, match=rf"^scenario\.labels: .*{expected}"):
            compose(["scenario=ipd", f"scenario.labels={labels}", f"run.dir={tmp_path / 'x'}"])


def test_paper_order_reproduces_the_per_decision_shuffle_exactly():
    """The default (`paper`) in the PD is the shuffle socsim always had: option F first iff the top bit
    of the seed mixed by SplitMix64's two multiply-xorshift rounds is set (written out here again)."""

    def old_first(seed: int) -> str:
        z = (seed * 0x9E3779B97F4A7C15) & MASK64
        z = ((z ^ (z >> 31)) * 0xBF58476D1CE4E5B9) & MASK64
        return "F" if (z >> 63) & 1 else "J"

    seeds = [int(s) for s in np.random.default_rng(0).integers(0, 2**63, 300, dtype=np.uint64)]
    firsts = [question(render(seed=s)).split("choose, Option ")[1][0] for s in seeds]
    assert firsts == [old_first(s) for s in seeds]
    assert (seed_bits(np.array(seeds, np.uint64)) == np.array([f == "F" for f in firsts])).all()
    assert {question(render(seed=s, game="bos")) for s in seeds[:50]} == {
        "Q: Which Option do you choose, Option J or Option F?"
    }  # BoS: fixed, as in the paper


def test_fixed_reversed_shuffled_and_per_agent_orders():
    seeds = range(200)
    assert {question(render(seed=s, option_order="fixed")) for s in seeds} == {
        "Q: Which Option do you choose, Option J or Option F?"
    }
    assert {question(render(seed=s, option_order="reversed", labels=("C", "D"))) for s in seeds} == {
        "Q: Which Option do you choose, Option D or Option C?"
    }
    bos_shuffled = [question(render(seed=s, option_order="shuffled", game="bos")) for s in seeds]
    assert 70 <= sum("Option J or" in q for q in bos_shuffled) <= 130
    assert question(render(option_order="per_agent", flip=True)).endswith("Option F or Option J?")
    assert question(render(option_order="per_agent", flip=False)).endswith("Option J or Option F?")


def test_per_agent_order_is_fixed_for_each_agent_and_drawn_from_the_run_seed(tmp_path):
    overrides = ["scenario=ipd", "population.size=40", "population.mix={random:40}", "scenario.rounds=2",
                 "scenario.option_order=per_agent", f"run.dir={tmp_path / 'x'}"]  # fmt: skip
    prepared = prepare(compose([*overrides, "seed=2"]))
    flips = prepared.world.order_flip
    assert flips.shape == (40,) and 10 <= flips.sum() <= 30
    other = prepare(compose([*overrides, "seed=9"]))
    assert not np.array_equal(other.world.order_flip, flips)
    batch = prepared.scenario.plan(prepared.world, 0, np.random.default_rng(0))[0]
    assert (batch.obs["order_flip"] == flips[batch.agent_ids]).all()


def test_labels_and_orders_leave_scripted_play_unchanged(tmp_path):
    """Scripted strategies never read the wording: the same moves, and records keep canonical J/F."""
    base = read_table(run_with(SCRIPTED, tmp_path / "base"), "interactions").drop("run_id")
    relabelled = read_table(
        run_with([*SCRIPTED, "scenario.labels=[X,Y]", "scenario.option_order=reversed"], tmp_path / "x"),
        "interactions",
    ).drop("run_id")
    assert base.equals(relabelled)
    assert set(base["action"]) == {"J", "F"} and base["shown_first"].is_null().all()
    assert base["prediction"].is_null().all()


# ---- answers: constrained, free text, predict-then-act ------------------------------------------------------


class FreeTextServer(FakeOpenAIServer):
    """Answers requests without structured outputs the way a chat model completes "A: Option": a label
    in one of several forms, chosen by the request's seed (and a prediction first when asked for one)."""

    def _completion(self, body, content):
        if not body.get("response_format") and not body.get("structured_outputs"):
            seed = int(body.get("seed") or 0)
            labels = re.findall(r"Option (\w+) or Option (\w+)", body["messages"][-1]["content"])[-1]
            said = labels[seed % 2]
            if "Prediction:" in body["messages"][-1]["content"]:
                content = f"Prediction: Option {labels[1 - seed % 2]}\nAnswer: Option {said}"
            else:
                content = [f" {said}", f"{said}.", f"Option {said}", f"I choose {said}"][seed % 4]
        return super()._completion(body, content)


def reasons(rows: pl.DataFrame) -> pl.Series:
    """Why each decision is not the agent's own (the engine's column is being renamed fallback_reason)."""
    return rows["fallback_reason" if "fallback_reason" in rows.columns else "fallback"]


def llm_run(tmp_path, server, *extra: str) -> tuple[pl.DataFrame, dict]:
    overrides = ["scenario=ipd", "population.size=4", "population.mix={llm:2,tit_for_tat:2}", "scenario.rounds=3",
                 "seed=1", *fake_backend(server, tmp_path / "cache"), *extra]  # fmt: skip
    run_dir = run_with(overrides, tmp_path / "run")
    return read_table(run_dir, "interactions"), json.loads((run_dir / "manifest.json").read_text())


def test_free_text_answers_are_asked_plainly_and_parsed(tmp_path):
    with FreeTextServer() as server:
        rows, manifest = llm_run(tmp_path, server, "scenario.reply=free_text", "scenario.labels=[K,L]")
        requests = server.requests
    assert requests and all("response_format" not in r and "structured_outputs" not in r for r in requests)
    assert all(r["messages"][-1]["content"].endswith("A: Option") for r in requests)
    llm = rows.filter(pl.col("policy") == "llm")
    assert llm.height == 2 * 3 * 3 and reasons(llm).is_null().all()
    # each answer was the label the server picked from the question; records hold its canonical move
    by_seed = {r["seed"]: re.findall(r"Option (\w+) or Option (\w+)", r["messages"][-1]["content"])[-1]
               for r in requests}  # fmt: skip
    said = [by_seed[s][s % 2] for s in by_seed]
    assert set(said) == {"K", "L"} and set(llm["action"]) <= {"J", "F"}
    assert manifest["config"]["scenario"]["reply"] == "free_text"
    assert set(llm["shown_first"]) <= {"J", "F"} and llm["shown_first"].null_count() == 0


def test_free_text_that_names_no_option_is_a_recorded_failure(tmp_path, fake_openai):
    # the stock server says "ok": every answer fails, which the failure budget is told to accept here
    rows, _ = llm_run(tmp_path, fake_openai, "scenario.reply=free_text", "backend.max_failure_rate=1")
    llm = rows.filter(pl.col("policy") == "llm")
    assert llm.height == 18 and (reasons(llm) == "invalid_reply").all()
    assert reasons(rows.filter(pl.col("policy") != "llm")).is_null().all()


def test_predict_then_act_records_the_prediction(tmp_path, fake_openai):
    rows, _ = llm_run(tmp_path, fake_openai, "scenario.prompt_variant=predict")
    llm = rows.filter(pl.col("policy") == "llm")
    assert reasons(llm).is_null().all() and set(llm["prediction"]) <= {"J", "F"}
    assert rows.filter(pl.col("policy") != "llm")["prediction"].is_null().all()
    schema = fake_openai.requests[0]["response_format"]["json_schema"]["schema"]
    assert list(schema["properties"]) == ["prediction", "move"]
    assert (
        "First predict which Option the other player will choose" in fake_openai.requests[0]["messages"][-1]["content"]
    )
    with FreeTextServer() as server:
        free, _ = llm_run(tmp_path / "free", server, "scenario.prompt_variant=predict", "scenario.reply=free_text")
        asked = server.requests[0]["messages"][-1]["content"]
    assert "Prediction: Option <" in asked and "Answer: Option <" in asked
    llm = free.filter(pl.col("policy") == "llm")
    assert reasons(llm).is_null().all()
    assert (llm["prediction"] != llm["action"]).all()  # the server predicted the other label each time


# ---- variants and the persona-free condition -------------------------------------------------------------


def test_mistakes_and_single_message_variants():
    plain = render()
    mistakes = render(prompt_variant="mistakes")
    assert "the other player can make mistakes" in mistakes[0]["content"]
    assert mistakes[1] == plain[1] and "mistakes" not in plain[0]["content"]
    single = render(prompt_variant="single_message")
    assert [m["role"] for m in single] == ["user"]
    assert single[0]["content"].startswith(plain[0]["content"])  # rules and persona, then the history
    assert single[0]["content"].endswith(plain[1]["content"])


def test_unknown_variant_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"^scenario\.prompt_variant: Input should be 'default', 'mistakes'"):
        compose(["scenario=ipd", "scenario.prompt_variant=polite", f"run.dir={tmp_path / 'x'}"])


def test_a_template_file_still_overrides_the_variant(tmp_path):
    path = tmp_path / "move.yaml"
    path.write_text("user: 'Round {round}. Option {first} or Option {second}? A: Option'\n")
    prepared = prepare(compose(["scenario=ipd", "scenario.prompt_variant=mistakes", f"scenario.prompts.ipd_move={path}",
                                f"run.dir={tmp_path / 'x'}"]))  # fmt: skip
    template = prepared.templates["ipd_move"]
    assert "make mistakes" in template.system and template.user.startswith("Round {round}.")


def test_persona_free_baseline_shows_the_rules_only(tmp_path, fake_openai):
    """Akata et al. used no persona: `population.persona_fields=[]` empties {persona_text}."""
    llm_run(tmp_path, fake_openai, "population.persona_fields=[]")
    systems = {r["messages"][0]["content"] for r in fake_openai.requests if r["messages"][0]["role"] == "system"}
    assert systems and all(s.startswith("You are playing a game repeatedly") for s in systems)
    assert all("\n\n" not in s and "You are a" not in s and "year-old" not in s for s in systems)
    assert len(systems) == 1  # the PD reads the same from both sides: one system prompt for every agent
