"""The audit report as HTML: rendered from the report of a real log (the odd-lives log of
tests/unit/audit/test_report_lives.py), hostile text escaped in every field, nothing loaded, the
embedded data unable to break out, bounded, and read in a real browser (Debian's headless
Chromium): DOM assertions with a filter preset in the URL, a 1280x900 screenshot, a PDF."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import shutil
import struct
import subprocess
from collections.abc import Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.audit.test_report_lives import NOW, Writer, odd_lives
from vault.audit import html as report_html
from vault.audit.html import render_html
from vault.audit.report import build_report

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT_COPY = Path("/tmp/report-screenshot.png")
XSS = (
    "<script>alert(1)</script>",
    "</script><script>alert(2)</script>",
    '"><img src=x onerror=alert(3)>',
    "' onmouseover='alert(4)",
    "javascript:alert(5)",
    "<!--",
    "\u2028\u2029 line separators",
    "{{ 7*7 }} {% raw %}",
    "&lt;escaped&gt; &amp;",
    "\x1b[31mred\x1b[0m",
    "bidi \u202eevil\u202c g\u200bh",
)
HOSTILE = " ".join(XSS)


class Tags(HTMLParser):
    """Every start tag with its attributes, each script's content, and the text."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.text: list[str] = []
        self._in_script: dict[str, str | None] | None = None
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = dict(attrs)
            self.scripts.append((self._in_script, ""))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = None

    def handle_data(self, data: str) -> None:
        if self._in_script is not None:
            attrs, content = self.scripts[-1]
            self.scripts[-1] = (attrs, content + data)
        else:
            self.text.append(data)


ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "p", "div",
    "span", "strong", "small", "em", "code", "br", "section", "table", "thead", "tbody", "tr",
    "th", "td", "form", "label", "select", "option", "input", "button", "svg", "path", "rect",
    "text", "g", "script",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "lang", "charset", "http-equiv", "content", "name", "class", "id", "role", "aria-label",
    "aria-live", "value", "type", "viewbox", "width", "height", "x", "y", "d", "text-anchor",
    "scope", "data-top", "data-plot", "data-day", "data-life", "data-attempt", "data-vault",
    "data-n", "data-p", "data-u", "data-k", "data-d",
}  # fmt: skip


def odd_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    log, hwm = odd_lives(tmp_path, monkeypatch)
    return build_report(log, hwm, now=NOW)


