"""Talking to identity providers: HTTP, the OAuth 2.0 protocol, provider presets."""
