"""The audit report as HTML: hostile text escaped, nothing loaded, bounded, and readable in a
real browser (Debian's headless Chromium)."""

from __future__ import annotations

import hashlib
import re
import shutil
import struct
import subprocess
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault.audit import html as report_html
from vault.audit.html import render_html

CHROMIUM = "/usr/bin/chromium"
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
HOSTILE = "<script>alert(1)</script> \"quoted\" 'single' & amp \x1b[31mred\x1b[0m"

# --------------------------------------------------------------------------- building reports


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Events:
    """A chronological event list with increasing seq, as the audit module writes it."""

    def __init__(self, seq: int = 0) -> None:
        self.seq = seq
        self.items: list[dict[str, Any]] = []

    def add(self, at: datetime, event: str, outcome: str = "success", **extra: Any) -> None:
        self.seq += 1
        item: dict[str, Any] = {
            "time": iso(at),
            "seq": self.seq,
            "event": event,
            "outcome": outcome,
            "reason": None,
            "rule": None,
            "scopes": None,
            "command": None,
        }
        item.update(extra)
        self.items.append(item)


def token(name: str, events: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """A token summary consistent with ``events``; ``fields`` override."""
    kinds = [e["event"] for e in events]
    uses = [e for e in events if e["event"] == "used"]
    ended = {k: next((e["time"] for e in events if e["event"] == k), None) for k in ("revoked",)}
    pruned = next((e["time"] for e in events if e["event"] == "pruned"), None)
    status = "revoked" if ended["revoked"] else "pruned" if pruned else "active"
    doc: dict[str, Any] = {
        "name": name,
        "provider": "github",
        "issuer": "https://github.com",
        "fingerprints": [
            f"hmac-sha256:{hashlib.sha256(name.encode(errors='replace')).hexdigest()[:12]}"
        ],
        "issued": events[0]["time"] if events else None,
        "issued_by": "login",
        "uses": len(uses),
        "last_use": uses[-1]["time"] if uses else None,
        "refreshes": kinds.count("refreshed"),
        "revoked": ended["revoked"],
        "pruned": pruned,
        "denials": kinds.count("denied"),
        "failures": kinds.count("login_failed"),
        "status": status,
        "events": events,
    }
    doc.update(fields)
    return doc


def report(tokens: list[dict[str, Any]], verified: bool | None = True) -> dict[str, Any]:
    count = sum(len(t["events"]) for t in tokens)
    return {
        "generated_at": "2026-11-23T10:00:00Z",
        "log": {
            "path": "/home/a/.local/state/vault/audit.jsonl",
            "events": count,
            "first": "2026-11-01T08:00:00Z",
            "last": "2026-11-23T09:59:00Z",
            "verified": verified,
            "verify_message": f"intact: {count} records" if verified else "record 17: bad hmac",
        },
        "tokens": tokens,
    }


def realistic() -> dict[str, Any]:
    """Three tokens: one active with many uses and a refresh, one revoked after a denial, one
    pruned after a failed refresh."""
    log = Events()
    gh_start = T0 + timedelta(days=15)
    log.add(gh_start, "issued", scopes=["repo", "read:org"], command="vault login gh")
    for day in range(7):
        for hour in range(8, 18 if day % 3 else 12):
            for minute in (5, 35) if day in (2, 5) else (5,):
                at = gh_start + timedelta(days=day, hours=hour - 8, minutes=minute)
                log.add(at, "used", command="vault token gh")
        if day == 3:
            log.add(gh_start + timedelta(days=3, hours=12), "refreshed")
    gh = log.items

    log = Events(log.seq)
    work_start = T0 + timedelta(days=20, hours=1)
    log.add(work_start, "issued", scopes=["openid", "offline_access"], command="vault login work")
    for minutes in range(20, 480, 25):
        log.add(work_start + timedelta(minutes=minutes), "used")
    log.add(
        work_start + timedelta(hours=9),
        "denied",
        "denied",
        reason="the token is 9h old, over the maximum 8h since login",
        rule="max_token_age (/etc/vault/policies/org.yaml:3)",
    )
    log.add(work_start + timedelta(hours=9, minutes=20), "revoked")
    work = log.items

    log = Events(log.seq)
    log.add(T0, "issued", scopes=["api"], command="vault import ci")
    for day in range(6):
        log.add(T0 + timedelta(days=day, hours=2), "used")
    log.add(T0 + timedelta(days=6), "login_failed", "failure", reason="invalid_grant")
    log.add(T0 + timedelta(days=12), "pruned")
    ci = log.items
    return report(
        [
            token("gh", gh),
            token(
                "work",
                work,
                provider="work",
                issuer="https://idp.example.com/realms/main",
            ),
            token("old-ci", ci, provider="gitlab", issuer="https://gitlab.com", issued_by="import"),
        ]
    )


def uniform(tokens: int, events: int, *, mixed: bool = False) -> dict[str, Any]:
    """``tokens`` tokens of ``events`` events each, every 20 minutes; ``mixed`` alternates uses
    and denials, so that no run of uses can be collapsed (the worst case for the lists)."""
    built = []
    for index in range(tokens):
        log = Events()
        start = T0 + timedelta(minutes=7 * (index % 50))
        log.add(start, "issued")
        for step in range(1, events):
            at = start + timedelta(minutes=20 * step)
            if mixed and step % 2:
                log.add(at, "denied", "denied", reason="scope admin:org is denied", rule="r")
            else:
                log.add(at, "used")
        built.append(token(f"token-{index}", log.items))
    return report(built)


# --------------------------------------------------------------------------- reading the page


class Tags(HTMLParser):
    """Every start tag and its attributes, and the text, as a browser's tokenizer sees them."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def names(self) -> set[str]:
        return {tag for tag, _attrs in self.tags}


ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "p", "div",
    "span", "strong", "b", "small", "code", "br", "section", "table", "thead", "tbody", "tr",
    "th", "td", "a", "ul", "li", "figure", "figcaption", "details", "summary", "svg", "defs",
    "g", "path", "rect", "circle", "text", "use",
}  # fmt: skip


def section(page: str, index: int) -> str:
    """The HTML of token ``index``'s section."""
    start = page.index(f'<section class="token" id="t{index}">')
    return page[start : page.index("</section>", start)]


# --------------------------------------------------------------------------- escaping


def hostile_report() -> dict[str, Any]:
    log = Events()
    log.add(T0, "issued", scopes=[HOSTILE, "repo"], command=HOSTILE)
    log.add(T0 + timedelta(hours=1), "used")
    log.add(T0 + timedelta(hours=2), "denied", "denied", reason=HOSTILE, rule=HOSTILE)
    log.add(T0 + timedelta(hours=3), "<img src=x onerror=alert(2)>", HOSTILE, reason=HOSTILE)
    doc = report(
        [
            token(
                HOSTILE,
                log.items,
                provider='"><img src=x onerror=alert(3)>',
                issuer="javascript:alert(4)",
                fingerprints=[HOSTILE, "</code><script>alert(5)</script>"],
                issued_by=HOSTILE,
                status=HOSTILE,
                revoked=HOSTILE,
                last_use="<b>not a time</b>",
            )
        ]
    )
    doc["log"]["path"] = HOSTILE
    doc["log"]["verify_message"] = HOSTILE
    doc["generated_at"] = HOSTILE
    return doc


def test_hostile_strings_are_escaped_and_controls_stripped() -> None:
    page = render_html(hostile_report(), title=HOSTILE)
    parsed = Tags(page)
    assert parsed.names() <= ALLOWED_TAGS
    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;quoted&quot;" in page
    assert "&#x27;single&#x27;" in page
    assert "&amp; amp" in page
    assert "\x1b" not in page
    assert "[31mred[0m" in page  # the control character goes, the rest is shown
    # No attribute was broken out of: every attribute name is one this module writes.
    names = {name for _tag, attrs in parsed.tags for name in attrs}
    assert names <= {
        "lang", "charset", "http-equiv", "content", "name", "class", "id", "href", "role",
        "aria-label", "aria-hidden", "focusable", "viewbox", "width", "height", "x", "y", "d",
        "fill", "stroke", "stroke-width", "stroke-dasharray", "r", "text-anchor", "scope",
        "colspan", "open",
    }  # fmt: skip
    # The hostile text comes back intact (bar its control characters) once unescaped.
    text = "".join(parsed.text)
    assert HOSTILE.replace("\x1b", "") in text
    assert "javascript:alert(4)" in text
    assert all(
        not href or href.startswith("#") for _t, a in parsed.tags for href in [a.get("href")]
    )


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a\x00b\x07c\x7fd\x85e", "abcde"),
        ("tab\tnew\nline\r\n", "tab new line "),
        ("bidi \u202eevil\u202c", "bidi \u27e8U+202E\u27e9evil\u27e8U+202C\u27e9"),
        ("g\u200bh", "g\u27e8U+200B\u27e9h"),  # not to be taken for "gh"
        ("tag\U000e0041", "tag\u27e8U+E0041\u27e9"),
        ("lone \ud800 surrogate", "lone \u27e8U+D800\u27e9 surrogate"),
        ("\x1b[31mred", "[31mred"),
    ],
)
def test_control_characters_are_stripped(raw: str, shown: str) -> None:
    log = Events()
    log.add(T0, "issued")
    page = render_html(report([token(raw, log.items)]))
    page.encode("utf-8")  # a lone surrogate would make this raise
    assert f'<span class="name">{shown}</span>' in page
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u202a-\u202e\ud800]", page)


