"""run.shards on a real `ray start --head` cluster with token authentication, through the socsim command:
joining by host:port, `auto` and `ray://`, a private runtime when no address is given although a cluster
runs, and every failure as one line with status 2. Results are identical to the in-process run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sim.backends.server import free_port
from sim.testing import read_table, run_with
from tests import cli
from tests.sim.ray_head import RayHead, clean_env, ray_head

pytestmark = pytest.mark.ray

SCIENCE = ["scenario=ipd", "population.size=8", "scenario.rounds=3", "seed=3"]
QUIET = ["run.progress=false", "run.log_every=0"]


def socsim(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return cli.socsim(*args, cwd=cwd, env=env, quiet=QUIET)


@pytest.fixture
def cluster(ray_cluster) -> RayHead:
    return ray_cluster


@pytest.fixture(scope="module")
def in_process(tmp_path_factory) -> Path:
    return run_with([*SCIENCE, "run.shards=0"], tmp_path_factory.mktemp("in-process") / "run")


def assert_one_line_error(result: subprocess.CompletedProcess, *expected: str) -> None:
    """Status 2, one error line, and nothing but socsim's own lines (its pre-flight notes): none of Ray's
    retry warnings or forwarded tracebacks."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("socsim: ") for line in lines), result.stderr
    errors = [line for line in lines if line.startswith("socsim: error: ")]
    assert errors == lines[-1:] and all(text in errors[0] for text in expected), result.stderr


@pytest.mark.parametrize("how", ["host:port", "auto", "ray://"])
def test_joining_a_token_cluster_gives_the_in_process_parquet(cluster, in_process, tmp_path, how):
    address = {"host:port": cluster.address, "auto": "auto", "ray://": cluster.client_address}[how]
    env = cluster.client_env(RAY_ADDRESS=cluster.address) if how == "auto" else cluster.client_env()
    result = socsim(*SCIENCE, "run.shards=2", f"run.ray_address={address}", "run.dir=run", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert f"socsim: 2 shards on the Ray cluster at {cluster.address} (2 CPUs)" in result.stderr
    assert read_table(tmp_path / "run", "interactions").equals(read_table(in_process, "interactions"))


def test_shards_without_an_address_start_a_private_runtime_although_a_cluster_runs(cluster, in_process, tmp_path):
    """RAY_ADDRESS names the running cluster, which Ray's own default would join (and then refuse num_cpus)."""
    env = cluster.client_env(RAY_ADDRESS=cluster.address)
    result = socsim(*SCIENCE, "run.shards=2", "run.dir=run", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "socsim: 2 shards on a local Ray runtime" in result.stderr
    assert read_table(tmp_path / "run", "interactions").equals(read_table(in_process, "interactions"))


def test_a_refused_token_is_one_line(cluster, tmp_path):
    # Ray retries a refused token for about 20 s by default; a 2 s budget keeps the test short.
    env = clean_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="not-the-token", RAY_gcs_server_port_wait_time_s="2")
    args = [*SCIENCE, "run.shards=2", f"run.ray_address={cluster.address}", "run.dir=run"]
    result = socsim(*args, cwd=tmp_path, env=env)
    assert_one_line_error(result, f"run.ray_address={cluster.address}", "refused this client's token", "RAY_AUTH_MODE")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_no_cluster_at_the_address_is_one_line(tmp_path, scheme):
    address = f"{scheme}127.0.0.1:{free_port()}"
    args = [*SCIENCE, "run.shards=2", f"run.ray_address={address}", "run.dir=run"]
    result = socsim(*args, cwd=tmp_path, env=clean_env())
    assert_one_line_error(result, f"run.ray_address={address}: no Ray cluster at 127.0.0.1:")
    assert not (tmp_path / "run").exists()


def test_more_cpus_than_the_cluster_has_is_one_line(cluster, tmp_path):
    args = [*SCIENCE, "run.shards=3", f"run.ray_address={cluster.address}", "run.dir=run"]
    result = socsim(*args, cwd=tmp_path, env=cluster.client_env())
    assert_one_line_error(result, "run.shards=3 x run.shard_cpus=1.0 needs 3 CPUs but the Ray cluster has 2")
    assert not (tmp_path / "run").exists()


def test_a_shard_actor_that_dies_while_starting_is_one_line(tmp_path_factory, tmp_path):
    """A cluster whose nodes import another `sim` than the driver's (fault injection: a package on the
    nodes' PYTHONPATH that fails to import) cannot start the Shard actor."""
    shadow = tmp_path_factory.mktemp("shadow")
    (shadow / "sim").mkdir()
    (shadow / "sim" / "__init__.py").write_text("raise ImportError('socsim is not installed on this node')\n")
    with ray_head(tmp_path_factory.mktemp("broken-head"), env={"PYTHONPATH": str(shadow)}) as broken:
        args = [*SCIENCE, "run.shards=2", f"run.ray_address={broken.address}", "run.dir=run"]
        result = socsim(*args, cwd=tmp_path, env=broken.client_env())
    died = "run.shards: a shard actor died while starting on the Ray cluster"
    assert_one_line_error(result, died, "socsim is not installed on this node")
    assert not (tmp_path / "run").exists()
