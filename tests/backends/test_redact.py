"""Credentials never leave the process: URLs are redacted wherever sim.backends prints or raises them."""

from __future__ import annotations

import logging

import pytest

from sim.backends import BackendError, redact_text, redact_url, serving
from sim.backends.config import BackendConfig
from sim.backends.fake_server import FakeOpenAIServer
from tests.backends.helpers import decide, move_batch


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
        ("http://alice:pw@host:8000/v1", "http://***@host:8000/v1"),
        ("https://token@api.example.com/v1", "https://***@api.example.com/v1"),
        ("http://host/v1?key=abc&x=1", "http://host/v1?key=***&x=1"),
        ("http://host/v1?API-Key=abc&access_token=t&sig=s", "http://host/v1?API-Key=***&access_token=***&sig=***"),
        (None, None),
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_redact_text_finds_every_url_in_a_message():
    text = "cannot reach http://u:p@a:1/v1 nor https://b/v1?token=zz (refused)"
    assert redact_text(text) == "cannot reach http://***@a:1/v1 nor https://b/v1?token=*** (refused)"


def test_preflight_errors_carry_no_credentials():
    url = "http://alice:hunter2@127.0.0.1:9/v1?key=s3cret"
    with pytest.raises(BackendError) as err, serving(BackendConfig(kind="vllm", model="m", base_url=url)):
        pass
    assert "hunter2" not in str(err.value) and "s3cret" not in str(err.value) and "***@127.0.0.1:9" in str(err.value)


def test_failure_warnings_carry_no_credentials(tmp_path, caplog):
    with FakeOpenAIServer() as server, caplog.at_level(logging.WARNING):
        url = server.base_url.replace("http://", "http://alice:hunter2@")
        config = BackendConfig(kind="vllm", model=server.model, base_url=url, cache_dir=str(tmp_path), max_retries=0)
        server.default = "500"
        out, _ = decide(config, move_batch(3))
    assert out.missing.all() and "server_error" in caplog.text and "hunter2" not in caplog.text
