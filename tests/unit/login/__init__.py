"""Unit tests of vault.login."""
