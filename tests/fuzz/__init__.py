"""Fuzzing: shared targets (targets.py) and one atheris harness per target."""
