"""The donor game's protocol switches (issue 13.5): trace-reading discriminators, scripted punishers,
the released notebook's pairing, fixed-cost donations, a continuation probability, execution and
assessment errors, the paper's free-text replies, and the Nowak-Sigmund threshold q·b > c as a test
(about 25 s, a third of it the long games of the threshold test)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from agents.decisions import Decisions
from agents.graph import SocialGraph
from agents.population import Population
from scenarios.donor_game import DonorGame, DonorGameConfig, strategy_from_reply, trace_help
from scenarios.donor_pairing import notebook_round, split_halves
from scenarios.donor_rules import GOOD_AFTER, NORMS, trace_arrays, trace_standing
from sim.backends.fake_server import FakeOpenAIServer
from sim.config import ConfigError, compose
from sim.prepare import prepare
from tests.contract import fake_backend, read_table, run_with


def config(**kw) -> DonorGameConfig:
    return DonorGameConfig(**{"agents_per_generation": None, **kw})


def play(
    cfg: DonorGameConfig, mix: dict[str, int], seed: int = 0, batches: list | None = None
) -> dict[str, pl.DataFrame]:
    """Every step of a scripted game on a complete graph: plan -> the scripted policies -> resolve."""
    scenario = DonorGame(cfg)
    universe = (*sorted(scenario.strategies()), "llm")
    codes = np.concatenate([np.full(c, universe.index(k), np.int16) for k, c in mix.items()])
    codes = np.random.default_rng(seed).permutation(codes)
    population = Population(pl.DataFrame({"id": [str(i) for i in range(len(codes))]}), universe, codes)
    rng = np.random.default_rng(seed)
    scenario.bind(population, SocialGraph.complete_graph(population.size))
    world, policies, tables, step = scenario.init(rng), scenario.strategies(), {}, 0
    while not scenario.done(world):
        planned = scenario.plan(world, step, rng)
        answers = []
        for batch in planned:
            batch.seeds = rng.integers(0, 2**63, len(batch), dtype=np.uint64)
            out = Decisions.empty(batch.spec, len(batch))
            for code in np.unique(batch.policies):
                index = np.flatnonzero(batch.policies == code)
                out.put(index, Decisions.scripted(policies[universe[code]].decide(batch.take(index))))
            answers.append(out)
            if batches is not None:
                batches.append(batch)
        result = scenario.resolve(world, step, planned, answers, rng)
        world = result.world
        for name, table in result.tables.items():
            tables.setdefault(name, []).append(table)
        step += 1
    return {name: pl.concat(parts) for name, parts in tables.items()}


def with_policies(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Interactions with the actor's and the target's policies."""
    policy = tables["strategies"].filter(generation=1).select("agent_id", "policy")
    rows = tables["interactions"].join(policy.rename({"agent_id": "actor_id", "policy": "actor"}), on="actor_id")
    return rows.join(policy.rename({"agent_id": "target_id", "policy": "target"}), on="target_id")


# ---- discriminators read the trace ---------------------------------------------------------------------


def test_standing_read_off_a_trace_by_hand():
    """Three recipients, traces of two links (the second is what the first link's target did before):
    r0 gave to X, who had refused Y; r1 refused X, who had refused Y; r2's trace is empty."""
    rounds = np.array([[3, 2], [3, 2], [-1, -1]])
    cooperated = np.array([[True, False], [False, False], [False, False]])
    # X refused a (presumed good) Y: bad under every norm. r0 helped a bad X, r1 refused a bad X.
    expected = {"image_scoring": [True, False, True], "standing": [True, True, True],
                "stern_judging": [False, True, True]}  # fmt: skip
    for norm in NORMS:
        assert trace_standing(rounds, cooperated, norm).tolist() == expected[norm]
    # one link only: X is beyond the trace, so presumed good, and refusing it is bad but for nobody
    assert trace_standing(rounds[:, :1], cooperated[:, :1], "standing").tolist() == [True, False, True]
    assert GOOD_AFTER.shape == (3, 2, 2)


def test_scripted_donors_judge_what_the_trace_shows_or_the_public_reputation():
    seen: list = []
    play(config(generations=1, rounds=6, trace_depth=2), {"standing": 6, "always_defect": 6}, 1, seen)
    for batch in seen:
        o = batch.obs
        cooperated = (o["trace_share"] > 0) & ~o["trace_punished"]
        for norm in NORMS:
            assert (o[f"good_{norm}"] == trace_standing(o["trace_round"], cooperated, norm)).all()
    public: list = []
    play(config(generations=1, rounds=6, reputation="global"), {"standing": 6, "always_defect": 6}, 1, public)
    assert any(not b.obs["good_image_scoring"].all() for b in public)


