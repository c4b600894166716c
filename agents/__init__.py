"""Agents: personas, populations, decision types, scripted strategies and prompt rendering (no I/O, no model calls)."""
