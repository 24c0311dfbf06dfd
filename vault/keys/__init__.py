"""Key backends: where the vault's data key comes from."""
