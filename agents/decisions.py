"""What a decision is: the action schema (ActionSpec), a batch of requests and the batch of answers.

These types are the contract between scenarios (which ask), policies (which answer, scripted or LLM)
and the engine (which routes batches to shards and records the answers). They hold columns, not
objects, so that a million decisions stay a handful of numpy arrays.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChoiceField(_Frozen):
    """Pick one of a few labelled options; the recorded value is the option's index."""

    kind: Literal["choice"] = "choice"
    name: str
    options: tuple[str, ...] = Field(min_length=2)
    description: str = ""


class NumberField(_Frozen):
    """A number in [minimum, maximum]; integer=True rounds to whole units."""

    kind: Literal["number"] = "number"
    name: str
    minimum: float
    maximum: float
    integer: bool = False
    description: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> NumberField:
        if not self.minimum <= self.maximum:
            raise ValueError(f"field {self.name!r}: minimum {self.minimum} > maximum {self.maximum}")
        return self


class TextField(_Frozen):
    """Short free text (a justification, an argument, a strategy)."""

    kind: Literal["text"] = "text"
    name: str
    max_chars: int = Field(default=400, gt=0)
    description: str = ""


ActionField = Annotated[ChoiceField | NumberField | TextField, Field(discriminator="kind")]


class ActionSpecError(ValueError):
    """A reply that does not fit the ActionSpec."""


class ActionSpec(_Frozen):
    """The schema of one kind of decision.

    A spec with a single choice field is asked as a plain choice (one constrained token on vLLM);
    anything else becomes a JSON object schema. `bounds` are per-decision limits for number fields
    (e.g. a donor cannot give more than it has) carried in the batch, not in the spec. A spec has
    no fallback action: an answer that cannot be obtained is recorded as missing (see `Decisions`),
    never replaced by a move the agent did not choose.

    `reply="free_text"` asks without any structured output, as the papers did (Akata et al. 2023 let
    the model complete "A: Option"; Vallinder & Hughes 2024 parse "Justification: ... Answer: ..."),
    and `parse_free_text` reads the values from the reply: a field named in `free_text_labels` from
    the text after its label ("Answer:"), any other from the whole reply. A reply that does not yield
    every field is an ActionSpecError, so the engine records it as a failure like any invalid reply.
    """

    name: str
    fields: tuple[ActionField, ...] = Field(min_length=1)
    max_tokens: int = Field(default=64, gt=0)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    reply: Literal["structured", "free_text"] = "structured"
    free_text_labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique_names(self) -> ActionSpec:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"spec {self.name!r}: duplicate field names {names}")
        unknown = set(self.free_text_labels) - set(names)
        if unknown:
            raise ValueError(f"spec {self.name!r}: free_text_labels name no field: {sorted(unknown)}")
        if any(not label.strip() or ":" in label for label in self.free_text_labels.values()):
            raise ValueError(f"spec {self.name!r}: a free-text label is a non-empty word without ':'")
        return self

    @property
    def is_free_text(self) -> bool:
        return self.reply == "free_text"

    def parse_free_text(self, text: str, bounds: dict[str, tuple[float, float]] | None = None) -> dict[str, Any]:
        """A free-text reply -> canonical values (see the class docstring); ActionSpecError when it does not fit."""
        return self.validate_reply(read_free_text(self, text), bounds)

    @property
    def is_single_choice(self) -> bool:
        return len(self.fields) == 1 and self.fields[0].kind == "choice"

    def field(self, name: str) -> ChoiceField | NumberField | TextField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def json_schema(self) -> dict[str, Any]:
        """JSON schema for structured outputs (`response_format=json_schema`)."""
        props: dict[str, Any] = {}
        for f in self.fields:
            if f.kind == "choice":
                props[f.name] = {"type": "string", "enum": list(f.options)}
            elif f.kind == "number":
                props[f.name] = {
                    "type": "integer" if f.integer else "number",
                    "minimum": f.minimum,
                    "maximum": f.maximum,
                }
            else:
                props[f.name] = {"type": "string", "maxLength": f.max_chars}
            if f.description:
                props[f.name]["description"] = f.description
        return {
            "type": "object",
            "properties": props,
            "required": [f.name for f in self.fields],
            "additionalProperties": False,
        }

    def validate_reply(
        self, reply: dict[str, Any], bounds: dict[str, tuple[float, float]] | None = None
    ) -> dict[str, Any]:
        """Check a parsed reply (option labels, numbers, text) and return it in canonical form:
        choice → option index, number → float (rounded when integer), text → str.
        `bounds` narrows number fields per decision. Raises ActionSpecError naming the field."""
        if not isinstance(reply, dict):
            raise ActionSpecError(f"{self.name}: expected an object, got {type(reply).__name__}")
        extra = set(reply) - {f.name for f in self.fields}
        if extra:
            raise ActionSpecError(f"{self.name}: unexpected field(s) {sorted(extra)}")
        out: dict[str, Any] = {}
        for f in self.fields:
            if f.name not in reply:
                raise ActionSpecError(f"{self.name}: missing field {f.name!r}")
            value = reply[f.name]
            if f.kind == "choice":
                if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                    if not 0 <= int(value) < len(f.options):
                        raise ActionSpecError(f"{self.name}.{f.name}: option index {value} out of range")
                    out[f.name] = int(value)
                    continue
                label = str(value).strip()
                if label not in f.options:
                    raise ActionSpecError(f"{self.name}.{f.name}: {value!r} is not one of {list(f.options)}")
                out[f.name] = f.options.index(label)
            elif f.kind == "number":
                if isinstance(value, bool):
                    raise ActionSpecError(f"{self.name}.{f.name}: expected a number, got a boolean")
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    raise ActionSpecError(f"{self.name}.{f.name}: {value!r} is not a number") from None
                lo, hi = (bounds or {}).get(f.name, (f.minimum, f.maximum))
                lo, hi = max(lo, f.minimum), min(hi, f.maximum)
                if not math.isfinite(number) or not lo - 1e-9 <= number <= hi + 1e-9:
                    raise ActionSpecError(f"{self.name}.{f.name}: {number} outside [{lo}, {hi}]")
                out[f.name] = float(round(number)) if f.integer else min(max(number, lo), hi)
            else:
                text = "" if value is None else str(value)
                out[f.name] = text[: f.max_chars]
        return out


