"""The fields of one audit event that only some events carry, exactly: the grant of a login,
the served client's pid beside the agent's own, and the notes a late or changed record gets."""

from __future__ import annotations

import os

from vault.audit.chain import SERVED_PID, late, make_event, noted


def test_a_login_event_names_its_grant_and_others_do_not() -> None:
    with_grant = make_event("issued", name="gh", grant="authorization_code")
    assert with_grant["grant"] == "authorization_code"
    assert list(with_grant)[-1] == "grant"
    assert "grant" not in make_event("issued", name="gh")
    assert make_event("issued", grant="bad\x1bgrant")["grant"] == "badgrant"  # cleaned


def test_an_event_the_agent_writes_names_the_client_and_the_agent() -> None:
    own = make_event("used", name="gh")
    assert own["pid"] == os.getpid()
    assert "agent" not in own
    token = SERVED_PID.set(424242)
    try:
        served = make_event("used", name="gh")
    finally:
        SERVED_PID.reset(token)
    assert served["pid"] == 424242
    assert served["agent"] == os.getpid()
    assert list(served)[-1] == "agent"


def test_a_late_record_says_when_it_happened() -> None:
    event = make_event("refreshed", name="gh", reason="rotated")
    kept = late(event, 1_700_000_000)
    assert kept["reason"] == (
        "recorded late: the audit log could not be written at 2023-11-14T22:13:20Z; rotated"
    )
    assert {k: v for k, v in kept.items() if k != "reason"} == {
        k: v for k, v in event.items() if k != "reason"
    }
    bare = late(make_event("refreshed", name="gh"), 0)
    assert (
        bare["reason"]
        == "recorded late: the audit log could not be written at 1970-01-01T00:00:00Z"
    )


def test_a_note_can_change_the_outcome_and_only_when_asked() -> None:
    event = make_event("revoked", name="gh", outcome="success")
    assert noted(event, "n")["outcome"] == "success"
    changed = noted(event, "n", outcome="fail\x1bure")
    assert changed["outcome"] == "failure"  # cleaned as every field
    assert changed["reason"] == "n"


def test_a_field_is_kept_whole_up_to_its_limit() -> None:
    assert make_event("used", name="n" * 512)["name"] == "n" * 512
    assert make_event("used", name="n" * 513)["name"] == "n" * 511 + "\u2026"
    assert make_event("used", fingerprint=12345)["fingerprint"] == "12345"  # type: ignore[arg-type]
