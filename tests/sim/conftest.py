"""Fixtures of the sweep and cluster tests: one real `ray start --head` cluster for the session."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.sim.ray_head import RayHead, ray_head

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def ray_launcher_plugin(tmp_path_factory) -> Path:
    """hydra-ray-launcher as `pip install 'socsim[ray-launcher]'` names it, installed into a folder of its
    own without its dependencies (boto3 and ray[default] serve only its AWS launcher; ray is here)."""
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["ray-launcher"]
    target = tmp_path_factory.mktemp("ray-launcher-plugin")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), *extra]
    subprocess.run(pip, check=True, capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
    return target


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory, ray_launcher_plugin) -> RayHead:
    """A 2-CPU cluster with token authentication whose nodes have the driver's environment, the Ray
    launcher plugin included (add `PYTHONPATH=ray_launcher_plugin` to a driver that launches with it)."""
    with ray_head(tmp_path_factory.mktemp("ray-head"), env={"PYTHONPATH": str(ray_launcher_plugin)}) as head:
        yield head
