"""Unit tests of vault.keys."""
