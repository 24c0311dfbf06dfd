"""Commands on the store itself: import, list, status, logout/revoke, refresh, rekey."""

from __future__ import annotations

import sys
import time

from vault.cli.app import App
from vault.cli.render import (
    Cell,
    Column,
    Styled,
    dump_json,
    fields,
    relative_time,
    style,
    table,
    when,
)
from vault.errors import NotFoundError, UsageError
from vault.secret import Secret
from vault.store.model import Account, TokenRecord
from vault.util.text import check_name, check_scopes, clean, parse_time, rfc3339

TOKEN_LIMIT = 16 * 1024

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    import argparse
    from typing import Any


def read_token_from_stdin() -> Secret:
    if sys.stdin is None:
        raise UsageError("no standard input to read the token from")
    if sys.stdin.isatty():
        import getpass

        text = getpass.getpass("Paste the token (input is hidden): ")
    else:
        data = sys.stdin.buffer.read(TOKEN_LIMIT + 1)
        if len(data) > TOKEN_LIMIT:
            raise UsageError(f"the token on standard input is over {TOKEN_LIMIT} bytes")
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            raise UsageError("the token on standard input is not ASCII") from None
    value = text.strip()
    if not value:
        raise UsageError(
            "no token on standard input", hint="pipe it in: vault import NAME ... < file"
        )
    if any(not ("!" <= ch <= "~") for ch in value):
        raise UsageError(
            "the input holds spaces, line breaks or control characters; a token is one word"
        )
    return Secret(value)


def cmd_import(app: App, ns: argparse.Namespace) -> int:
    from vault.login import providers as _providers

    name = check_name(ns.name)
    provider = _providers.resolve(ns.provider, app.config.providers)
    scopes = check_scopes(dict.fromkeys(ns.scope), "--scope", UsageError)
    now = int(time.time())
    expires_at: int | None = None
    if ns.expires_in is not None:
        if ns.expires_in <= 0:
            raise UsageError("--expires-in must be a positive number of seconds")
        expires_at = now + ns.expires_in
    elif ns.expires_at is not None:
        try:
            expires_at = parse_time(ns.expires_at)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if expires_at <= now:
            raise UsageError("--expires-at is in the past")
    from vault.tokens.obtain import import_token

    import_token(
        app.store,
        app.policy,
        provider,
        name=name,
        scopes=scopes,
        expires_at=expires_at,
        force=ns.force,
        read_token=read_token_from_stdin,
    )
    app.say(f"Stored {name!r} ({provider.name}, scopes: {', '.join(scopes) or 'none given'}).")
    return 0


def token_json(record: TokenRecord, now: float, app: App | None = None) -> dict[str, Any]:
    """The stable JSON shape of one token (README: "JSON output"). Never a secret."""
    verdict = None
    if app is not None:
        denial = app.policy.token_denial(record.identity(), record.scopes, record.issued_at, now)
        if denial is not None:
            verdict = {"rule": denial.rule, "source": denial.source, "message": denial.message}
    return {
        "name": record.name,
        "provider": record.provider,
        "issuer": record.issuer,
        "client_id": record.client_id,
        "token_type": record.token_type,
        "source": record.source,
        "scopes": list(record.scopes),
        "issued_at": rfc3339(record.issued_at),
        "expires_at": rfc3339(record.expires_at),
        "last_refresh": rfc3339(record.last_refresh),
        "age_seconds": max(0, int(now - record.issued_at)),
        "expires_in": None if record.expires_at is None else int(record.expires_at - now),
        "state": record.state(now),
        "refreshable": record.refresh_token is not None,
        "revoke_pending": record.revoke_pending,
        "policy_denial": verdict,
        "needs_login": None
        if record.needs_login is None
        else {
            "cause": record.needs_login.cause,
            "reason": record.needs_login.reason,
            "since": rfc3339(record.needs_login.at),
        },
        "rejected_at": rfc3339(record.rejected_at),
        "account": None if record.account is None else account_doc(record.account),
    }


def account_doc(account: Account) -> dict[str, str | None]:
    """An account as JSON: both keys always present (null where unknown)."""
    return {"subject": account.subject, "display": account.display}


