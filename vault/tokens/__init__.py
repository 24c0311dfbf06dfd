"""The core of vault: hand out, refresh, revoke and prune stored tokens under policy."""
