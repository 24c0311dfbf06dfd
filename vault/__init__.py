"""vault: a policy-enforcing secure token vault.

Public modules: ``vault.errors`` (the error types and exit codes) and ``vault.secret``
(the masked ``Secret`` type). Everything whose name starts with an underscore may change.
"""

__version__ = "0.1.0"
