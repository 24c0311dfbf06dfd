"""Unit tests of vault.audit."""