def test_long_strings_are_cut() -> None:
    log = Events()
    log.add(T0, "denied", "denied", reason="x" * 100_000)
    page = render_html(report([token("n" * 5_000, log.items)]))
    assert "x" * report_html.MAX_TEXT in page
    assert "x" * (report_html.MAX_TEXT + 1) not in page
    assert "99,700 more characters" in page
    assert len(page) < 60_000


# --------------------------------------------------------------------------- nothing loaded


def test_no_external_resources_anywhere() -> None:
    for doc in (realistic(), hostile_report(), report([])):
        page = render_html(doc)
        lowered = page.lower()
        for needle in ("<link", "<script", "@import", "url(", "<iframe", "<object", "<embed"):
            assert needle not in lowered, needle
        # URLs from the report are text, never a reference: the only links are to anchors in
        # the page itself, and nothing has an attribute that loads.
        for _tag, attrs in Tags(page).tags:
            assert not set(attrs) & {"src", "srcset", "action", "formaction", "poster", "data"}
            assert not any(name.startswith("on") for name in attrs)
            for name, value in attrs.items():
                if name in {"href", "xlink:href"}:
                    assert value is not None
                    assert value.startswith("#")
            assert "url(" not in (attrs.get("style") or "")
        # And the browser is told to load nothing and run nothing, whatever slipped through.
        match = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
        assert match is not None
        assert "default-src 'none'" in match.group(1)
        assert "unsafe-inline" not in match.group(1)
        assert "script-src" not in match.group(1)