# ---- reading free-text replies ----------------------------------------------------------------------

_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?|\.\d+)")


def read_free_text(spec: ActionSpec, text: str) -> dict[str, Any]:
    """The raw value of every field of `spec` in a free-text reply (validated by the caller).

    A field with a label ("Answer") is read from the text after the label's first "Answer:" up to the
    next other label (a text field whose label is missing: everything before the first label); a field
    without a label from the whole reply. A choice is the first option named
    (preferring one right after the word "Option", then a case-sensitive whole word, then any case); a
    number is the first number ("1,000" and "2,5" read as 1000 and 2.5); text is the part, trimmed.
    """
    if not isinstance(text, str) or not text.strip():
        raise ActionSpecError(f"{spec.name}: empty reply")
    parts, first = _labelled_parts(text, set(spec.free_text_labels.values()))
    out: dict[str, Any] = {}
    for f in spec.fields:
        label = spec.free_text_labels.get(f.name)
        part = text if label is None else parts.get(label)
        if part is None and f.kind == "text":
            part = text[:first]  # as the released notebook reads a justification: what comes before the answer
        if part is None:
            raise ActionSpecError(f"{spec.name}.{f.name}: the reply has no '{label}:'")
        if f.kind == "choice":
            out[f.name] = _first_option(part, f.options, f"{spec.name}.{f.name}")
        elif f.kind == "number":
            found = _NUMBER.search(part)
            if found is None:
                raise ActionSpecError(f"{spec.name}.{f.name}: no number in {part.strip()[:60]!r}")
            out[f.name] = _to_float(found.group(0))
        else:
            out[f.name] = part.strip()
    return out


def _labelled_parts(text: str, labels: set[str]) -> tuple[dict[str, str], int]:
    """(label -> the text after its first "label:" up to the next occurrence of another label, where the
    first label starts)."""
    if not labels:
        return {}, len(text)
    words = "|".join(map(re.escape, sorted(labels, key=len, reverse=True)))
    pattern = re.compile(rf"(?<![A-Za-z0-9_])({words})\s*:")
    hits = [(m.group(1), m.start(), m.end()) for m in pattern.finditer(text)]
    parts: dict[str, str] = {}
    for k, (label, _, end) in enumerate(hits):
        if label in parts:
            continue
        stop = next((start for other, start, _ in hits[k + 1 :] if other != label), len(text))
        parts[label] = text[end:stop]
    return parts, hits[0][1] if hits else len(text)


