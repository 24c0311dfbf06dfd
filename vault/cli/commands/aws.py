"""`vault aws NAME --role-arn ARN`: the AWS SDKs' ``credential_process``.

stdout carries exactly one JSON document, the credential_process answer (``Version`` 1,
``AccessKeyId``, ``SecretAccessKey``, ``SessionToken``, ``Expiration`` in RFC 3339 UTC), and
nothing else, ever. Anything for a person goes to /dev/tty, or nowhere when there is no
terminal (vault.cli.person, set up by vault.cli.main before this runs): the exit code says what
happened. It never prompts and never starts a login (the passphrase backend needs
--passphrase-file, VAULT_PASSPHRASE_FILE or a running agent).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from vault.cli.app import App
from vault.util.text import check_name, rfc3339


def cmd_aws(app: App, ns: argparse.Namespace) -> int:
    from vault.tokens import aws, sts
    from vault.util.peer import calling_tool

    app.passphrase.interactive = False  # never a prompt: no person is known to be there
    name = check_name(ns.name)
    asked = aws.Asked(
        role_arn=sts.check_role_arn(ns.role_arn),
        duration=sts.check_duration(ns.duration),
        endpoint=sts.endpoint(os.environ, ns.region),
        tool=calling_tool(),
        session_name=None if ns.session_name is None else sts.check_session_name(ns.session_name),
        min_valid=_min_valid(ns.min_valid),
    )
    served = aws.serve(app.store, app.policy, app.config.providers, name, asked)
    creds = served.credentials
    doc = {
        "Version": 1,
        "AccessKeyId": creds.access_key_id,
        "SecretAccessKey": creds.secret_access_key.reveal(),
        "SessionToken": creds.session_token.reveal(),
        "Expiration": rfc3339(served.expiration),
    }
    sys.stdout.write(json.dumps(doc) + "\n")
    return 0


def _min_valid(seconds: int) -> int:
    from vault.errors import UsageError

    if not 0 <= seconds <= 3600:
        raise UsageError(f"--min-valid {seconds} is outside 0 to 3600 seconds")
    return seconds