# --------------------------------------------------------------------------- banner and summary


@pytest.mark.parametrize(
    ("verified", "css", "words"),
    [
        (True, "banner ok", "Audit log verified"),
        (False, "banner bad", "Audit log verification FAILED"),
        (None, "banner unknown", "Audit log not verified"),
        ("yes", "banner unknown", "Audit log not verified"),  # only a real True verifies
    ],
)
def test_verification_banner(verified: object, css: str, words: str) -> None:
    doc = realistic()
    doc["log"]["verified"] = verified
    if verified is False:
        doc["log"]["verify_message"] = "record 17: bad hmac"
    page = render_html(doc)
    assert page.count('class="banner') == 1
    assert f'class="{css}"' in page
    assert words in page
    if verified is False:
        assert "record 17: bad hmac" in page
        assert "do not trust" in page


def test_banner_without_a_log_says_not_verified() -> None:
    page = render_html({"tokens": []})
    assert 'class="banner unknown"' in page
    assert "Audit log not verified" in page


def test_summary_has_one_row_per_token_with_every_column() -> None:
    page = render_html(realistic())
    table = page[page.index('<table class="summary">') : page.index("</table>")]
    headers = re.findall(r'<th scope="col">([^<]+)</th>', table)
    assert headers == [
        "Token", "Provider", "Issued", "Uses", "Last use", "Refreshes", "Revoked / pruned",
        "Denials", "Failures", "Status",
    ]  # fmt: skip
    rows = re.findall(r"<tr><th scope=\"row\">(.*?)</tr>", table)
    assert len(rows) == 3
    gh, work, ci = rows
    assert 'href="#t0">gh</a>' in gh
    assert "active" in gh
    assert "2026-11-16 08:00" in gh  # issued
    assert "revoked 2026-11-21 18:20" in work
    assert '<td class="num warn">1</td>' in work  # one denial, flagged
    assert "pruned 2026-11-13 08:00" in ci
    assert "(import)" in ci
    assert "3 tokens" in page
    assert "1 active, 1 revoked, 1 pruned" in page


