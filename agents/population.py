"""Populations: personas sampled from configurable distributions or loaded from files, plus each
agent's policy. Held as one polars table (agent_id = row index) so 100k agents stay cheap."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agents.persona import BIG_FIVE, FLAT_COLUMNS, POLITICAL_LEANINGS, SCHWARTZ_VALUES, Persona


class PersonaFileError(ValueError):
    """A persona file that cannot be used; the message names the file, the row and the field."""


def _weights(mapping: dict[str, float], what: str) -> dict[str, float]:
    if not mapping:
        raise ValueError(f"{what}: needs at least one category")
    if any(w < 0 for w in mapping.values()) or sum(mapping.values()) <= 0:
        raise ValueError(f"{what}: weights must be >= 0 with a positive sum")
    return mapping


class SamplerConfig(BaseModel):
    """Distributions personas are drawn from. Categorical fields take {category: weight}."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    age_min: int = Field(default=18, ge=0, le=130)
    age_max: int = Field(default=80, ge=0, le=130)
    gender: dict[str, float] = {"female": 0.49, "male": 0.49, "non-binary": 0.02}
    country: dict[str, float] = {
        "United States": 0.25, "India": 0.15, "Brazil": 0.1, "Germany": 0.1, "Nigeria": 0.1,
        "Japan": 0.1, "United Kingdom": 0.1, "Mexico": 0.1,
    }  # fmt: skip
    education: dict[str, float] = {
        "secondary school": 0.35, "vocational training": 0.2, "bachelor's degree": 0.3,
        "master's degree": 0.12, "doctorate": 0.03,
    }  # fmt: skip
    occupation: dict[str, float] = {
        "teacher": 0.1, "nurse": 0.1, "engineer": 0.1, "shop assistant": 0.1, "farmer": 0.1,
        "software developer": 0.1, "retired": 0.1, "student": 0.1, "civil servant": 0.1, "artist": 0.1,
    }  # fmt: skip
    political_leaning: dict[str, float] = {k: 0.2 for k in POLITICAL_LEANINGS}
    big_five_mean: float = Field(default=0.5, ge=0.0, le=1.0)
    big_five_sd: float = Field(default=0.15, ge=0.0, le=1.0)
    values_alpha: float = Field(default=2.0, gt=0.0)
    values_beta: float = Field(default=2.0, gt=0.0)

    @field_validator("gender", "country", "education", "occupation", "political_leaning")
    @classmethod
    def _valid_weights(cls, v: dict[str, float], info) -> dict[str, float]:
        _weights(v, f"population.sampler.{info.field_name}")
        if info.field_name == "political_leaning":
            unknown = set(v) - set(POLITICAL_LEANINGS)
            if unknown:
                raise ValueError(f"unknown leaning(s) {sorted(unknown)}; use {list(POLITICAL_LEANINGS)}")
        return v


_FIRST_NAMES = {
    "female": ("Ada", "Amara", "Chen", "Elena", "Fatima", "Grace", "Hana", "Ines", "Leila", "Maya",
               "Nadia", "Olga", "Priya", "Rosa", "Sofia", "Yuki"),
    "male": ("Ahmed", "Bruno", "Carlos", "David", "Emeka", "Felix", "Hiro", "Ivan", "Jonas", "Kofi",
             "Lucas", "Marco", "Omar", "Pavel", "Ravi", "Tomas"),
}  # fmt: skip


def _draw(rng: np.random.Generator, mapping: dict[str, float], n: int) -> np.ndarray:
    keys = list(mapping)
    p = np.array([mapping[k] for k in keys], dtype=float)
    return np.array(keys, dtype=object)[rng.choice(len(keys), size=n, p=p / p.sum())]


def sample_personas(config: SamplerConfig, n: int, rng: np.random.Generator) -> pl.DataFrame:
    """Draw n personas (flat columns). Every field comes from `rng`, so the seed fixes the population."""
    if config.age_min > config.age_max:
        raise ValueError(f"population.sampler: age_min {config.age_min} > age_max {config.age_max}")
    gender = _draw(rng, config.gender, n)
    first = np.empty(n, dtype=object)
    pool_all = _FIRST_NAMES["female"] + _FIRST_NAMES["male"]
    name_draw = rng.integers(0, 1 << 30, size=n)
    for i in range(n):
        pool = _FIRST_NAMES.get(gender[i], pool_all)
        first[i] = pool[name_draw[i] % len(pool)]
    cols: dict[str, object] = {
        "id": [str(i) for i in range(n)],
        "name": [f"{first[i]} {i}" for i in range(n)],
        "age": rng.integers(config.age_min, config.age_max + 1, size=n),
        "gender": gender,
        "country": _draw(rng, config.country, n),
        "education": _draw(rng, config.education, n),
        "occupation": _draw(rng, config.occupation, n),
        "political_leaning": _draw(rng, config.political_leaning, n),
    }
    big5 = np.clip(rng.normal(config.big_five_mean, config.big_five_sd, size=(n, len(BIG_FIVE))), 0, 1)
    values = rng.beta(config.values_alpha, config.values_beta, size=(n, len(SCHWARTZ_VALUES)))
    for j, trait in enumerate(BIG_FIVE):
        cols[f"big5_{trait}"] = big5[:, j]
    for j, value in enumerate(SCHWARTZ_VALUES):
        cols[f"value_{value}"] = values[:, j]
    cols["backstory"] = [
        f"{cols['name'][i]} is a {cols['age'][i]}-year-old {cols['occupation'][i]} from "
        f"{cols['country'][i]} whose education ended with {cols['education'][i]}."
        for i in range(n)
    ]
    return _typed(pl.DataFrame(cols))