def token_state(record: TokenRecord, now: float, app: App) -> str:
    """The one state `list` and `status` (with or without NAME) show for a token: why it cannot
    be used first (``needs_login``, then ``denied:<rule>`` when policy refuses it now, then
    ``revoke_pending``), then ``rejected`` (a server refused it; its next use refreshes it
    first), then its lifetime (vault.store.model.TokenRecord.state: ``valid``, ``expiring``,
    ``refreshable``, ``expired``)."""
    if record.needs_login is not None:
        return "needs_login"
    denied = app.policy.token_denial(record.identity(), record.scopes, record.issued_at, now)
    if denied is not None:
        return f"denied:{denied.rule}"
    if record.revoke_pending:
        return "revoke_pending"
    if record.rejected_at is not None:
        return "rejected"
    return record.state(now)


def state_style(state: str) -> str:
    """How a state is emphasised on a terminal (vault.cli.render.style)."""
    if state in ("valid",):
        return "good"
    if state in ("expiring", "refreshable", "rejected"):
        return "warn"
    return "bad"


def _account(record: TokenRecord) -> str:
    """The account in a table: its name, else its subject, else ""."""
    shown = record.whom()
    return "" if shown is None else clean(shown, 200)


def _table(app: App, records: list[TokenRecord], now: float, ns: argparse.Namespace) -> None:
    """`vault list` and the tokens of `vault status`: one row a token, fitted to the width."""
    absolute = bool(getattr(ns, "absolute", False))
    accounts = any(_account(r) for r in records)
    columns = [
        Column("NAME", "wrap", least=8),
        *([Column("ACCOUNT", "cut", least=7, drop=1)] if accounts else []),
        Column("PROVIDER", "cut", least=8),
        Column("SCOPES", "cut", least=6, drop=2),
        Column("ISSUED", "keep", drop=3),
        Column("EXPIRES", "keep"),
        Column("REFRESHED", "keep", wide=True),
        Column("STATE", "keep"),
    ]
    rows: list[list[Cell]] = []
    for r in records:
        state = token_state(r, now, app)
        rows.append(
            [
                r.name,
                *([_account(r) or "-"] if accounts else []),
                clean(r.provider, 100),
                " ".join(r.scopes) or "-",
                when(r.issued_at, now, absolute=absolute),
                when(r.expires_at, now, absolute=absolute, none="never"),
                when(r.last_refresh, now, absolute=absolute, none="never"),
                Styled(state, state_style(state)),
            ]
        )
    table(columns, rows, wide=bool(getattr(ns, "wide", False)))


def cmd_list(app: App, ns: argparse.Namespace) -> int:
    snapshot = app.store.read()
    records = snapshot.records() if snapshot else []
    now = time.time()
    if app.json:
        dump_json({"version": 1, "tokens": [token_json(r, now, app) for r in records]})
        return 0
    if not records:
        app.say("The vault holds no tokens.")
        return 0
    _table(app, records, now, ns)
    return 0


def _at(ts: float | None, now: float, absolute: bool, none: str = "never") -> str:
    """A time in `vault status NAME`: relative, then the exact time; only the exact time with
    --absolute."""
    if ts is None:
        return none
    exact = rfc3339(ts) or none
    return exact if absolute else f"{relative_time(ts, now)} ({exact})"


def token_fields(
    record: TokenRecord, now: float, app: App, absolute: bool
) -> list[tuple[str, str]]:
    """`vault status NAME` for a person: what the JSON says, in words, each line only where
    it says something."""
    state = token_state(record, now, app)
    out = [("name", record.name)]
    account, shown = record.account, record.whom()
    if account is not None and shown:
        who = clean(shown, 200)
        if account.display and account.subject and account.subject != account.display:
            who += f" (subject {clean(account.subject, 200)})"
        out.append(("account", who))
    out += [
        ("state", style(state, state_style(state))),
        ("provider", f"{clean(record.provider, 100)} ({clean(record.issuer, 300)})"),
        ("scopes", " ".join(record.scopes) or "none"),
        ("issued", _at(record.issued_at, now, absolute) + f" by {record.source}"),
        ("expires", _at(record.expires_at, now, absolute)),
        ("refreshed", _at(record.last_refresh, now, absolute)),
        ("refreshable", "yes" if record.refresh_token is not None else "no"),
    ]
    denial = app.policy.token_denial(record.identity(), record.scopes, record.issued_at, now)
    if denial is not None:
        out.append(
            ("policy", f"{clean(denial.message, 500)} (rule {denial.rule}, {denial.source})")
        )
    if record.needs_login is not None:
        need = record.needs_login
        out.append(
            (
                "needs login",
                f"{clean(need.reason, 500)} ({need.cause}, {_at(need.at, now, absolute)})",
            )
        )
    if record.rejected_at is not None:
        out.append(
            ("rejected", _at(record.rejected_at, now, absolute) + ": its next use refreshes it")
        )
    if record.revoke_pending:
        out.append(("revocation", "pending: the next `vault prune` tries again"))
    out += [
        ("client id", clean(record.client_id, 200) or "-"),
        ("token type", clean(record.token_type, 40) or "-"),
    ]
    return out


