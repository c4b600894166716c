"""The scenario contract lives in `sim.testing` (shipped with socsim, so scenario packages inherit it
too); the names are re-exported here for socsim's own tests."""

from sim.testing import (
    ScenarioContract,
    assert_same_rows,
    fake_backend,
    merged,
    read_table,
    run_with,
    stop_after_planning,
)

__all__ = [
    "ScenarioContract",
    "assert_same_rows",
    "fake_backend",
    "merged",
    "read_table",
    "run_with",
    "stop_after_planning",
]
