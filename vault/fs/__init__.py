"""File-system safety: where things live, private files and folders, durable writes, locks."""
