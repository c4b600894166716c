"""Persona sampling is seeded; persona files are validated row by row; mixes allocate exactly."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from agents.persona import FLAT_COLUMNS, Persona
from agents.population import (
    PersonaFileError,
    SamplerConfig,
    allocate_mix,
    assign_by_group,
    assign_policies,
    load_personas,
    sample_personas,
)


def test_sampling_depends_only_on_the_seed():
    a = sample_personas(SamplerConfig(), 50, np.random.default_rng(1))
    b = sample_personas(SamplerConfig(), 50, np.random.default_rng(1))
    c = sample_personas(SamplerConfig(), 50, np.random.default_rng(2))
    assert a.equals(b) and not a.equals(c)
    assert a.columns == list(FLAT_COLUMNS)
    for row in a.head(5).iter_rows(named=True):
        Persona.from_flat(row)  # every sampled row is a valid persona


def test_sampler_follows_the_configured_distribution():
    config = SamplerConfig(gender={"female": 1.0}, age_min=30, age_max=30, political_leaning={"left": 1.0})
    people = sample_personas(config, 200, np.random.default_rng(0))
    assert (
        set(people["gender"]) == {"female"}
        and set(people["age"]) == {30}
        and set(people["political_leaning"]) == {"left"}
    )


def _persona(i: int) -> dict:
    return sample_personas(SamplerConfig(), 3, np.random.default_rng(9)).row(i, named=True)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_round_trip_through_every_file_format(tmp_path, suffix):
    frame = pl.DataFrame([_persona(i) for i in range(3)])
    path = tmp_path / f"people{suffix}"
    if suffix == ".csv":
        frame.write_csv(path)
    elif suffix == ".parquet":
        frame.write_parquet(path)
    else:
        path.write_text("\n".join(json.dumps(Persona.from_flat(r).model_dump()) for r in frame.iter_rows(named=True)))
    loaded = load_personas(path)
    assert loaded.select("id", "age", "big5_openness").equals(
        frame.select("id", "age", "big5_openness").cast({"age": pl.Int32})
    )


def test_bad_row_names_row_and_field(tmp_path):
    rows = [_persona(0), {**_persona(1), "value_power": 1.7}]
    path = tmp_path / "people.csv"
    pl.DataFrame(rows).write_csv(path)
    with pytest.raises(PersonaFileError, match=r"row 3: values\.power: Input should be less than or equal to 1"):
        load_personas(path)


def test_missing_id_and_duplicate_id(tmp_path):
    path = tmp_path / "people.jsonl"
    good = Persona.from_flat(_persona(0)).model_dump()
    bad = {k: v for k, v in Persona.from_flat(_persona(1)).model_dump().items() if k != "id"}
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(PersonaFileError, match=r"row 2: id: Field required"):
        load_personas(path)
    good = json.dumps(good)
    path.write_text(good + "\n" + good + "\n")
    with pytest.raises(PersonaFileError, match="row 2: duplicate id"):
        load_personas(path)


def test_unreadable_and_unknown_formats(tmp_path):
    (tmp_path / "p.txt").write_text("x")
    with pytest.raises(PersonaFileError, match="unknown format"):
        load_personas(tmp_path / "p.txt")
    (tmp_path / "p.jsonl").write_text("{not json\n")
    with pytest.raises(PersonaFileError, match="line 1: invalid JSON"):
        load_personas(tmp_path / "p.jsonl")


def test_mix_counts_fractions_and_errors():
    assert allocate_mix({"a": 3, "b": 7}, 10) == {"a": 3, "b": 7}
    assert allocate_mix({"a": 0.5, "b": 0.25, "c": 0.25}, 10) == {"a": 5, "b": 3, "c": 2}
    assert sum(allocate_mix({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, 10).values()) == 10
    assert allocate_mix({"a": 1.0}, 10) == {"a": 10}  # a lone share of 1 is everyone, not one agent
    with pytest.raises(ValueError, match=r"fractions sum to 0\.7; they must sum to 1"):
        allocate_mix({"a": 0.5, "b": 0.2}, 10)
    with pytest.raises(ValueError, match="fractions sum to 2"):
        allocate_mix({"a": 1, "b": 1}, 10)
    with pytest.raises(ValueError, match="sum to 9"):
        allocate_mix({"a": 4, "b": 5}, 10)
    with pytest.raises(ValueError, match="mixes counts and fractions"):
        allocate_mix({"a": 4, "b": 0.5}, 10)


def test_assigned_policies_are_shuffled_but_counted_exactly():
    codes = assign_policies({"b": 50, "a": 50}, ("a", "b", "llm"), np.random.default_rng(0))
    assert np.bincount(codes).tolist() == [50, 50]
    assert not (codes[:50] == codes[0]).all()
    with pytest.raises(ValueError, match="unknown policy 'z'"):
        assign_policies({"z": 1}, ("a", "b"), np.random.default_rng(0))


# ---- open personas -------------------------------------------------------------------------------


def test_extra_columns_are_kept_and_known_ones_need_only_an_id(tmp_path):
    path = tmp_path / "survey.csv"
    pl.DataFrame(
        {"id": ["a", "b"], "religion": ["none", "buddhist"], "party": ["green", "labour"], "age": ["34", "51"]}
    ).write_csv(path)
    people = load_personas(path)
    assert people.columns == ["id", "age", "religion", "party"]
    assert people["religion"].to_list() == ["none", "buddhist"] and people["age"].dtype == pl.Int32


def test_a_file_without_ids_numbers_its_rows(tmp_path):
    path = tmp_path / "survey.jsonl"
    path.write_text('{"region": "north"}\n{"region": "south"}\n')
    assert load_personas(path)["id"].to_list() == ["0", "1"]


def test_long_text_nested_values_and_reserved_names_are_refused(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"id": "a", "backstory": "x" * 50}) + "\n")
    with pytest.raises(
        PersonaFileError, match=r"row 1: backstory: text of 50 characters is over population.max_text_chars=10"
    ):
        load_personas(path, max_text_chars=10)
    path.write_text(json.dumps({"id": "a", "hobbies": ["chess"]}) + "\n")
    with pytest.raises(PersonaFileError, match="hobbies: nested values are not supported"):
        load_personas(path)
    path.write_text(json.dumps({"id": "a", "policy": "x"}) + "\n")
    with pytest.raises(PersonaFileError, match="column 'policy' is reserved"):
        load_personas(path)


def test_mix_by_group_allocates_within_each_group():
    groups = pl.Series("party", ["a"] * 6 + ["b"] * 4)
    universe = ("always_defect", "tit_for_tat", "llm")
    codes = assign_by_group(groups, {"a": {"llm": 1.0}, "*": {"tit_for_tat": 2, "always_defect": 2}},
                            universe, np.random.default_rng(0))  # fmt: skip
    assert (codes[:6] == 2).all()
    assert sorted(codes[6:].tolist()) == [0, 0, 1, 1]
    with pytest.raises(ValueError, match=r"no mix for group 'b' of population\.mix_by=party"):
        assign_by_group(groups, {"a": {"llm": 1.0}}, universe, np.random.default_rng(0))
    with pytest.raises(ValueError, match="group 'c' does not occur"):
        assign_by_group(groups, {"a": {"llm": 1.0}, "b": {"llm": 1.0}, "c": {"llm": 1.0}}, universe,
                        np.random.default_rng(0))  # fmt: skip


def test_sampled_names_and_backstories_are_built_per_agent():
    people = sample_personas(SamplerConfig(gender={"female": 1.0}), 40, np.random.default_rng(3))
    assert all(name.endswith(f" {i}") for i, name in enumerate(people["name"]))
    women = {"Ada", "Amara", "Chen", "Elena", "Fatima", "Grace", "Hana", "Ines", "Leila", "Maya", "Nadia", "Olga",
             "Priya", "Rosa", "Sofia", "Yuki"}  # fmt: skip
    assert {name.split()[0] for name in people["name"]} <= women
    row = people.row(7, named=True)
    assert row["backstory"] == (
        f"{row['name']} is a {row['age']}-year-old {row['occupation']} from {row['country']} "
        f"whose education ended with {row['education']}."
    )


def test_sampler_age_range_must_be_ordered():
    with pytest.raises(ValueError, match="must be >= age_min"):
        SamplerConfig(age_min=60, age_max=30)
