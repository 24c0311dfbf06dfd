"""Unit tests of vault.policy."""
