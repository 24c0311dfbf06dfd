"""Unit tests of vault.store."""
