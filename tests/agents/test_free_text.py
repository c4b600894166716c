"""Free-text replies (ActionSpec reply="free_text"): the completion after "A: Option" of Akata et al.
(2023) and the "Justification: ... Answer: ..." form of Vallinder & Hughes (2024), read into the same
canonical values as structured replies, and every unreadable reply an ActionSpecError."""

from __future__ import annotations

import pytest

from agents.decisions import ActionSpec, ActionSpecError, ChoiceField, NumberField, TextField

MOVE = ActionSpec(name="move", fields=(ChoiceField(name="move", options=("J", "F")),), reply="free_text")
DONATE = ActionSpec(
    name="donate",
    fields=(TextField(name="justification", max_chars=60), NumberField(name="amount", minimum=0, maximum=1e6)),
    reply="free_text",
    free_text_labels={"justification": "Justification", "amount": "Answer"},
)
PUNISH = ActionSpec(
    name="punish",
    fields=(
        TextField(name="justification"),
        ChoiceField(name="action", options=("donate", "punish")),
        NumberField(name="amount", minimum=0, maximum=1e6),
    ),
    reply="free_text",
    free_text_labels={"justification": "Justification", "action": "Answer", "amount": "Answer"},
)


@pytest.mark.parametrize(
    ("reply", "move"),
    [(" J", 0), ("F", 1), ("F.", 1), ("Option F", 1), (" J\n\nBecause the other player cooperated.", 0),
     ("I choose F", 1), ("option j", 0), ("Option F, not Option J", 1)],
)  # fmt: skip
def test_completion_after_a_option(reply, move):
    assert MOVE.parse_free_text(reply) == {"move": move}


@pytest.mark.parametrize("reply", ["", "   ", "I cannot decide", "Jump"])
def test_a_completion_naming_no_option_fails(reply):
    with pytest.raises(ActionSpecError):
        MOVE.parse_free_text(reply)


def test_relabelled_options_are_read_as_their_canonical_index():
    spec = ActionSpec(name="m", fields=(ChoiceField(name="move", options=("Blue", "Red")),), reply="free_text")
    assert spec.parse_free_text(" Red") == {"move": 1}
    assert spec.parse_free_text("option blue") == {"move": 0}


def test_justification_then_answer():
    reply = "Justification:\nThey gave 50% last time, so I return the favour.\n\nAnswer: 2.5"
    assert DONATE.parse_free_text(reply, {"amount": (0, 10)}) == {
        "justification": "They gave 50% last time, so I return the favour.",
        "amount": 2.5,
    }


@pytest.mark.parametrize(
    ("reply", "amount", "why"),
    [
        ("Answer: 3", 3.0, ""),  # no justification label: what precedes the answer (nothing)
        ("I think so. Answer: 3 units (30%)", 3.0, "I think so."),
        ("Justification: my answer: be kind\nAnswer: 1,000", 1000.0, "my answer: be kind"),
        ("Justification: x\nAnswer: 2,5", 2.5, "x"),
        ("Justification: x\nAnswer: .5", 0.5, "x"),
    ],
)
def test_answer_forms(reply, amount, why):
    assert DONATE.parse_free_text(reply) == {"justification": why, "amount": amount}


def test_justification_is_cut_to_its_field():
    long = "Justification: " + "x" * 100 + "\nAnswer: 1"
    assert DONATE.parse_free_text(long)["justification"] == "x" * 60


@pytest.mark.parametrize(
    "reply",
    ["Justification: I give nothing", "Justification: x\nAnswer: nothing", "Justification: x\nAnswer: 20"],
)
def test_an_answer_that_is_missing_unreadable_or_too_large_fails(reply):
    with pytest.raises(ActionSpecError):
        DONATE.parse_free_text(reply, {"amount": (0, 10)})


@pytest.mark.parametrize(
    ("reply", "action", "amount"),
    [("Justification: fair\nAnswer: Donate, 3", 0, 3.0), ("Justification: they hoard\nAnswer: Punish, 1.5", 1, 1.5),
     ("Answer: punish 2", 1, 2.0)],
)  # fmt: skip
def test_donate_or_punish(reply, action, amount):
    got = PUNISH.parse_free_text(reply)
    assert (got["action"], got["amount"]) == (action, amount)


def test_labels_must_name_fields():
    with pytest.raises(ValueError, match="free_text_labels name no field"):
        ActionSpec(name="x", fields=MOVE.fields, reply="free_text", free_text_labels={"nope": "Answer"})
    with pytest.raises(ValueError, match="non-empty word without ':'"):
        ActionSpec(name="x", fields=MOVE.fields, reply="free_text", free_text_labels={"move": "Answer:"})


def test_structured_specs_are_not_free_text():
    assert not ActionSpec(name="x", fields=MOVE.fields).is_free_text and MOVE.is_free_text