def test_empty_report() -> None:
    docs: list[dict[str, Any]] = [{}, {"tokens": []}, {"tokens": "x", "log": []}, report([])]
    for doc in docs:
        page = render_html(doc)
        assert page.startswith("<!DOCTYPE html>")
        assert page.rstrip().endswith("</html>")
        assert "No tokens in this report." in page
        assert '<section class="token"' not in page
        assert Tags(page).names() <= ALLOWED_TAGS


def test_page_parts_legend_and_print_stylesheet() -> None:
    page = render_html(realistic(), title="Q4 audit")
    assert "<title>Q4 audit</title>" in page
    assert "<h1>Q4 audit</h1>" in page
    legend = page[page.index('<section class="legend">') :]
    legend = legend[: legend.index("</section>")]
    for label in ("issued", "used", "refreshed", "denied", "revoked", "pruned", "login failed"):
        assert f"<b>{label}</b>" in legend
    assert "@media print" in page
    assert "print-color-adjust:exact" in page
    assert "thead{display:table-header-group}" in page
    # One timeline per token, each drawn with shapes from the shared sprites.
    assert page.count('<svg class="timeline"') == 3
    for kind in ("issued", "refreshed", "denied", "revoked", "pruned", "login_failed"):
        assert f'<g id="k-{kind}">' in page
    assert '<use href="#k-denied"' in section(page, 1)
    assert '<use href="#k-revoked"' in section(page, 1)
    assert '<use href="#k-pruned"' in section(page, 2)


# --------------------------------------------------------------------------- timelines


def _timeline_of(page: str, index: int) -> str:
    part = section(page, index)
    return part[part.index('<svg class="timeline"') : part.index("</svg>")]


@pytest.mark.parametrize(
    ("span", "unit"),
    [
        (timedelta(minutes=50), "minute"),
        (timedelta(hours=10), "10 minutes"),
        (timedelta(days=3), "hour"),
        (timedelta(days=40), "day"),
        (timedelta(days=800), "month"),
        (timedelta(days=365 * 60), "year"),
    ],
)
def test_uses_are_binned_by_a_unit_that_fits(span: timedelta, unit: str) -> None:
    log = Events()
    log.add(T0, "issued")
    steps = 400
    for step in range(1, steps + 1):
        log.add(T0 + span * step / steps, "used")
    page = render_html(report([token("t", log.items)]))
    assert f"Bars: uses per {unit}," in page
    bars = re.search(r'<path d="([^"]*)" fill="#3567b0"><title>400 uses', _timeline_of(page, 0))
    assert bars is not None
    assert 1 <= bars.group(1).count("M") <= report_html.MAX_BINS


def test_timeline_marks_are_aggregated_per_bin_with_counts() -> None:
    log = Events()
    log.add(T0, "issued")
    for minute in range(0, 600, 10):  # 60 denials within one day, over 10 hours
        log.add(T0 + timedelta(days=5, minutes=minute), "denied", "denied", reason="no")
    log.add(T0 + timedelta(days=20), "revoked")
    page = render_html(report([token("t", log.items)]))
    timeline = _timeline_of(page, 0)
    assert timeline.count('<use href="#k-denied"') == 1
    assert "\u00d760</text>" in timeline
    assert "and 59 more in this day" in timeline
    assert timeline.count('<use href="#k-revoked"') == 1
    assert ">revoked</text>" in timeline


def test_odd_events_still_render() -> None:
    log = Events()
    log.add(T0 + timedelta(days=2), "used")
    log.add(T0, "issued")  # out of order
    log.add(T0 + timedelta(days=1), "used", time="2026-11-02T10:00:00+02:00")  # an offset
    log.add(T0 + timedelta(days=1), "used", time="2026-11-02T09:00:00.250Z")  # fractions
    log.add(T0, "refreshed", time="XXXX-XX-XXTXX:XX:XXZ")  # the right length, not a time
    log.add(T0, "used", time=None)
    log.add(T0, "teleported", "success")  # an unknown kind
    events: list[Any] = [*log.items, "not an event", 42, None, {"no": "fields"}]
    page = render_html(report([{"name": "odd", "uses": 4, "events": events}]))
    assert Tags(page).names() <= ALLOWED_TAGS
    part = section(page, 0)
    assert '<svg class="timeline"' in part
    assert "2026-11-02 08:00:00" in part  # +02:00 converted to UTC
    assert "XXXX-XX-XXTXX:XX:XXZ" in part  # shown as given, not placed on the timeline
    assert "teleported" in part
    assert "(not an event)" in part
    assert "2026-11-01 08:00" in _timeline_of(page, 0)  # it starts at the earliest event


