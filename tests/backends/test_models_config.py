"""`backend.models`: what each model's requests see (its served name and endpoints over the shared
settings), what a managed server serves, what the run id and the manifest keep, and which of a
model's keys a resume may change."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sim.backends import serving
from sim.backends.config import BackendConfig
from sim.backends.errors import BackendError
from sim.backends.fake_server import FakeOpenAIServer
from sim.backends.server import server_command
from sim.config import compose
from sim.resume import is_execution_key
from sim.run import recorded_config

SHARED = "http://127.0.0.1:8000/v1"


def backend(**models: dict) -> BackendConfig:
    return BackendConfig(kind="vllm", model="base", base_url=SHARED, max_concurrency=16, models=models)


def test_a_model_overrides_only_what_it_sets():
    config = backend(a={"model": "served-a", "temperature": 0.0}, b={"base_url": "http://b:1/v1", "max_concurrency": 2})
    a, b = config.for_model("a"), config.for_model("b")
    assert (a.model, a.temperature, a.urls, a.max_concurrency) == ("served-a", 0.0, (SHARED,), 16)
    assert (b.model, b.temperature, b.urls, b.max_concurrency) == ("b", 0.7, ("http://b:1/v1",), 2)
    assert config.for_model(None) is config and a.models == {}


def test_own_endpoints_replace_the_shared_ones():
    config = BackendConfig(
        kind="vllm", model="base", base_url=SHARED, endpoints=("http://s2:1/v1",),
        models={"x": {"endpoints": ["http://x1:1/v1", "http://x2:1/v1"]}},
    )  # fmt: skip
    assert config.for_model("x").urls == ("http://x1:1/v1", "http://x2:1/v1")


def test_a_managed_server_serves_the_models_without_endpoints_of_their_own():
    config = BackendConfig(
        kind="vllm", model=None, launch=True, model_path="/m",
        models={"a": {"model": "tiny-a"}, "b": {}, "far": {"model": "far", "base_url": "http://far:1/v1"}},
    )  # fmt: skip
    assert config.served_names() == ("tiny-a", "b")
    command = server_command(config, 9000)
    at = command.index("--served-model-name")
    assert command[at + 1 : at + 3] == ["tiny-a", "b"] and command[at + 3] == "--host"


def test_served_names_must_differ():
    with pytest.raises(ValidationError, match=r"backend.models.b.model: served name 'x' is already backend.models.a's"):
        backend(a={"model": "x"}, b={"model": "x"})
    with pytest.raises(ValidationError, match=r"already backend\.model's"):
        backend(a={"model": "base", "base_url": "http://elsewhere:1/v1"})  # same name, another server
    assert backend(a={"model": "base"}).for_model("a").model == "base"  # the default model itself: allowed


def test_no_models_without_a_backend_and_a_model_or_models_required():
    with pytest.raises(ValidationError, match=r"backend\.models needs a backend"):
        BackendConfig(kind="none", models={"a": {}})
    with pytest.raises(ValidationError, match=r"backend\.model is required"):
        BackendConfig(kind="vllm", base_url=SHARED)
    assert BackendConfig(kind="vllm", base_url=SHARED, models={"a": {}}).model is None


def test_models_change_the_run_id_and_their_urls_are_redacted(tmp_path):
    base = ["scenario=ipd", "population.size=4", "backend=vllm", f"backend.base_url={SHARED}", f"run.dir={tmp_path}"]
    plain = compose([*base, "backend.model=m"])
    assert "models" not in plain.science_dict()["backend"]  # runs without models keep their ids
    one = compose([*base, "backend.models={a: {model: x, base_url: 'http://user:secret@h:1/v1'}}"])
    other = compose([*base, "backend.models={a: {model: y, base_url: 'http://user:secret@h:1/v1'}}"])
    moved = compose([*base, "backend.models={a: {model: x, base_url: 'http://h2:1/v1'}}"])
    assert one.science_dict() != other.science_dict()  # another model: other results
    assert one.science_dict() == moved.science_dict()  # the same model elsewhere: the same results
    recorded = recorded_config(one)["backend"]["models"]["a"]
    assert "secret" not in str(recorded) and recorded["model"] == "x"


def test_where_a_model_is_served_is_an_execution_key():
    assert is_execution_key("backend.models.a.base_url") and is_execution_key("backend.models.a.max_concurrency")
    assert not is_execution_key("backend.models.a.model") and not is_execution_key("backend.models.a.temperature")


def test_serving_checks_each_model_the_run_uses():
    with FakeOpenAIServer(model="a-served") as server:
        config = BackendConfig(kind="vllm", base_url=server.base_url, models={"a": {"model": "a-served"}, "b": {}})
        with serving(config, ["a"]) as served:
            assert served is config
        with pytest.raises(BackendError, match="does not serve model 'b'"), serving(config, ["a", "b"]):
            pass
