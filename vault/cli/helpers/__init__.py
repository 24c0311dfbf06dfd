"""Executables that speak another tool's credential protocol: `docker-credential-vault`
(docker.py) and `terraform-credentials-vault` (terraform.py), with their one error boundary
(boundary.py). Each asks the agent first (vault.cli.serve.for_host) and imports the heavy
parts only where it then works in process."""