def test_without_a_trace_discriminators_know_nothing_and_give():
    tables = play(config(generations=1, trace_depth=0, fraction=0.1), {"image_scoring": 6, "always_defect": 6}, 2)
    rows = with_policies(tables).filter(actor="image_scoring")
    assert (rows["amount"] > 0).all()
    public = play(config(generations=1, trace_depth=0, fraction=0.1, reputation="global"),
                  {"image_scoring": 6, "always_defect": 6}, 2)  # fmt: skip
    assert (with_policies(public).filter(actor="image_scoring", target="always_defect")["amount"] == 0).any()


# ---- punishers ----------------------------------------------------------------------------------------------


def test_punishers_punish_who_they_see_in_bad_standing():
    seen: list = []
    tables = play(config(generations=1, punishment=True, fraction=0.2),
                  {"standing_punisher": 6, "always_defect": 6}, 3, seen)  # fmt: skip
    rows = with_policies(tables)
    for batch in seen:  # rows of a round are in its batch's order
        part = rows.filter(round=batch.context["round"])
        punisher = (part["actor"] == "standing_punisher").to_numpy()
        punished = (part["action"] == "punish").to_numpy()
        np.testing.assert_array_equal(punished, punisher & ~batch.obs["good_standing"])
    assert (rows.filter(actor="always_defect")["action"] == "donate").all()  # and never gives anything
    assert rows.filter(actor="standing_punisher", target="always_defect", action="punish").height > 10
    punishers = rows.filter(actor="standing_punisher")
    assert (punishers["amount"] - 0.2 * punishers["actor_before"]).abs().max() < 1e-9  # as much as a gift


def test_punishers_need_the_punishment_variant(tmp_path):
    with pytest.raises(ConfigError, match=r"^population\.mix: 'standing_punisher' punishes, which needs"):
        prepare(compose(["scenario=donor_game", "population.mix={standing_punisher:6,always_defect:6}",
                         f"run.dir={tmp_path / 'x'}"]))  # fmt: skip


def test_default_mix_is_still_the_five_classic_strategies(tmp_path):
    prepared = prepare(compose(["scenario=donor_game", f"run.dir={tmp_path / 'x'}"]))
    used = {prepared.population.policy_names[c] for c in prepared.population.policy_codes}
    assert used == {"always_defect", "fixed_fraction", "image_scoring", "standing", "stern_judging"}


# ---- the notebook's pairing ---------------------------------------------------------------------------------------


def notebook_schedule(a: list[int], b: list[int]) -> list[list[tuple[int, int]]]:
    """The released notebook's rounds written out plainly: b rotated against a, roles toggling, then
    every round again with donor and recipient swapped."""
    h, rounds, a_gives = len(a), [], True
    for i in range(h):
        rotated = b[h - i :] + b[: h - i] if i else list(b)
        rounds.append(list(zip(a, rotated, strict=True)) if a_gives else list(zip(rotated, a, strict=True)))
        a_gives = not a_gives
    return rounds + [[(r, d) for d, r in pairs] for pairs in rounds]


@pytest.mark.parametrize("h", [3, 6])
def test_notebook_round_is_the_notebooks_schedule(h):
    _, a, b = split_halves(2 * h, np.random.default_rng(h))
    expected = notebook_schedule(a.tolist(), b.tolist())
    for t in range(2 * h):
        donors, recipients = notebook_round(t, a, b)
        assert sorted(zip(donors.tolist(), recipients.tolist(), strict=True)) == sorted(expected[t])
    # where the halves join, the same side gives twice in a row (h even): roles stop alternating
    if h % 2 == 0:
        assert set(notebook_round(h - 1, a, b)[0]) == set(notebook_round(h, a, b)[0])


def test_notebook_pairing_traces_follow_the_actual_last_gifts():
    seen: list = []
    tables = play(config(generations=1, pairing="notebook", trace_depth=1), {"fixed_fraction": 12}, 4, seen)
    rows = tables["interactions"]
    for batch in seen[1:]:
        t = batch.context["round"] - 1
        before = rows.filter(pl.col("round") <= t)
        for i in range(len(batch)):
            recipient, k = int(batch.obs["recipient"][i]), int(batch.obs["trace_round"][i, 0])
            gave = before.filter(actor_id=recipient)["round"]
            assert k == (gave.max() - 1 if gave.len() else -1)


