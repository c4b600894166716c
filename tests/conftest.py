"""Shared fixtures: one local Ray runtime per test session, and the LLM/vLLM fixtures plugin."""

from __future__ import annotations

from pathlib import Path

import pytest

if (Path(__file__).parent / "llm_fixtures.py").exists():
    pytest_plugins = ["tests.llm_fixtures"]


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray runtime shared by every test that runs shards (starting one costs seconds)."""
    import logging

    import ray

    started = False
    if not ray.is_initialized():
        # address="local": a runtime of its own even when another cluster runs on this machine (RAY_ADDRESS,
        # or the last `ray start`), which ray.init() would join and then refuse num_cpus for.
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            logging_level=logging.WARNING,
            _node_ip_address="127.0.0.1",
        )
        started = True
    yield ray
    if started:
        ray.shutdown()
