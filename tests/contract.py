"""The scenario contract lives in `sim.testing` (shipped with socsim, so scenario packages inherit it
too); the names are re-exported here for socsim's own tests."""

from sim.testing import ScenarioContract, fake_backend, merged, read_table, run_with

__all__ = ["ScenarioContract", "fake_backend", "merged", "read_table", "run_with"]
