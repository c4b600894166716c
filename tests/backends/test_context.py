"""Context pre-check against real HTTP (the fake server stands in for vLLM's /v1/models and
/tokenize; the backend contract runs the same check against the real vLLM server)."""

from __future__ import annotations

import logging

import pytest

from sim.backends import BackendError
from sim.backends.config import BackendConfig
from sim.backends.context import PromptSample, as_manifest, check_context, estimate_prompt_tokens
from sim.backends.fake_server import FakeOpenAIServer

SHORT = [{"role": "system", "content": "Rules of the game."}, {"role": "user", "content": "Round 3: J or F?"}]


def config(server: FakeOpenAIServer) -> BackendConfig:
    return BackendConfig(kind="vllm", model=server.model, base_url=server.base_url, cache=False)


def history(rounds: int) -> list[dict[str, str]]:
    """A prompt that grows with the rounds of history it shows."""
    return [*SHORT, {"role": "user", "content": " ".join(f"round {r}: you J, they F." for r in range(rounds))}]


def test_prompts_that_fit_are_counted_with_the_servers_tokenizer():
    with FakeOpenAIServer(max_model_len=512) as server:
        fits = check_context(config(server), [PromptSample("ipd_move", SHORT, 2, "scenario.rounds")])
    assert [(f.kind, f.prompt_tokens, f.max_model_len, f.counted_by) for f in fits] == [
        ("ipd_move", server.prompt_tokens(SHORT), 512, "tokenize")
    ]
    assert as_manifest(fits)[0]["counted_by"] == "tokenize"


def test_a_prompt_that_cannot_fit_names_the_parameter_in_one_line():
    samples = [
        PromptSample("ipd_move", SHORT, 2, "scenario.rounds"),
        PromptSample("donor_strategy", history(100), 64, "scenario.trace_depth"),
    ]
    with FakeOpenAIServer(max_model_len=512) as server, pytest.raises(BackendError) as err:
        check_context(config(server), samples)
    message = str(err.value)
    assert message.startswith("scenario.trace_depth: the longest donor_strategy prompt needs ")
    assert "max_model_len 512" in message and "lower scenario.trace_depth" in message and "\n" not in message


def test_the_reply_budget_counts_too():
    tokens = FakeOpenAIServer.prompt_tokens(SHORT)
    with FakeOpenAIServer(max_model_len=tokens + 10) as server:
        check_context(config(server), [PromptSample("m", SHORT, 10, "p")])
        with pytest.raises(BackendError, match=rf"needs {tokens} tokens \+ 11 for the reply"):
            check_context(config(server), [PromptSample("m", SHORT, 11, "p")])


def test_without_tokenize_the_estimate_is_used_and_said(caplog):
    with FakeOpenAIServer(max_model_len=512, tokenize=False) as server, caplog.at_level(logging.WARNING):
        (fit,) = check_context(config(server), [PromptSample("m", SHORT, 2, "p")])
    assert fit.counted_by == "estimate" and fit.prompt_tokens == estimate_prompt_tokens(SHORT)
    assert fit.prompt_tokens >= server.prompt_tokens(SHORT)  # the estimate errs towards refusing
    assert "estimate" in caplog.text
    with (
        FakeOpenAIServer(max_model_len=40, tokenize=False) as server,
        pytest.raises(BackendError, match=r"\(estimated: the server has no /tokenize\)"),
    ):
        check_context(config(server), [PromptSample("m", history(20), 2, "scenario.rounds")])


def test_a_server_that_lists_no_context_length_is_not_checked_and_says_so(caplog):
    with FakeOpenAIServer(max_model_len=None, tokenize=False) as server, caplog.at_level(logging.WARNING):
        (fit,) = check_context(config(server), [PromptSample("m", history(5000), 2, "p")])
    assert fit.fits and fit.max_model_len is None and "skipped" in caplog.text


def test_an_unreachable_server_is_one_line_with_the_url_redacted():
    url = "http://user:sekret@127.0.0.1:9/v1"
    with pytest.raises(BackendError, match=r"did not answer") as err:
        check_context(BackendConfig(kind="vllm", model="m", base_url=url), [PromptSample("m", SHORT, 2, "p")])
    assert "sekret" not in str(err.value) and "***@127.0.0.1:9" in str(err.value)
