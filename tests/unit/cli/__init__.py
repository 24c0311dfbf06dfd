"""Unit tests for vault.cli: the hand parser against argparse, the entry point."""
