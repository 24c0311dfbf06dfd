"""`vault agent`: a process that holds one vault's data key for a while and serves requests
for it over a private unix socket (the client side is vault.keys.agent)."""
