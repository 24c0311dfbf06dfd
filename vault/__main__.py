"""`python -m vault`: the same entry point as the `vault` executable."""

from vault.cli.main import entry

if __name__ == "__main__":
    entry()
