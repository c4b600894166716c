"""ActionSpec validates replies field by field and becomes the structured-output schema."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from agents.decisions import ActionSpec, ActionSpecError, ChoiceField, DecisionBatch, Decisions, NumberField, TextField

DONATE = ActionSpec(
    name="donate",
    fields=(
        TextField(name="justification", max_chars=20),
        ChoiceField(name="action", options=("donate", "punish")),
        NumberField(name="amount", minimum=0, maximum=100),
    ),
)


def test_reply_in_canonical_form():
    reply = DONATE.validate_reply({"justification": "x" * 50, "action": "punish", "amount": "12.5"})
    assert reply == {"justification": "x" * 20, "action": 1, "amount": 12.5}


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ({"justification": "", "action": "steal", "amount": 1}, r"donate\.action: 'steal' is not one of"),
        ({"justification": "", "action": "donate"}, "missing field 'amount'"),
        ({"justification": "", "action": "donate", "amount": 101}, r"amount: 101.0 outside \[0.0, 100.0\]"),
        ({"justification": "", "action": "donate", "amount": "lots"}, "'lots' is not a number"),
        ({"justification": "", "action": "donate", "amount": 1, "tip": 2}, "unexpected field"),
        ([1, 2], "expected an object"),
    ],
)
def test_bad_replies_name_the_field(reply, message):
    with pytest.raises(ActionSpecError, match=message):
        DONATE.validate_reply(reply)


def test_per_decision_bounds_narrow_numbers():
    assert (
        DONATE.validate_reply({"justification": "", "action": 0, "amount": 5}, bounds={"amount": (0, 5)})["amount"] == 5
    )
    with pytest.raises(ActionSpecError, match=r"outside \[0, 4\]"):
        DONATE.validate_reply({"justification": "", "action": 0, "amount": 5}, bounds={"amount": (0, 4)})


def test_json_schema_is_closed_and_complete():
    schema = DONATE.json_schema()
    assert schema["required"] == ["justification", "action", "amount"] and schema["additionalProperties"] is False
    assert schema["properties"]["action"]["enum"] == ["donate", "punish"]
    assert schema["properties"]["amount"] == {"type": "number", "minimum": 0, "maximum": 100}
    assert not DONATE.is_single_choice


def test_spec_has_no_fallback_action():
    with pytest.raises(ValidationError, match="fallback"):
        ActionSpec(name="m", fields=(ChoiceField(name="move", options=("J", "F")),), fallback={"move": "J"})


def test_unanswered_decisions_hold_no_value_that_reads_as_a_move():
    out = Decisions.unanswered(DONATE, 3)
    assert out.missing.all() and out.values["action"].tolist() == [-1, -1, -1]
    assert np.isnan(out.values["amount"]).all() and out.values["justification"].tolist() == [None] * 3
    assert out.fallback_reason.tolist() == [None] * 3 and out.attempts.tolist() == [0, 0, 0]
    whole = Decisions.empty(DONATE, 4)
    whole.put(np.array([1, 3]), _first(out, 2))
    assert whole.missing.tolist() == [False, True, False, True]
    assert whole.values["action"].tolist() == [0, -1, 0, -1]
    assert whole.reply.tolist() == [None, "J", None, "J"] and whole.messages[0] is None
    assert Decisions.scripted({"action": np.zeros(2, np.int16)}).messages is None  # scripted batches carry none


def _first(out: Decisions, k: int) -> Decisions:
    return Decisions(
        values={name: column[:k] for name, column in out.values.items()},
        latency_ms=out.latency_ms[:k], prompt_tokens=out.prompt_tokens[:k],
        completion_tokens=out.completion_tokens[:k], cached=out.cached[:k], missing=out.missing[:k],
        fallback_reason=out.fallback_reason[:k], attempts=out.attempts[:k],
        messages=np.array(['[{"role":"user","content":"hi"}]'] * k, dtype=object),
        reply=np.array(["J"] * k, dtype=object),
    )  # fmt: skip


def test_batch_take_and_put_round_trip():
    spec = ActionSpec(name="m", fields=(ChoiceField(name="move", options=("J", "F")),))
    batch = DecisionBatch(spec=spec, agent_ids=np.arange(6), obs={"x": np.arange(6) * 10},
                          seeds=np.arange(6, dtype=np.uint64))  # fmt: skip
    index = np.array([4, 1])
    part = batch.take(index)
    assert part.agent_ids.tolist() == [4, 1] and part.obs["x"].tolist() == [40, 10]
    whole = Decisions.empty(spec, 6)
    whole.put(index, Decisions.scripted({"move": np.array([1, 1], np.int16)}))
    assert whole.values["move"].tolist() == [0, 1, 0, 0, 1, 0]
    with pytest.raises(ValueError, match="obs\\['x'\\] has 2 rows"):
        DecisionBatch(spec=spec, agent_ids=np.arange(3), obs={"x": np.arange(2)})


def test_uniforms_come_from_the_seeds():
    spec = ActionSpec(name="m", fields=(ChoiceField(name="move", options=("J", "F")),))
    seeds = np.random.default_rng(0).integers(0, 2**64 - 1, 10_000, dtype=np.uint64, endpoint=True)
    u = DecisionBatch(spec=spec, agent_ids=np.zeros(10_000), seeds=seeds).uniforms()
    assert ((u >= 0) & (u < 1)).all() and 0.49 < u.mean() < 0.51