def cmd_status(app: App, ns: argparse.Namespace) -> int:
    now = time.time()
    absolute = bool(getattr(ns, "absolute", False))
    if getattr(ns, "verify", False) and ns.name is None:
        raise UsageError("--verify checks one token: vault status NAME --verify")
    if ns.name is not None:
        name = check_name(ns.name)
        snapshot = app.store.read()
        record = snapshot.get(name) if snapshot else None
        if record is None:
            raise NotFoundError.for_name(name)
        if getattr(ns, "verify", False):
            return _verify(app, record)
        if app.json:
            dump_json(token_json(record, now, app))
        else:
            fields(token_fields(record, now, app, absolute))
        return 0
    snapshot = app.store.read()
    backend, source = app.config.backend()
    records = snapshot.records() if snapshot else []
    info: dict[str, Any] = {
        "path": str(app.paths.vault_file),
        "exists": snapshot is not None,
        "backend": snapshot.header.backend if snapshot else backend,
        "backend_source": source,
        "keyring": app.store.keyring.label if backend == "keyring" else None,
        "vault_id": snapshot.header.vault_id.hex() if snapshot else None,
        "generation": snapshot.header.generation if snapshot else 0,
        "created": rfc3339(snapshot.meta.created) if snapshot else None,
        "tokens": len(records),
    }
    if app.json:
        dump_json(
            {"version": 1, "vault": info, "tokens": [token_json(r, now, app) for r in records]}
        )
        return 0
    fields(_vault_fields(info, snapshot.meta.created if snapshot else None, now, absolute))
    if records:
        sys.stdout.write("\n")
        _table(app, records, now, ns)
    return 0


def _vault_fields(
    info: dict[str, Any], created: float | None, now: float, absolute: bool
) -> list[tuple[str, str]]:
    """The vault part of `vault status` for a person."""
    if not info["exists"]:
        return [
            ("vault", f"none yet at {info['path']} (the first login or import makes it)"),
            ("backend", f"{info['backend']} (from {info['backend_source']})"),
        ]
    out = [
        ("vault", info["path"]),
        ("backend", f"{info['backend']} (from {info['backend_source']})"),
    ]
    if info["keyring"]:
        out.append(("keyring", clean(info["keyring"], 200)))
    out += [
        ("created", _at(created, now, absolute, none="-")),
        ("generation", str(info["generation"])),
        ("vault id", info["vault_id"]),
        ("tokens", str(info["tokens"])),
    ]
    return out


