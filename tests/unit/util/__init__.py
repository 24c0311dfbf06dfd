"""Unit tests of vault.util."""