def _first_option(part: str, options: tuple[str, ...], where: str) -> str:
    words = "|".join(map(re.escape, sorted(options, key=len, reverse=True)))
    for pattern, flags in (
        (rf"(?<![A-Za-z0-9_])option\s+({words})(?![A-Za-z0-9_])", re.IGNORECASE),
        (rf"(?<![A-Za-z0-9_])({words})(?![A-Za-z0-9_])", 0),
        (rf"(?<![A-Za-z0-9_])({words})(?![A-Za-z0-9_])", re.IGNORECASE),
    ):
        found = re.search(pattern, part, flags)
        if found:
            said = found.group(1)
            return next(o for o in options if o.lower() == said.lower()) if flags else said
    raise ActionSpecError(f"{where}: none of {list(options)} in {part.strip()[:60]!r}")


def _to_float(number: str) -> float:
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", number):
        return float(number.replace(",", ""))
    return float(number.replace(",", "."))


def _column_dtype(f: ChoiceField | NumberField | TextField) -> Any:
    return {"choice": np.int16, "number": np.float64, "text": object}[f.kind]


# What a missing decision holds in each kind of column: no value any analysis could mistake for a move.
MISSING_VALUE: dict[str, Any] = {"choice": -1, "number": math.nan, "text": None}
# the accounting of an answer that cost nothing (see Decisions), one value each
_NO_COST = {
    "latency_ms": np.zeros(1, np.float64),
    "prompt_tokens": np.zeros(1, np.int32),
    "completion_tokens": np.zeros(1, np.int32),
    "cached": np.zeros(1, bool),
    "missing": np.zeros(1, bool),
    "fallback_reason": np.full(1, None, object),
    "attempts": np.zeros(1, np.int32),
}


@lru_cache(maxsize=64)
def _no_cost(n: int) -> dict[str, np.ndarray]:
    """`_NO_COST` for n answers as read-only views (a step asks the same number of decisions as the
    last, so the views are made once, not every step)."""
    return {name: np.broadcast_to(zero, n) for name, zero in _NO_COST.items()}


