"""The encrypted vault: its bytes, its records, and changing it under the lock."""
