"""Scripted policies, one module per scenario family, each vectorised over a whole DecisionBatch."""
