"""Populations: personas sampled from configurable distributions or loaded from files, plus each
agent's policy. Held as one polars table (agent_id = row index) so a million agents stay cheap."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agents.persona import BIG_FIVE, FLAT_COLUMNS, POLITICAL_LEANINGS, RESERVED_COLUMNS, SCHWARTZ_VALUES, Persona

# The policy name of language-model agents; "llm@<name>" names one of several models (see backend.models).
LLM = "llm"
DEFAULT_MAX_TEXT_CHARS = 4000


def is_llm(policy: str) -> bool:
    """True for language-model policies ("llm", "llm@<model>"), False for scripted ones."""
    return policy == LLM or policy.startswith(LLM + "@")


def code_mask(codes: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Whether each policy code is one of `among` (a single code, the usual case of one model, is one
    comparison rather than `np.isin`'s sort; this runs on every step's decisions)."""
    return codes == among[0] if len(among) == 1 else np.isin(codes, among)


def model_key(policy: str) -> str | None:
    """The key of backend.models a language-model policy names ("llm@gpt-a" -> "gpt-a"); None for
    plain "llm" (the backend's default model)."""
    return policy.removeprefix(LLM + "@") if policy.startswith(LLM + "@") else None


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

    @field_validator("age_max")
    @classmethod
    def _ordered_ages(cls, v: int, info) -> int:
        low = info.data.get("age_min")
        if low is not None and v < low:
            raise ValueError(f"must be >= age_min ({low}), got {v}")
        return v


_FIRST_NAMES = {
    "female": ("Ada", "Amara", "Chen", "Elena", "Fatima", "Grace", "Hana", "Ines", "Leila", "Maya",
               "Nadia", "Olga", "Priya", "Rosa", "Sofia", "Yuki"),
    "male": ("Ahmed", "Bruno", "Carlos", "David", "Emeka", "Felix", "Hiro", "Ivan", "Jonas", "Kofi",
             "Lucas", "Marco", "Omar", "Pavel", "Ravi", "Tomas"),
}  # fmt: skip


def _draw_codes(rng: np.random.Generator, mapping: dict[str, float], n: int) -> tuple[list[str], np.ndarray]:
    """n draws of the mapping's keys with its weights, as (keys, code of each draw)."""
    keys = list(mapping)
    p = np.array([mapping[k] for k in keys], dtype=float)
    return keys, rng.choice(len(keys), size=n, p=p / p.sum())


def _draw(rng: np.random.Generator, mapping: dict[str, float], n: int) -> pl.Series:
    keys, codes = _draw_codes(rng, mapping, n)
    return pl.Series(keys, dtype=pl.String).gather(codes)