def hostile_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A real log whose every free field holds the XSS corpus: name, provider, issuer, scopes,
    outcome, reason, rule, source, command, user, host, fingerprint, and the event kind."""
    folder = tmp_path / "hostile"
    folder.mkdir(mode=0o700)
    w = Writer(folder / "audit.jsonl", monkeypatch)
    every: dict[str, Any] = {
        "name": HOSTILE,
        "provider": HOSTILE,
        "issuer": HOSTILE,
        "scopes": list(XSS),
        "reason": HOSTILE,
        "rule": HOSTILE,
        "source": HOSTILE,
        "command": HOSTILE,
        "fingerprint": HOSTILE,
    }
    w.add("issued", user=HOSTILE, host=HOSTILE, **every)
    w.add("used", user=HOSTILE, host=HOSTILE, **every)
    w.add("denied", user=HOSTILE, host=HOSTILE, outcome=HOSTILE, **every)
    w.add("used", user=HOSTILE, host=HOSTILE, name=XSS[1], outcome="failure", command=HOSTILE)
    w.add(HOSTILE, user=HOSTILE, host=HOSTILE, reason=HOSTILE, outcome=HOSTILE)
    report = build_report(w.log(), w.hwm, now=NOW)
    report["log"]["path"] = HOSTILE
    return report


def csp_of(page: str) -> str:
    match = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert match is not None
    return html.unescape(match.group(1))


def sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# --------------------------------------------------------------------------- the page


def test_the_page_shows_lives_attempts_and_every_vault_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = render_html(odd_report(tmp_path, monkeypatch), title="Q4 audit")
    parsed = Tags(page)
    assert {tag for tag, _ in parsed.tags} <= ALLOWED_TAGS
    lives = re.findall(r'<tr class="life" data-life="(\d+)"><th scope="row">([^<]+)</th>'
                       r'<td class="num">(\d+)</td>', page)  # fmt: skip
    assert [(name, life) for _, name, life in lives] == [
        ("ci", "1"), ("gh", "1"), ("gh", "2"), ("k8s", "1"), ("k8s", "2"), ("old", "1"),
    ]  # fmt: skip
    attempts = re.findall(r'<tr class="attempt" data-attempt="\d+"><th scope="row">([^<]+)<', page)
    assert attempts == ["gh", "nosuch", "work"]
    kinds = re.findall(r'<tr class="vault-event" data-vault="\d+"><th scope="row">([^<]+)<', page)
    assert kinds == [
        "key_rotated", "log_rotated", "log_reset", "torn_record_set_aside", "agent_started",
        "agent_unlocked", "agent_locked", "chain_signed",
    ]  # fmt: skip
    assert "<em>before the log</em>" in page  # `old`: its issue went with the reset log
    assert "2026-11-06 17:00:00<br><small>deleted</small>" in page  # the forced delete ends
    assert page.count('<tr class="record') == 32
    assert page.count('<g class="bar"') == 10  # one bar per day with records
    for table in ("per-user", "per-host", "per-command"):
        assert f'id="{table}"' in page
    assert "<title>Q4 audit</title>" in page
    assert "6 token lives</strong> (2 active, 1 deleted, 1 pruned, 2 revoked)" in page
    assert "@media print" in page


def test_xss_corpus_in_every_field_stays_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = hostile_report(tmp_path, monkeypatch)
    page = render_html(report, title=HOSTILE)
    parsed = Tags(page)
    assert {tag for tag, _ in parsed.tags} <= ALLOWED_TAGS
    assert {name for _, attrs in parsed.tags for name in attrs} <= ALLOWED_ATTRIBUTES
    assert not any(name.startswith("on") for _, attrs in parsed.tags for name in attrs)
    assert "<img" not in page
    assert "{{ 7*7 }} {% raw %}" in "".join(parsed.text)  # shown, never evaluated
    # Exactly two scripts: the data (not run) and the package's own script, byte for byte.
    (data_attrs, data), (code_attrs, code) = parsed.scripts
    assert data_attrs == {"type": "application/json", "id": "report-data"}
    assert code_attrs == {}
    assert code == (Path(report_html.__file__).parent / "templates" / "report.js").read_text()
    # The data cannot end its element or start a comment, and carries no raw separator.
    assert "</" not in data
    assert "<!--" not in data
    assert "\u2028" not in page
    assert "\u2029" not in page
    embedded = json.loads(data)
    assert any("</script><script>alert(2)</script>" in n for n in embedded["names"])
    # The hostile text comes back as text, controls removed, invisibles named.
    text = "".join(parsed.text)
    assert "</script><script>alert(2)</script>" in text
    assert '"><img src=x onerror=alert(3)>' in text
    assert "[31mred[0m" in text
    assert "\x1b" not in page
    assert "\u27e8U+202E\u27e9evil" in text
    assert "g\u27e8U+200B\u27e9h" in text
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u202a-\u202e]", page)


def test_nothing_is_loaded_and_the_csp_allows_only_the_inline_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for report in (odd_report(tmp_path, monkeypatch), hostile_report(tmp_path, monkeypatch), {}):
        page = render_html(report)
        parsed = Tags(page)
        for _tag, attrs in parsed.tags:
            assert not set(attrs) & {"src", "srcset", "href", "action", "formaction", "style"}
            assert not any("://" in (value or "") for value in attrs.values())
        style = page[page.index("<style>") + 7 : page.index("</style>")]
        (_, code) = parsed.scripts[1]
        for own in (style, code):
            assert "url(" not in own
            assert "@import" not in own
            assert "http" not in own
            assert "fetch(" not in own
            assert "XMLHttpRequest" not in own
        assert csp_of(page) == (
            f"default-src 'none'; style-src {sha256(style)}; script-src {sha256(code)}; "
            "img-src 'none'; base-uri 'none'; form-action 'none'"
        )
        assert "unsafe" not in csp_of(page)


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
    page = render_html({"log": {"verified": verified, "verify_message": "record 17: bad hmac"}})
    assert page.count('class="banner') == 1
    assert f'class="{css}"' in page
    assert words in page
    assert "record 17: bad hmac" in page
    assert ("do not trust" in page) is (verified is False)


def test_tables_and_records_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_html, "MAX_TABLE_ROWS", 50)
    monkeypatch.setattr(report_html, "MAX_EVENT_ROWS", 100)
    event = {"time": "2026-11-02T08:00:00.000Z", "event": "used", "outcome": "success"}
    lives = [
        {"name": f"t{i}", "life": 1, "events": [{**event, "seq": i * 10 + j} for j in range(10)]}
        for i in range(300)
    ]
    page = render_html({"tokens": lives})
    assert page.count('<tr class="life"') == 50
    assert "250 more lives are not listed" in page
    assert page.count('<tr class="record') == 100
    assert "The last 100 of 3,000 records" in page
    assert len(page) < 400_000


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
events = st.fixed_dictionaries(
    {},
    optional={
        key: json_values | st.sampled_from(XSS)
        for key in ("time", "seq", "event", "outcome", "reason", "rule", "user", "command")
    },
)
rows = st.fixed_dictionaries(
    {"events": st.lists(events | json_values, max_size=6)},
    optional={
        key: json_values | st.sampled_from(XSS)
        for key in ("name", "life", "provider", "issued", "ended", "status", "users", "uses")
    },
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "tokens": st.lists(rows, max_size=3) | json_values,
            "attempts": st.lists(rows, max_size=3),
            "vault_events": st.lists(rows, max_size=3),
            "users": st.lists(st.dictionaries(st.text(max_size=6), json_values), max_size=2),
            "log": st.dictionaries(st.text(max_size=10), json_values),
            "filters": json_values,
        },
    )
)
def test_any_json_renders_safely(doc: Mapping[str, Any]) -> None:
    page = render_html(doc)
    page.encode("utf-8")
    parsed = Tags(page)
    assert {tag for tag, _ in parsed.tags} <= ALLOWED_TAGS
    assert len(parsed.scripts) == 2
    json.loads(parsed.scripts[0][1])
    assert "<img" not in page
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", page)


# --------------------------------------------------------------------------- a real browser

needs_chromium = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason=f"{CHROMIUM} is absent (apt-get install -y chromium): no browser to render the page",
)


def chromium(profile: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with a throwaway profile and nothing that talks to the network; the
    page's script is given virtual time to run before the DOM, screenshot or PDF is taken."""
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
            "--run-all-compositor-stages-before-draw",
            "--virtual-time-budget=5000",
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


