"""Persona: who an agent is. Data only; prompts and policies read it, nothing here acts.

The schema is open: a persona file may carry any extra columns (religion, party, region, ...), which
are kept in agents.parquet and usable in prompt templates as `{persona.<column>}`. Only `id` is needed
by the engine (edge lists refer to it); the known columns below are validated when present, because
the sampler, `persona_text` and some scenarios (e.g. value diffusion from `value_*`) read them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

BIG_FIVE = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")
SCHWARTZ_VALUES = (
    "self_direction",
    "stimulation",
    "hedonism",
    "achievement",
    "power",
    "security",
    "conformity",
    "tradition",
    "benevolence",
    "universalism",
)
POLITICAL_LEANINGS = ("left", "centre_left", "centre", "centre_right", "right")
TEXT_COLUMNS = ("id", "name", "gender", "country", "education", "occupation", "political_leaning", "backstory")
RESERVED_COLUMNS = ("agent_id", "policy")  # agents.parquet's own columns

Unit = Field(default=None, ge=0.0, le=1.0)


class BigFive(BaseModel):
    """Big Five traits on [0, 1] (any subset)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    openness: float | None = Unit
    conscientiousness: float | None = Unit
    extraversion: float | None = Unit
    agreeableness: float | None = Unit
    neuroticism: float | None = Unit


class SchwartzValues(BaseModel):
    """Importance of Schwartz's ten basic values on [0, 1] (any subset)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    self_direction: float | None = Unit
    stimulation: float | None = Unit
    hedonism: float | None = Unit
    achievement: float | None = Unit
    power: float | None = Unit
    security: float | None = Unit
    conformity: float | None = Unit
    tradition: float | None = Unit
    benevolence: float | None = Unit
    universalism: float | None = Unit


class Persona(BaseModel):
    """One simulated person. `id` is the user's identifier (edge lists refer to it); every other
    field is optional, and fields the schema does not know are kept as they are."""

    model_config = ConfigDict(extra="allow", frozen=True)
    id: str = Field(min_length=1)
    name: str | None = None
    age: int | None = Field(default=None, ge=0, le=130)
    gender: str | None = None
    country: str | None = None
    education: str | None = None
    occupation: str | None = None
    political_leaning: str | None = None
    big_five: BigFive | None = None
    values: SchwartzValues | None = None
    backstory: str | None = None

    def flat(self) -> dict[str, object]:
        """One flat row (big_five.x → big5_x, values.x → value_x, extra columns as given), the Parquet layout."""
        row: dict[str, object] = self.model_dump(exclude={"big_five", "values"})
        if self.big_five is not None:
            row.update({f"big5_{k}": v for k, v in self.big_five.model_dump().items() if v is not None})
        if self.values is not None:
            row.update({f"value_{k}": v for k, v in self.values.model_dump().items() if v is not None})
        return {k: v for k, v in row.items() if v is not None}

    @classmethod
    def from_flat(cls, row: dict[str, object]) -> Persona:
        """Inverse of `flat`; also accepts nested `big_five`/`values` objects as in JSONL files."""
        data = dict(row)
        for nested, prefix, names in (("big_five", "big5_", BIG_FIVE), ("values", "value_", SCHWARTZ_VALUES)):
            if nested not in data:
                found = {k: data.pop(f"{prefix}{k}") for k in names if f"{prefix}{k}" in data}
                if found:
                    data[nested] = found
        return cls.model_validate(data)


FLAT_COLUMNS = (
    "id",
    "name",
    "age",
    "gender",
    "country",
    "education",
    "occupation",
    "political_leaning",
    *(f"big5_{k}" for k in BIG_FIVE),
    *(f"value_{k}" for k in SCHWARTZ_VALUES),
    "backstory",
)