def test_token_without_events_or_times() -> None:
    doc = report([token("bare", [])])
    doc["tokens"].append({"name": "undated", "events": [{"event": "used"}, {"event": "used"}]})
    doc["tokens"].append({"name": "junk", "events": "nope", "uses": "many", "status": 7})
    page = render_html(doc)
    assert "No dated events for this token in the log." in section(page, 0)
    assert "No dated events for this token in the log." in section(page, 1)
    assert "2 uses between" in section(page, 1)
    assert "\u2014 uses" in section(page, 2)


# --------------------------------------------------------------------------- event lists


def test_runs_of_uses_are_collapsed() -> None:
    log = Events()
    log.add(T0, "issued")
    for minute in range(500):
        log.add(T0 + timedelta(minutes=minute + 1), "used")
    log.add(T0 + timedelta(hours=10), "denied", "denied", reason="too old", rule="max_token_age")
    for minute in range(300):
        log.add(T0 + timedelta(hours=11, minutes=minute), "used")
    log.add(T0 + timedelta(hours=17), "used", "failure")  # not plain: a row of its own
    log.add(T0 + timedelta(hours=17, minutes=1), "used")  # a single use: listed as it is
    log.add(T0 + timedelta(hours=18), "revoked")
    page = render_html(report([token("t", log.items)]))
    part = section(page, 0)
    rows = re.findall(r"<tr class=\"([^\"]+)\">", part)
    assert rows == [
        "ev-issued", "run ev-used", "ev-denied bad", "run ev-used", "ev-used bad", "ev-used",
        "ev-revoked",
    ]  # fmt: skip
    assert "500 uses between 2026-11-01 08:01:00 and 2026-11-01 16:20:00" in part
    assert "300 uses between 2026-11-01 19:00:00 and 2026-11-01 23:59:00" in part
    assert "<td>2\u2013501</td>" in part  # the run's seq range
    assert "Events: 805 events in 7 rows" in part


def test_rows_per_token_are_capped_keeping_the_first_and_last() -> None:
    doc = uniform(1, 1_000, mixed=True)  # 1,000 events, no two uses in a row
    page = render_html(doc)
    part = section(page, 0)
    cap = report_html.MAX_ROWS_PER_TOKEN
    listed = re.findall(r"<tr class=\"ev-", part)
    assert len(listed) == cap
    assert part.count('<tr class="gap">') == 1
    assert f"the first {cap // 2} and last {cap // 2} of 1,000 rows listed" in part
    gap = part[part.index('<tr class="gap">') :]
    gap = gap[: gap.index("</tr>")]
    assert "800 events not listed" in gap
    assert "seq 101\u2013900" in gap
    assert "400 denied" in gap
    assert "400 used" in gap
    first, last = doc["tokens"][0]["events"][0], doc["tokens"][0]["events"][-1]
    assert f"<td>{first['seq']}</td>" in part
    assert f"<td>{last['seq']:,}</td>" in part


def test_rows_of_the_whole_page_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_html, "MAX_ROWS_TOTAL", 450)
    page = render_html(uniform(4, 400, mixed=True))
    counts = [len(re.findall(r"<tr class=\"ev-", section(page, i))) for i in range(4)]
    assert counts == [200, 200, 50, 0]
    assert "this page already lists 450 rows, its limit" in section(page, 3)
    assert '<svg class="timeline"' in section(page, 3)  # the timeline is still there


def test_detail_stops_at_the_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_html, "MAX_DETAIL_BYTES", 400_000)
    page = render_html(uniform(300, 200, mixed=True))
    assert '<svg class="timeline"' in section(page, 0)
    assert "timeline and list left out" in section(page, 299)
    assert "size limit (400,000 characters)" in section(page, 299)
    assert page.count('<tr><th scope="row">') == 300  # the summary still has every token
    # The limit, plus the section that crossed it, plus a heading for each token after it.
    assert len(page) < 400_000 + 60_000 + 300 * 1_000


