"""Crash consistency, faults, load, clock changes, fuzzing: the whole system under stress."""
