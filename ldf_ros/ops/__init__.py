"""Shared numeric operations, written once and used by runtime, training, evaluation and synthetic."""
