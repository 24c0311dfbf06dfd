"""Unit tests, one folder per part of the package: in process, no executable, no provider."""