def _first_names(genders: list[str], gender_codes: np.ndarray, draw: np.ndarray) -> pl.Series:
    """Each agent's first name: `draw` modulo the size of its gender's pool (both pools for another
    gender), gathered from the pools laid end to end (no Python string per agent)."""
    pool_all = _FIRST_NAMES["female"] + _FIRST_NAMES["male"]
    pools = [_FIRST_NAMES.get(value, pool_all) for value in genders]
    sizes = np.array([len(pool) for pool in pools], np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    names = pl.Series([name for pool in pools for name in pool], dtype=pl.String)
    return names.gather(starts[gender_codes] + draw % sizes[gender_codes])


def sample_personas(config: SamplerConfig, n: int, rng: np.random.Generator) -> pl.DataFrame:
    """Draw n personas (flat columns). Every field comes from `rng`, so the seed fixes the population.
    Vectorised: no Python loop over agents."""
    genders, gender_codes = _draw_codes(rng, config.gender, n)
    gender = pl.Series(genders, dtype=pl.String).gather(gender_codes)
    first = _first_names(genders, gender_codes, rng.integers(0, 1 << 30, size=n))
    frame = pl.DataFrame(
        {
            "id": pl.int_range(n, eager=True).cast(pl.String),
            "first": first,
            "age": rng.integers(config.age_min, config.age_max + 1, size=n),
            "gender": gender,
            "country": _draw(rng, config.country, n),
            "education": _draw(rng, config.education, n),
            "occupation": _draw(rng, config.occupation, n),
            "political_leaning": _draw(rng, config.political_leaning, n),
        }
    )
    big5 = np.clip(rng.normal(config.big_five_mean, config.big_five_sd, size=(n, len(BIG_FIVE))), 0, 1)
    values = rng.beta(config.values_alpha, config.values_beta, size=(n, len(SCHWARTZ_VALUES)))
    frame = frame.with_columns(
        pl.concat_str("first", pl.lit(" "), "id").alias("name"),
        *(pl.Series(f"big5_{t}", big5[:, j]) for j, t in enumerate(BIG_FIVE)),
        *(pl.Series(f"value_{v}", values[:, j]) for j, v in enumerate(SCHWARTZ_VALUES)),
    ).with_columns(
        pl.concat_str(
            "name", pl.lit(" is a "), "age", pl.lit("-year-old "), "occupation", pl.lit(" from "), "country",
            pl.lit(" whose education ended with "), "education", pl.lit("."),
        ).alias("backstory")
    )  # fmt: skip
    return _typed(frame.select(FLAT_COLUMNS))


def _typed(frame: pl.DataFrame) -> pl.DataFrame:
    """Known columns first in their usual order, with their types; extra columns after, as given."""
    known = [c for c in FLAT_COLUMNS if c in frame.columns]
    extra = [c for c in frame.columns if c not in FLAT_COLUMNS]
    casts = {c: pl.Float64 for c in known if c.startswith(("big5_", "value_"))}
    if "age" in frame.columns:
        casts["age"] = pl.Int32
    return frame.select(*known, *extra).cast(casts)


def _read_rows(path: Path) -> list[tuple[int, Any]]:
    """(row number as the user counts it, raw row) from a JSONL, CSV or Parquet file."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            rows = []
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if line.strip():
                    try:
                        rows.append((number, json.loads(line)))
                    except json.JSONDecodeError as exc:
                        raise PersonaFileError(
                            f"persona file {path}, line {number}: invalid JSON ({exc.msg})"
                        ) from None
            return rows
        if suffix == ".csv":
            with open(path, "rb") as handle:  # a handle: a path with brackets is no glob pattern
                return list(enumerate(pl.read_csv(handle, infer_schema=False).to_dicts(), start=2))  # row 1: header
        if suffix == ".parquet":
            with open(path, "rb") as handle:
                return list(enumerate(pl.read_parquet(handle).to_dicts(), start=1))
    except PersonaFileError:
        raise
    except Exception as exc:  # polars/pyarrow parse errors, undecodable bytes
        raise PersonaFileError(f"persona file {path}: cannot be read ({type(exc).__name__}: {exc})") from None
    raise PersonaFileError(f"persona file {path}: unknown format {suffix!r} (use .jsonl, .csv or .parquet)")


def load_personas(path: str | Path, max_text_chars: int = DEFAULT_MAX_TEXT_CHARS) -> pl.DataFrame:
    """Read personas from JSONL, CSV or Parquet; validate the known fields of every row and keep any
    other column as it is.

    Known columns may be flat (big5_openness, value_benevolence, ...) or, in JSONL, nested objects
    (big_five, values). A file without an `id` column numbers its rows 0..n-1. Raises
    PersonaFileError naming the file, the 1-based row and the field."""
    path = Path(path)
    if not path.is_file():
        raise PersonaFileError(f"persona file {path}: not found")
    rows = _read_rows(path)
    if not rows:
        raise PersonaFileError(f"persona file {path}: no personas")
    numbered = not any(isinstance(row, dict) and "id" in row for _, row in rows)
    personas, seen = [], {}
    for index, (number, row) in enumerate(rows):
        where = f"persona file {path}, row {number}"
        if not isinstance(row, dict):
            raise PersonaFileError(f"{where}: expected an object")
        row = {k: v for k, v in row.items() if v != ""}
        if numbered:
            row["id"] = str(index)
        _check_cells(row, where, max_text_chars)
        try:
            persona = Persona.from_flat(row)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "row"
            raise PersonaFileError(f"{where}: {field}: {err['msg']}") from None
        if persona.id in seen:
            raise PersonaFileError(f"{where}: duplicate id {persona.id!r} (first at row {seen[persona.id]})")
        seen[persona.id] = number
        personas.append(persona.flat())
    try:
        frame = pl.DataFrame(personas, infer_schema_length=None)
    except Exception as exc:  # a column holding numbers in some rows and text in others
        raise PersonaFileError(f"persona file {path}: a column mixes types ({type(exc).__name__}: {exc})") from None
    return _typed(frame)


def _check_cells(row: dict[str, Any], where: str, max_text_chars: int) -> None:
    """Extra columns hold scalars; text of any column stays within the limit; engine names are reserved."""
    for column, value in row.items():
        if column in RESERVED_COLUMNS:
            raise PersonaFileError(f"{where}: column {column!r} is reserved for socsim's agents table; rename it")
        if isinstance(value, str) and len(value) > max_text_chars:
            raise PersonaFileError(
                f"{where}: {column}: text of {len(value):,} characters is over "
                f"population.max_text_chars={max_text_chars:,}"
            )
        nested_ok = column in ("big_five", "values")
        if isinstance(value, (dict, list)) and not nested_ok:
            raise PersonaFileError(f"{where}: {column}: nested values are not supported (use one column per value)")


@dataclass
class Population:
    """Personas plus the policy of each agent. Agent i is row i; `policy_names[policy_codes[i]]`."""

    personas: pl.DataFrame
    policy_names: tuple[str, ...]
    policy_codes: np.ndarray

    @property
    def size(self) -> int:
        return self.personas.height

    @property
    def columns(self) -> list[str]:
        return self.personas.columns

    def persona_row(self, agent_id: int) -> dict[str, Any]:
        return self.personas.row(agent_id, named=True)

    def llm_codes(self) -> np.ndarray:
        """Codes (indices into policy_names) of the language-model policies."""
        return np.array([i for i, name in enumerate(self.policy_names) if is_llm(name)], dtype=np.int64)

    @property
    def llm_mask(self) -> np.ndarray:
        """Bool per agent: driven by a language model."""
        return code_mask(self.policy_codes, self.llm_codes())

    def agents_table(self) -> pl.DataFrame:
        """agents.parquet: agent_id, policy, then the persona columns."""
        return self.personas.select(
            pl.int_range(self.size, dtype=pl.Int64).alias("agent_id"),
            pl.Series("policy", self.policy_names, dtype=pl.String).gather(self.policy_codes.astype(np.int64)),
            pl.all(),
        )


def allocate_mix(mix: Mapping[str, float], size: int) -> dict[str, int]:
    """Turn {policy: count or fraction} into exact counts summing to `size`.

    Whole numbers summing to `size` are counts. Otherwise the values are fractions, which must sum to 1
    (largest-remainder rounding), so {a: 1.0} means everyone and {a: 0.5, b: 0.5} half each. Anything
    else (counts with the wrong sum, fractions summing to 0.7, counts mixed with fractions) is an error
    rather than a guess."""
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
    total = float(sum(values))
    if abs(total - 1.0) > 1e-6:
        raise ValueError(
            f"population.mix: fractions sum to {total:g}; they must sum to 1 "
            f"(or give whole counts summing to population.size={size})"
        )
    weights = np.array(values, dtype=float)
    exact = weights / weights.sum() * size
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: size - counts.sum()]:
        counts[i] += 1
    return dict(zip(mix, counts.tolist(), strict=True))


def assign_policies(counts: Mapping[str, int], universe: tuple[str, ...], rng: np.random.Generator) -> np.ndarray:
    """A shuffled code per agent (index into `universe`, every policy the run may use), so no policy
    sits in one block of agent ids (and so on one shard)."""
    unknown = [name for name in counts if name not in universe]
    if unknown:
        raise ValueError(f"population.mix: unknown policy {unknown[0]!r}; choose from {list(universe)}")
    codes = np.repeat(np.array([universe.index(name) for name in counts], dtype=np.int16), list(counts.values()))
    return rng.permutation(codes)


def assign_by_group(
    groups: pl.Series, mixes: Mapping[str, Mapping[str, float]], universe: tuple[str, ...], rng: np.random.Generator
) -> np.ndarray:
    """Policies allocated within each group of a persona column (`population.mix_by`): group g's agents
    get `mixes[g]` (or `mixes["*"]` for groups without their own mix), shuffled within the group."""
    values = groups.cast(pl.String).fill_null("").to_numpy()
    codes = np.zeros(len(values), np.int16)
    present = sorted(set(values.tolist()))
    missing = [g for g in present if g not in mixes and "*" not in mixes]
    if missing:
        raise ValueError(
            f"population.mix: no mix for group {missing[0]!r} of population.mix_by={groups.name} "
            f"(groups: {', '.join(map(repr, present))}; '*' covers the rest)"
        )
    unused = [g for g in mixes if g != "*" and g not in present]
    if unused:
        raise ValueError(f"population.mix: group {unused[0]!r} does not occur in column {groups.name!r}")
    for group in present:
        members = np.flatnonzero(values == group)
        mix = mixes.get(group, mixes.get("*"))
        assert mix is not None
        try:
            counts = allocate_mix(mix, len(members))
        except ValueError as exc:
            raise ValueError(f"{exc} (group {group!r}, {len(members)} agents)") from None
        codes[members] = assign_policies(counts, universe, rng)
    return codes
