"""Whom a token belongs to, found once at login: the subject and a name a person recognises.

Where it comes from, first found first:

1. the ID token's claims (``sub``; ``preferred_username``, else ``email``, else ``name``),
   read without verifying the signature (vault.util.jwt);
2. the provider's userinfo endpoint (the same claims), when the ID token gave no name to show
   (or there is no ID token); a userinfo ``sub`` that differs from the ID token's is ignored,
   as OpenID Connect Core 1.0 §5.3.4 asks;
3. for the GitHub preset, ``GET {api_base}/user``: ``login`` to show, ``id`` as the subject.

This is display metadata, never a decision: no policy rule, no lookup and no check reads it,
so an unverified claim is enough (the token came straight from the provider over TLS; a wrong
value costs a wrong name on the screen). Every value is hostile: only strings (and GitHub's
integer ``id``) are taken, cleaned of controls, bidirectional and invisible characters
(vault.util.text.clean) and bounded; a subject that does not fit is dropped, not cut.

Best effort: :func:`lookup` never raises for anything the provider does; what went wrong is
logged at -v and the login goes on without an account.
"""

from __future__ import annotations

from vault.errors import VaultError
from vault.login import http as http_
from vault.login.providers import Provider
from vault.secret import Secret
from vault.store.model import Account
from vault.util.jwt import claims
from vault.util.text import clean
from vault.util.trace import log

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Mapping

    import httpx

    from vault.login.oauth import Endpoints, TokenSet

MAX_SUBJECT = 255  # OpenID Connect: "MUST NOT exceed 255 ASCII characters in length"
MAX_DISPLAY = 80  # characters of the name shown (one line at 80 columns, with the rest)
DISPLAY_CLAIMS = ("preferred_username", "email", "name")
LOOKUP_SECONDS = 10.0  # one request, at most this long: the login is already done
MAX_ANSWER = 256 * 1024


def _text(value: object, limit: int, *, cut: bool) -> str | None:
    """``value`` as shown text: a string cleaned, or (``cut`` false: a subject) a
    non-negative integer (GitHub's ids) in decimal; None for any other type, for what is
    empty once cleaned, and (``cut`` false) for what is over ``limit`` characters once
    cleaned."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    if isinstance(value, int) and (cut or not 0 <= value < 10**30):
        return None
    text = clean(str(value), 10 * limit).strip()
    if not text:
        return None
    if len(text) > limit:
        return clean(text, limit) if cut else None
    return text


def from_claims(doc: Mapping[str, object], *, subject_key: str = "sub") -> Account | None:
    """The account an ID token's or userinfo's claims name; None where they name nothing
    usable (no string subject and no name to show)."""
    subject = _text(doc.get(subject_key), MAX_SUBJECT, cut=False)
    display = None
    for key in DISPLAY_CLAIMS:
        display = _text(doc.get(key), MAX_DISPLAY, cut=True)
        if display is not None:
            break
    if subject is None and display is None:
        return None
    return Account(subject=subject, display=display)


def from_github(doc: Mapping[str, object]) -> Account | None:
    """GitHub's ``/user``: ``login`` shown, the numeric ``id`` as the subject."""
    subject = _text(doc.get("id"), MAX_SUBJECT, cut=False)
    display = _text(doc.get("login"), MAX_DISPLAY, cut=True)
    if subject is None and display is None:
        return None
    return Account(subject=subject, display=display)


def lookup(
    http: httpx.Client, provider: Provider, endpoints: Endpoints, tokens: TokenSet
) -> Account | None:
    """Whom ``tokens`` (just granted by ``provider``) belong to, or None where that cannot be
    found. Never raises for what the provider answers (or fails to)."""
    try:
        return _lookup(http, provider, endpoints, tokens)
    except VaultError as exc:
        log("login.account_unknown", reason=clean(exc.message, 300))
    except Exception as exc:  # a provider's answer must never fail a login that succeeded
        log("login.account_unknown", reason=type(exc).__name__)
    return None


def _lookup(
    http: httpx.Client, provider: Provider, endpoints: Endpoints, tokens: TokenSet
) -> Account | None:
    found: Account | None = None
    if tokens.id_token is not None:
        doc = claims(tokens.id_token.reveal())
        if doc is not None:
            found = from_claims(doc)
    if found is not None and found.display is not None:
        log("login.account", source="id_token")
        return found
    if provider.preset == "github" and provider.api_base:
        url = provider.api_base.rstrip("/") + "/user"
        answer = _get(http, url, tokens.access_token, what="GitHub /user", github=True)
        account = None if answer is None else from_github(answer)
        log("login.account", source="github_user", found=account is not None)
        return account or found
    if endpoints.userinfo_endpoint:
        answer = _get(http, endpoints.userinfo_endpoint, tokens.access_token, what="userinfo")
        if answer is not None:
            info = from_claims(answer)
            if info is not None and (found is None or info.subject == found.subject):
                log("login.account", source="userinfo")
                return Account(subject=info.subject, display=info.display)
            if info is not None:
                log("login.account_unknown", reason="userinfo names another subject; ignored")
    if found is None:
        log("login.account_unknown", reason="no ID token claims and no userinfo")
    return found


def _get(
    http: httpx.Client, url: str, token: Secret, *, what: str, github: bool = False
) -> dict[str, object] | None:
    """One GET with the token; the JSON object answered, or None (logged) for anything else."""
    headers = {"Authorization": f"Bearer {token.reveal()}", "Accept": "application/json"}
    if github:
        headers["Accept"] = "application/vnd.github+json"
    resp = http_.request(
        http, "GET", url, what=what, headers=headers, limit=MAX_ANSWER, within=LOOKUP_SECONDS
    )
    if resp.status != 200:
        log("login.account_unknown", reason=f"{what} answered HTTP {resp.status}")
        return None
    return resp.json_object(what=what)
