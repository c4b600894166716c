"""socsim's scenario contract and its fixtures (a local Ray runtime, the fake OpenAI-compatible server)."""

pytest_plugins = ["sim.testing"]
