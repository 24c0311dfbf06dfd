"""Audit events about stored tokens and policy denials: what every core operation records."""

from __future__ import annotations

from vault.audit.chain import fingerprint, make_event

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from typing import Any

    from vault.policy.rules import Denial
    from vault.store.model import Account, TokenRecord


def for_record(
    kind: str,
    record: TokenRecord,
    audit_key: bytes,
    *,
    outcome: str = "success",
    reason: str | None = None,
    command: str | None = None,
    denial: Denial | None = None,
    grant: str | None = None,
    account: Account | None = None,
) -> dict[str, Any]:
    """An event about a stored token, with its fingerprint (of the access token); ``grant``
    names how a login obtained it, and where ``account`` is given and known, whom it belongs
    to (:func:`account_fields`)."""
    event = make_event(
        kind,
        name=record.name,
        provider=record.provider,
        issuer=record.issuer,
        scopes=record.scopes,
        outcome="denied" if denial else outcome,
        reason=denial.message if denial else reason,
        rule=denial.rule if denial else None,
        source=denial.source if denial else None,
        command=command,
        fingerprint=fingerprint(audit_key, record.access_token),
        grant=grant,
    )
    if account is not None:
        event.update(account_fields(account))
    return event


def account_fields(account: Account) -> dict[str, str]:
    """The audit fields of an account (not secret): ``account``, the name shown (else the
    subject), and ``account_subject``; flat strings, so syslog and journald forward them."""
    fields: dict[str, str] = {}
    shown = account.shown()
    if shown is not None:
        fields["account"] = shown
    if account.subject is not None:
        fields["account_subject"] = account.subject
    return fields


def for_denial(
    denial: Denial,
    *,
    name: str | None,
    provider: str | None,
    issuer: str | None,
    scopes: tuple[str, ...] | list[str] | None,
    command: str | None = None,
) -> dict[str, Any]:
    return make_event(
        "denied",
        name=name,
        provider=provider,
        issuer=issuer,
        scopes=scopes,
        outcome="denied",
        reason=denial.message,
        rule=denial.rule,
        source=denial.source,
        command=command,
    )