def console_complaints(stderr: str) -> list[str]:
    """What the page made the browser log: a CSP violation, a script error, a failed load."""
    return [
        line
        for line in stderr.splitlines()
        if "CONSOLE" in line or "Content Security Policy" in line or "ERR_" in line
    ]


@pytest.fixture
def page_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "report.html"
    path.write_text(render_html(odd_report(tmp_path, monkeypatch)), encoding="utf-8")
    return path


@needs_chromium
def test_browser_dom_with_no_filter(page_file: Path, tmp_path: Path) -> None:
    done = chromium(tmp_path / "profile", "--dump-dom", page_file.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert (
        '<form class="filters" id="filters" aria-label="Filter this page" data-ready="true">' in dom
    )
    for control in ("f-token", "f-provider", "f-user", "f-kind", "f-from", "f-to"):
        assert f'id="{control}"' in dom
    assert 'http-equiv="Content-Security-Policy"' in dom
    assert dom.count('<tr class="life"') == 6
    assert dom.count('<g class="bar"') == 10
    assert "Showing every record." in dom
    assert not re.search(r"<tr [^>]*hidden", dom)
    assert "://" not in dom.replace(page_file.parent.as_uri(), "")  # no URL but its own path
    assert console_complaints(done.stderr) == []  # the stylesheet and script ran; none refused


@needs_chromium
def test_browser_applies_a_filter_from_the_url(page_file: Path, tmp_path: Path) -> None:
    done = chromium(tmp_path / "profile", "--dump-dom", page_file.as_uri() + "#user=bob&kind=used")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert "Showing 2 of 32 records: user bob, kind used." in dom
    records = re.findall(r'<tr class="record[^"]*"[^>]*>', dom)
    assert len(records) == 32
    assert sum(" hidden" not in r for r in records) == 2  # bob's use, his failed lookup
    lives = re.findall(r'<tr class="life"[^>]*>', dom)
    assert [" hidden" not in row for row in lives] == [False, True, False, False, False, False]
    attempts = re.findall(r'<tr class="attempt"[^>]*>', dom)
    assert [" hidden" not in row for row in attempts] == [True, False, False]
    assert all(" hidden" in row for row in re.findall(r'<tr class="vault-event"[^>]*>', dom))
    counts = re.findall(r'<g class="bar" data-day="\d+" data-count="(\d+)"', dom)
    assert counts == ["0", "0", "1", "1", "0", "0", "0", "0", "0", "0"]
    assert 'id="chart-max">1<' in dom
    assert console_complaints(done.stderr) == []


@needs_chromium
def test_browser_screenshot_and_print(page_file: Path, tmp_path: Path) -> None:
    png = tmp_path / "report.png"
    done = chromium(
        tmp_path / "profile", f"--screenshot={png}", "--window-size=1280,900", page_file.as_uri()
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1280, 900)
    assert len(data) > 30_000  # a page of text and drawings, not a blank one
    assert console_complaints(done.stderr) == []
    shutil.copyfile(png, SCREENSHOT_COPY)  # for a person to look at

    pdf = tmp_path / "report.pdf"
    done = chromium(
        tmp_path / "profile2", f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page_file.as_uri()
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert pdf.stat().st_size > 20_000