def _typed(frame: pl.DataFrame) -> pl.DataFrame:
    floats = [c for c in FLAT_COLUMNS if c.startswith(("big5_", "value_"))]
    return frame.select(FLAT_COLUMNS).with_columns(pl.col("age").cast(pl.Int32), pl.col(floats).cast(pl.Float64))


def load_personas(path: str | Path) -> pl.DataFrame:
    """Read personas from JSONL, CSV or Parquet and validate every row as a Persona.

    Columns may be flat (big5_openness, value_benevolence, ...) or, in JSONL, nested objects
    (big_five, values). Raises PersonaFileError naming the file, the 1-based row and the field."""
    path = Path(path)
    if not path.is_file():
        raise PersonaFileError(f"persona file {path}: not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            import json

            rows = []
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if line.strip():
                    try:
                        rows.append((number, json.loads(line)))
                    except json.JSONDecodeError as exc:
                        raise PersonaFileError(
                            f"persona file {path}, line {number}: invalid JSON ({exc.msg})"
                        ) from None
        elif suffix == ".csv":
            frame = pl.read_csv(path, infer_schema=False)
            rows = list(enumerate(frame.to_dicts(), start=2))  # row 1 is the header
        elif suffix == ".parquet":
            rows = list(enumerate(pl.read_parquet(path).to_dicts(), start=1))
        else:
            raise PersonaFileError(f"persona file {path}: unknown format {suffix!r} (use .jsonl, .csv or .parquet)")
    except PersonaFileError:
        raise
    except Exception as exc:  # polars/pyarrow parse errors
        raise PersonaFileError(f"persona file {path}: cannot be read ({type(exc).__name__}: {exc})") from None
    if not rows:
        raise PersonaFileError(f"persona file {path}: no personas")
    personas, seen = [], {}
    for number, row in rows:
        if not isinstance(row, dict):
            raise PersonaFileError(f"persona file {path}, row {number}: expected an object")
        try:
            persona = Persona.from_flat({k: v for k, v in row.items() if v != ""})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "row"
            raise PersonaFileError(f"persona file {path}, row {number}: {where}: {err['msg']}") from None
        if persona.id in seen:
            raise PersonaFileError(
                f"persona file {path}, row {number}: duplicate id {persona.id!r} (first at row {seen[persona.id]})"
            )
        seen[persona.id] = number
        personas.append(persona.flat())
    return _typed(pl.DataFrame(personas))


@dataclass
class Population:
    """Personas plus the policy of each agent. Agent i is row i; `policy_names[policy_codes[i]]`."""

    personas: pl.DataFrame
    policy_names: tuple[str, ...]
    policy_codes: np.ndarray

    @property
    def size(self) -> int:
        return self.personas.height

    def persona(self, agent_id: int) -> Persona:
        return Persona.from_flat(self.personas.row(agent_id, named=True))

    def agents_table(self) -> pl.DataFrame:
        """agents.parquet: agent_id, policy, then the persona columns."""
        return self.personas.select(
            pl.int_range(self.size, dtype=pl.Int64).alias("agent_id"),
            pl.Series("policy", np.array(self.policy_names, dtype=object)[self.policy_codes], pl.String),
            pl.all(),
        )


def allocate_mix(mix: dict[str, float], size: int) -> dict[str, int]:
    """Turn {policy: count or fraction} into exact counts summing to `size`.

    Whole numbers summing to `size` are counts. Otherwise every value must be at most 1 and the
    values are relative shares (largest-remainder rounding), so {a: 1.0} means everyone and
    {a: 0.5, b: 0.5} half each. Anything else (whole counts with the wrong sum, or counts mixed with
    fractions) is an error rather than a guess."""
    if not mix:
        raise ValueError("population.mix is empty")
    values = list(mix.values())
    if any(v < 0 for v in values):
        raise ValueError("population.mix: counts and fractions must be >= 0")
    whole = all(float(v).is_integer() for v in values)
    if whole and sum(values) == size:
        return {k: int(v) for k, v in mix.items()}
    if any(v > 1 for v in values):
        if whole:
            raise ValueError(f"population.mix counts sum to {int(sum(values))} but population.size is {size}")
        raise ValueError("population.mix mixes counts and fractions; use whole counts or fractions only")
    weights = np.array(values, dtype=float)
    if weights.sum() <= 0:
        raise ValueError("population.mix: fractions sum to 0")
    exact = weights / weights.sum() * size
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: size - counts.sum()]:
        counts[i] += 1
    return dict(zip(mix, counts.tolist(), strict=True))


def assign_policies(counts: dict[str, int], universe: tuple[str, ...], rng: np.random.Generator) -> np.ndarray:
    """A shuffled code per agent (index into `universe`, every policy the run may use), so no policy
    sits in one block of agent ids (and so on one shard)."""
    unknown = [name for name in counts if name not in universe]
    if unknown:
        raise ValueError(f"population.mix: unknown policy {unknown[0]!r}; choose from {list(universe)}")
    codes = np.repeat(np.array([universe.index(name) for name in counts], dtype=np.int16), list(counts.values()))
    return rng.permutation(codes)