def _verify(app: App, stored: TokenRecord) -> int:
    """`vault status NAME --verify`: the scopes GitHub says the token has now (X-OAuth-Scopes
    of GET {api}/user), beside the stored ones, and the drift between them; exit 0 with any
    drift shown. A 401 means GitHub no longer takes the token (revoked, or expired): that is
    reported, the token marked rejected (its next use refreshes it first), and exit 4. The token
    goes through use_token (policy, refresh, the `used` record) like every other use."""
    from vault.login import github
    from vault.login.http import client, origin
    from vault.tokens.reject import mark_rejected

    if stored.identity().preset != "github":
        raise UsageError(
            f"--verify asks GitHub for a token's live scopes; {stored.name!r} is not a GitHub token"
        )
    api = stored.extra.get("api_base")
    if not isinstance(api, str):
        raise UsageError(f"the record of {stored.name!r} names no GitHub API to ask")
    record = app.use_token(stored.name, min_valid=60, command="status --verify (GET /user)")
    with client(30.0) as http:
        live = github.live_scopes(http, api, record.access_token)
    kind = record.extra.get("github_token")
    doc: dict[str, Any] = {
        "name": record.name,
        "github_token": kind,
        "api": api,
        "revoked": live.revoked,
        "stored_scopes": list(record.scopes),
        "live_scopes": None if live.scopes is None else list(live.scopes),
        "drift": None if live.scopes is None else github.drift(record.scopes, live.scopes),
    }
    where = origin(api)
    if live.revoked and where is not None:
        mark_rejected(
            app.store, record.name, record.access_token, origin=where, command="status --verify"
        )
    if app.json:
        dump_json(doc)
    elif live.revoked:
        app.say(
            f"GitHub refused {record.name!r} (HTTP 401): it was revoked at GitHub, or has "
            f"expired there. Log in again: vault login {record.provider} --name {record.name}"
        )
    else:
        sys.stdout.write(f"{'stored scopes:':<15} {' '.join(record.scopes) or '-'}\n")
        if live.scopes is None:
            sys.stdout.write(
                f"{'live scopes:':<15} - (GitHub sends none: an app's permissions are the "
                "app's, not scopes)\n"
            )
        else:
            sys.stdout.write(f"{'live scopes:':<15} {' '.join(live.scopes) or '-'}\n")
            change = doc["drift"]
            if change["added"] or change["removed"]:
                added = " ".join(change["added"]) or "-"
                removed = " ".join(change["removed"]) or "-"
                sys.stdout.write(f"{'drift:':<15} added: {added}; removed: {removed}\n")
            else:
                sys.stdout.write(f"{'drift:':<15} none\n")
    return 4 if live.revoked else 0


def cmd_logout(app: App, ns: argparse.Namespace) -> int:
    from vault.tokens.default import clear_default, resolve
    from vault.tokens.lifecycle import revoke_and_delete

    name = resolve(app.store, ns.name)  # no NAME: the default token
    result, deleted = revoke_and_delete(app.store, app.config.providers, name, force=ns.force)
    was_default = deleted and clear_default(app.paths, only=name)  # else it names nothing
    if app.json:
        dump_json(
            {
                "name": name,
                "deleted": deleted,
                "revoked": result.revoked,
                "revocation": result.status,
                "tokens_revoked": list(result.tokens),
                "detail": result.detail,
                "revoke_by_hand": result.by_hand,
                "was_default": was_default,
            }
        )
        return 0
    if not deleted:  # a new login or import stored another token under the name meanwhile
        done = "Revoked" if result.revoked else "Did NOT revoke"
        app.say(
            f"{done} {name!r} at the provider ({result.detail}) as it was when this began; "
            "the token stored under the name since (a new login or import) was kept."
        )
    elif result.revoked:
        app.say(f"Revoked {name!r} at the provider ({result.detail}) and deleted it locally.")
    else:
        app.say(f"Deleted {name!r} locally. It was NOT revoked at the provider: {result.detail}.")
    if result.by_hand and not result.revoked:
        app.say(f"Revoke it by hand at {result.by_hand}")
    if was_default:
        app.say("It was the default token; none is set now (`vault switch NAME` sets one).")
    return 0


def cmd_refresh(app: App, ns: argparse.Namespace) -> int:
    from vault.tokens.use import refresh_record

    record = refresh_record(app.store, app.policy, app.config.providers, check_name(ns.name))
    if app.json:
        dump_json(token_json(record, time.time(), app))
    else:
        expiry = record.expires_at
        ends = (
            "it has no expiry"
            if expiry is None
            else f"it expires {_at(expiry, time.time(), False)}"
        )
        app.say(f"Refreshed {record.name!r}; {ends}.")
    return 0


def cmd_rekey(app: App, ns: argparse.Namespace) -> int:
    old, new, generation = app.store.rekey(new_passphrase=ns.new_passphrase)
    if app.json:
        dump_json({"rekeyed": True, "from_backend": old, "backend": new, "generation": generation})
    elif old == new:
        app.say(f"Rotated the vault's data key ({new} backend, generation {generation}).")
    else:
        app.say(f"Moved the vault from the {old} to the {new} backend (generation {generation}).")
    return 0