def test_notebook_pairing_needs_a_complete_graph(tmp_path):
    with pytest.raises(ConfigError, match="pairing=notebook needs graph=complete"):
        prepare(compose(["scenario=donor_game", "scenario.pairing=notebook", "graph=watts_strogatz", "graph.k=4",
                         f"run.dir={tmp_path / 'x'}"]))  # fmt: skip


def test_general_trace_lookup_agrees_with_the_halves_under_alternation():
    half = np.array([0, 1, 0, 1, 0, 1], np.int8)
    given_to = np.full((4, 6), -1, np.int32)
    given_to[0, [0, 2, 4]] = [1, 3, 5]
    given_to[1, [1, 3, 5]] = [2, 4, 0]
    given_to[2, [0, 2, 4]] = [3, 5, 1]
    recipients = np.arange(6)
    by_half = trace_arrays(recipients, 3, 3, half, given_to)
    looked_up = trace_arrays(recipients, 3, 3, half, given_to, alternating=False)
    for x, y in zip(by_half, looked_up, strict=True):
        np.testing.assert_array_equal(x, y)


# ---- fixed costs, continuation, errors ----------------------------------------------------------------------------


def test_fixed_cost_cooperators_by_hand():
    """12 agents always giving c = 1.5 with multiplier 2, 12 rounds of strict alternation: each gives 6
    times and receives 6 times, ending at 10 - 6 x 1.5 + 6 x 3 = 19 exactly."""
    tables = play(config(generations=1, donation="fixed", cost=1.5), {"fixed_fraction": 12}, 5)
    assert (tables["interactions"]["amount"] == 1.5).all()
    assert tables["strategies"]["final_resources"].to_list() == [19.0] * 12


def test_fixed_cost_is_capped_by_what_the_donor_holds():
    tables = play(config(generations=1, donation="fixed", cost=50.0, initial_resources=4.0), {"fixed_fraction": 4}, 6)
    first = tables["interactions"].filter(round=1)
    assert (first["amount"] == 4.0).all()


def test_continuation_gives_geometric_game_lengths():
    """With w = 0.75 a game lasts 1/(1 - w) = 4 rounds on average (capped at `rounds`)."""
    tables = play(config(generations=400, rounds=30, continuation=0.75, mutation_rate=0.0), {"fixed_fraction": 4}, 7)
    lengths = tables["interactions"].group_by("generation").agg(pl.col("round").max())["round"].to_numpy()
    assert len(lengths) == 400 and lengths.max() <= 30 and lengths.min() == 1
    assert lengths.mean() == pytest.approx(4.0, abs=0.35)
    assert (lengths == 1).mean() == pytest.approx(0.25, abs=0.06)


def test_execution_errors_turn_meant_gifts_into_nothing():
    tables = play(config(generations=3, execution_error=0.3, fraction=0.1), {"fixed_fraction": 40}, 8)
    rows = tables["interactions"]
    assert rows["slipped"].mean() == pytest.approx(0.3, abs=0.03)
    assert (rows.filter("slipped")["amount"] == 0).all() and (rows.filter(~pl.col("slipped"))["amount"] > 0).all()


@pytest.mark.parametrize("reputation", ["trace", "global"])
def test_assessment_errors_flip_judgements(reputation):
    """Cooperators only: every act is a gift to a good recipient, so every true standing is good; what
    is bad was misjudged, at the configured rate (public records per act, private readings per decision)."""
    seen: list = []
    tables = play(config(generations=2, assessment_error=0.2, reputation=reputation), {"fixed_fraction": 40}, 9, seen)
    if reputation == "trace":
        judged = np.concatenate([b.obs["good_standing"] for b in seen if b.context["round"] > 1])
        assert 1 - judged.mean() == pytest.approx(0.2, abs=0.03)
    else:  # each donor's public standing right after its act
        after = (
            tables["interactions"]
            .select("generation", "round", agent_id="actor_id")
            .join(tables["states"], on=["generation", "round", "agent_id"])
        )
        assert after.height == 2 * 12 * 20
        assert 1 - after["good_image_scoring"].mean() == pytest.approx(0.2, abs=0.05)


# ---- free text ----------------------------------------------------------------------------------------------------


