"""Shared fixtures: the scenario contract's (a local Ray runtime, the fake OpenAI server; `sim.testing`)
and the LLM/vLLM fixtures plugin."""

from __future__ import annotations

from pathlib import Path

pytest_plugins = ["sim.testing"]
if (Path(__file__).parent / "llm_fixtures.py").exists():
    pytest_plugins.append("tests.llm_fixtures")
