"""The tamper-evident audit log: the chain, verification, reports, forwarding."""