class PaperFormServer(FakeOpenAIServer):
    """Replies in the paper's form when no structured output is asked: a strategy after some thought,
    or "Justification: ... Answer: <units>" giving 1 unit (punishing with 1 unit in round 1 when it may)."""

    def _completion(self, body, content):
        if not body.get("response_format") and not body.get("structured_outputs"):
            asked = body["messages"][-1]["content"]
            if "My strategy will be" in asked and "You will take the role of donor" not in asked:
                content = "Let me think. Reciprocity pays.\nMy strategy will be to give a third of what I have."
            elif "Punish, x" in asked:
                act = "Punish" if "It is now round 1." in asked else "Donate"
                content = f"Justification:\nFair is fair.\n\nAnswer: {act}, 1"
            else:
                content = "Justification:\nThey gave before.\n\nAnswer: 1 unit"
        return super()._completion(body, content)


@pytest.mark.parametrize("punishment", [False, True])
def test_free_text_replies_in_the_papers_form(tmp_path, punishment):
    overrides = ["scenario=donor_game", "population.size=4", "scenario.agents_per_generation=4",
                 "population.mix={llm:2,always_defect:2}", "scenario.generations=1", "scenario.rounds=4",
                 "scenario.reply=free_text", f"scenario.punishment={str(punishment).lower()}"]  # fmt: skip
    with PaperFormServer() as server:
        run_dir = run_with([*overrides, *fake_backend(server, tmp_path / "cache")], tmp_path / "run")
        asked = [r["messages"][-1]["content"] for r in server.requests]
        assert all("response_format" not in r for r in server.requests)
    assert any("Justification:" in a and "Answer:" in a for a in asked)
    rows = read_table(run_dir, "interactions").filter(policy="llm")
    reason = rows["fallback_reason" if "fallback_reason" in rows.columns else "fallback"]
    assert rows.height == 4 and reason.is_null().all()
    assert (rows["amount"] == 1.0).all() and (rows["justification"] != "").all()
    punished = set(rows.filter(action="punish")["round"])
    assert punished == ({1} if punishment else set())  # the server punished in round 1 only
    strategies = read_table(run_dir, "strategies").filter(policy="llm")
    assert (strategies["strategy"] == "My strategy will be to give a third of what I have.").all()


def test_strategy_from_reply_keeps_the_strategy_sentence():
    assert strategy_from_reply("Think.\nMy strategy will be X.") == "My strategy will be X."
    assert strategy_from_reply("  Give half.  ") == "Give half."


def test_the_trace_explanation_has_a_worked_example():
    text = trace_help(3)
    assert '"In round 3, A donated 30% of their resources to B."' in text
    assert "nothing about what A did in rounds 1 or 2, only in round 3" in text
    assert "In round 1" in trace_help(1) and "call them B" not in trace_help(1)


# ---- indirect reciprocity's threshold (Nowak & Sigmund 1998; Nowak 2006) --------------------------------------------


def discriminator_lead(q: float, seed: int) -> float:
    """Per round, how far 39 standing discriminators end ahead of one always-defect invader, in a long
    game (w = 0.999, at most 600 rounds) of fixed-cost donations: c = 1, b = 2."""
    cfg = config(observation_probability=q, generations=1, mutation_rate=0.0, donation="fixed", cost=1.0,
                 multiplier=2.0, continuation=0.999, rounds=600)  # fmt: skip
    tables = play(cfg, {"standing": 39, "always_defect": 1}, seed)
    final = dict(tables["strategies"].group_by("policy").agg(pl.col("final_resources").mean()).rows())
    return (final["standing"] - final["always_defect"]) / tables["interactions"]["round"].max()


def test_discriminators_resist_defectors_iff_q_b_exceeds_c():
    """b/c = 2: resistance iff q > 1/2. Either side of it, every seed: an invader gains b(1 - q) per
    round it receives, a discriminator b - c (a little less: it gives to the invader it cannot see)."""
    below = [discriminator_lead(0.35, seed) for seed in range(5)]
    above = [discriminator_lead(0.65, seed) for seed in range(5)]
    assert max(below) < 0 < min(above), (below, above)
    # the expected lead per round: ((b - c) - b(1 - q)) / 2, less the gifts the invader draws
    assert np.mean(above) == pytest.approx((1 - 2 * 0.35) / 2, abs=0.06)
    assert np.mean(below) == pytest.approx((1 - 2 * 0.65) / 2, abs=0.06)
