"""Policies and config.yaml, read through one safe YAML loader."""