# --------------------------------------------------------------------------- bounds


def test_output_size_and_time_are_bounded() -> None:
    doc = uniform(2_000, 200)
    started = time.perf_counter()
    page = render_html(doc)
    elapsed = time.perf_counter() - started
    assert len(page) < 12_000_000  # about 4 KB a token: aggregated, not 200 rows each
    assert elapsed < 30  # generous: a loaded CI machine; benchmarks measure the real speed
    doc = uniform(1_000, 200, mixed=True)  # nothing collapses: the row caps do the work
    page = render_html(doc)
    assert page.count('<tr class="ev-') == report_html.MAX_ROWS_TOTAL
    assert len(page) < report_html.MAX_DETAIL_BYTES


# --------------------------------------------------------------------------- fuzzing

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
times = st.one_of(
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
    st.datetimes().map(datetime.isoformat),
    st.text(max_size=25),
    json_values,
)
kinds = st.sampled_from(
    ["issued", "used", "refreshed", "denied", "revoked", "pruned", "login_failed", "key_rotated"]
) | st.text(max_size=10)
events = st.fixed_dictionaries(
    {"time": times, "event": kinds},
    optional={
        "seq": json_values,
        "outcome": st.sampled_from(["success", "denied", "failure"]) | json_values,
        "reason": json_values,
        "rule": json_values,
        "scopes": json_values,
        "command": json_values,
    },
)
tokens = st.fixed_dictionaries(
    {"name": json_values, "events": st.lists(events | json_values, max_size=30)},
    optional={
        key: json_values | times
        for key in ("provider", "issued", "uses", "last_use", "revoked", "status", "denials")
    },
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {"tokens": st.lists(tokens, max_size=4)},
        optional={"log": st.dictionaries(st.text(max_size=15), json_values), "x": json_values},
    )
)
def test_any_json_renders_safely(doc: Mapping[str, Any]) -> None:
    page = render_html(doc)
    page.encode("utf-8")
    assert Tags(page).names() <= ALLOWED_TAGS
    assert "<script" not in page.lower()
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", page)


# --------------------------------------------------------------------------- a real browser

needs_chromium = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason=f"{CHROMIUM} is absent (apt-get install -y chromium): no browser to render the page",
)


def chromium(profile: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with a throwaway profile and nothing that talks to the network."""
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def page_file(tmp_path: Path) -> Path:
    doc = realistic()
    doc["tokens"].append(token(HOSTILE, [], status="deleted"))  # a fourth, hostile one
    path = tmp_path / "report.html"
    path.write_text(render_html(doc), encoding="utf-8")
    return path


def console_complaints(stderr: str) -> list[str]:
    """What the page made the browser log: a CSP violation, a script error, a failed load."""
    return [
        line
        for line in stderr.splitlines()
        if "CONSOLE" in line or "Content Security Policy" in line or "ERR_" in line
    ]


@needs_chromium
def test_browser_dom_has_every_token_banner_and_timeline(page_file: Path, tmp_path: Path) -> None:
    done = chromium(tmp_path / "profile", "--dump-dom", page_file.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    for name in ("gh", "work", "old-ci"):
        assert f'<span class="name">{name}</span>' in dom
    assert "Audit log verified" in dom
    assert dom.count('<svg class="timeline"') == 3
    assert dom.count('<figure class="tl">') == 3
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # text, not a script element
    assert "<script" not in dom.lower()
    assert "No dated events for this token in the log." in dom
    assert console_complaints(done.stderr) == []  # the stylesheet applied; nothing refused


@needs_chromium
def test_browser_screenshot_and_print(page_file: Path, tmp_path: Path) -> None:
    png = tmp_path / "report.png"
    done = chromium(
        tmp_path / "profile", f"--screenshot={png}", "--window-size=1280,2000", page_file.as_uri()
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 2000)
    assert len(data) > 50_000  # a page of text and drawings, not a blank one
    assert console_complaints(done.stderr) == []

    pdf = tmp_path / "report.pdf"
    done = chromium(
        tmp_path / "profile2", f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page_file.as_uri()
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert pdf.stat().st_size > 20_000
