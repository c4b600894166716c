"""The event loop socsim's HTTP clients and the fake server run on."""

from __future__ import annotations

import asyncio


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where it is installed (about a tenth less CPU per HTTP request), else asyncio's.

    The engine's own decision loop should come from here too (sim.executors), so LLM requests get it."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