@dataclass
class DecisionBatch:
    """Many decisions of one kind in one step, as columns.

    `obs` holds scenario-defined per-decision arrays (first axis = decision); `context` holds
    batch-wide constants (round number, payoffs); `bounds` holds per-decision upper limits of number
    fields (a donor cannot give more than it has), by field name. The scheduler fills `policies`
    (codes into the run's policy names, unless the scenario set them) and `seeds` (one 64-bit seed
    per decision, derived from the root seed and the step, so answers do not depend on sharding).
    """

    spec: ActionSpec
    agent_ids: np.ndarray
    obs: dict[str, np.ndarray] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    bounds: dict[str, np.ndarray] = field(default_factory=dict)
    policies: np.ndarray | None = None
    seeds: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.agent_ids = np.asarray(self.agent_ids, dtype=np.int64)
        n = len(self.agent_ids)
        for key, column in self.obs.items():
            if len(column) != n:
                raise ValueError(f"{self.spec.name}: obs[{key!r}] has {len(column)} rows, expected {n}")
        for key, column in self.bounds.items():
            if self.spec.field(key).kind != "number" or len(column) != n:
                raise ValueError(f"{self.spec.name}: bounds[{key!r}] must be a number field with {n} rows")

    def __len__(self) -> int:
        return len(self.agent_ids)

    def take(self, index: np.ndarray) -> DecisionBatch:
        """The sub-batch at `index` (used to route decisions to shards and policies). Built without
        re-checking the columns: a part of a valid batch is valid, and small steps take many parts."""
        part = object.__new__(DecisionBatch)
        part.spec, part.context = self.spec, self.context
        part.agent_ids = self.agent_ids[index]
        part.obs = {k: v[index] for k, v in self.obs.items()}
        part.bounds = {k: v[index] for k, v in self.bounds.items()}
        part.policies = None if self.policies is None else self.policies[index]
        part.seeds = None if self.seeds is None else self.seeds[index]
        return part

    def row(self, i: int) -> dict[str, Any]:
        """Decision i's observation as a dict of scalars (what a prompt is rendered from)."""
        return {k: v[i] for k, v in self.obs.items()}

    def uniforms(self, index: np.ndarray | None = None) -> np.ndarray:
        """One uniform draw in [0, 1) per decision (those at `index` only, if given), from its seed (for
        scripted randomness)."""
        if self.seeds is None:
            raise RuntimeError("seeds are filled in by the scheduler before policies run")
        seeds = self.seeds if index is None else self.seeds[index]
        return (seeds >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


@dataclass
class Decisions:
    """The answers to one DecisionBatch, aligned with it, plus per-decision accounting.

    A decision that could not be obtained (server errors after the client's retries, replies that
    never fit the spec after the re-asks) has `missing[i]` set, its reason in `fallback_reason[i]`
    and `MISSING_VALUE` in every value column: -1 for a choice, NaN for a number, None for text.
    Scenarios decide what a missing decision means; nothing here substitutes a move.

    The transcript columns are filled by the LLM policy: `messages` (the chat messages as sent,
    JSON text), `reply` (raw text of the last attempt, None when no reply arrived) and `attempts`
    (HTTP attempts, client retries included; 0 when cached or scripted). `messages` and `reply` are
    None as a whole when no decision of the batch went to a model (scripted batches stay cheap),
    else object arrays with None for the decisions that did not.
    """

    values: dict[str, np.ndarray]
    latency_ms: np.ndarray
    prompt_tokens: np.ndarray
    completion_tokens: np.ndarray
    cached: np.ndarray
    missing: np.ndarray  # bool
    fallback_reason: np.ndarray  # object: None, or why the decision is missing
    attempts: np.ndarray  # int32
    messages: np.ndarray | None = None  # object: JSON text of the messages as sent, or None
    reply: np.ndarray | None = None  # object: raw reply text of the last attempt, or None

    def __len__(self) -> int:
        return len(self.latency_ms)

    @classmethod
    def scripted(cls, values: dict[str, np.ndarray]) -> Decisions:
        """Answers computed locally: no latency, no tokens, never missing, no transcript. The accounting
        columns are read-only views of one zero each (a million scripted decisions a step cost no
        memory for them); `put` them into answers of `empty` or `unanswered` to combine them."""
        return cls(values=values, **_no_cost(len(next(iter(values.values())))))

    @classmethod
    def _blank(cls, values: dict[str, np.ndarray]) -> Decisions:
        """Writable zero-cost accounting for answers to be filled in by index."""
        n = len(next(iter(values.values())))
        return cls(values=values, **{name: np.full(n, zero[0], zero.dtype) for name, zero in _NO_COST.items()})

    @classmethod
    def empty(cls, spec: ActionSpec, n: int) -> Decisions:
        """Blank answers of the right dtypes (zeros, text fields empty), to be filled in by index."""
        values = {f.name: np.zeros(n, _column_dtype(f)) for f in spec.fields}
        for f in spec.fields:
            if f.kind == "text":
                values[f.name][:] = ""
        return cls._blank(values)

    @classmethod
    def unanswered(cls, spec: ActionSpec, n: int) -> Decisions:
        """n decisions not obtained yet: MISSING_VALUE everywhere and `missing` set (no reason yet)."""
        values = {f.name: np.full(n, MISSING_VALUE[f.kind], dtype=_column_dtype(f)) for f in spec.fields}
        out = cls._blank(values)
        out.missing[:] = True
        return out

    def take(self, index: np.ndarray) -> Decisions:
        """The answers at `index` (the inverse of `put`)."""
        return Decisions(
            values={k: v[index] for k, v in self.values.items()},
            latency_ms=self.latency_ms[index],
            prompt_tokens=self.prompt_tokens[index],
            completion_tokens=self.completion_tokens[index],
            cached=self.cached[index],
            missing=self.missing[index],
            fallback_reason=self.fallback_reason[index],
            attempts=self.attempts[index],
            messages=None if self.messages is None else self.messages[index],
            reply=None if self.reply is None else self.reply[index],
        )

    def put(self, index: np.ndarray, part: Decisions) -> None:
        """Write `part` (answers to batch.take(index)) into this batch's slots."""
        for key, column in part.values.items():
            self.values[key][index] = column
        for name in _NO_COST:
            mine = getattr(self, name)
            if not mine.flags.writeable:  # a scripted answer's shared zeros: its own copy from now on
                mine = np.array(mine)
                setattr(self, name, mine)
            mine[index] = getattr(part, name)
        if part.messages is not None:
            if self.messages is None:
                self.messages = np.full(len(self), None, dtype=object)
            self.messages[index] = part.messages
        if part.reply is not None:
            if self.reply is None:
                self.reply = np.full(len(self), None, dtype=object)
            self.reply[index] = part.reply
