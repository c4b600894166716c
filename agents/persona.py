"""Persona: who an agent is. Data only; prompts and policies read it, nothing here acts."""

from __future__ import annotations

from typing import Literal

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

Unit = Field(ge=0.0, le=1.0)


class BigFive(BaseModel):
    """Big Five traits on [0, 1]."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    openness: float = Unit
    conscientiousness: float = Unit
    extraversion: float = Unit
    agreeableness: float = Unit
    neuroticism: float = Unit


class SchwartzValues(BaseModel):
    """Importance of Schwartz's ten basic values on [0, 1]."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    self_direction: float = Unit
    stimulation: float = Unit
    hedonism: float = Unit
    achievement: float = Unit
    power: float = Unit
    security: float = Unit
    conformity: float = Unit
    tradition: float = Unit
    benevolence: float = Unit
    universalism: float = Unit


class Persona(BaseModel):
    """One simulated person. `id` is the user's identifier (edge lists refer to it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    age: int = Field(ge=0, le=130)
    gender: str
    country: str
    education: str
    occupation: str
    political_leaning: Literal["left", "centre_left", "centre", "centre_right", "right"]
    big_five: BigFive
    values: SchwartzValues
    backstory: str = ""

    def flat(self) -> dict[str, object]:
        """One flat row (big_five.x → big5_x, values.x → value_x), the Parquet layout."""
        row: dict[str, object] = self.model_dump(exclude={"big_five", "values"})
        row.update({f"big5_{k}": v for k, v in self.big_five.model_dump().items()})
        row.update({f"value_{k}": v for k, v in self.values.model_dump().items()})
        return row

    @classmethod
    def from_flat(cls, row: dict[str, object]) -> Persona:
        """Inverse of `flat`; also accepts nested `big_five`/`values` objects as in JSONL files."""
        data = dict(row)
        if "big_five" not in data:
            data["big_five"] = {k: data.pop(f"big5_{k}", None) for k in BIG_FIVE}
        if "values" not in data:
            data["values"] = {k: data.pop(f"value_{k}", None) for k in SCHWARTZ_VALUES}
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
