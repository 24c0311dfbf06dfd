"""AWS STS ``AssumeRoleWithWebIdentity``: an ID token exchanged for temporary AWS credentials.

The request is the unsigned query API (a form POST; no AWS credentials are needed to make it),
sent with the project's HTTP client (vault.login.http: a total deadline, no redirects, https
except on loopback, the body read up to a limit). The answer is XML, parsed at this edge
strictly and bounded: no DOCTYPE (so no entity of any kind, internal or external), at most
MAX_ANSWER bytes, MAX_ELEMENTS elements, MAX_DEPTH levels and MAX_TEXT characters of text in one
element. What comes out is an ``Issued`` (the credentials, secrets as ``Secret``) or a typed
error; the web identity token and the credentials never appear in an error. Nothing prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vault.errors import AuthError, NetworkError, UsageError, VaultError
from vault.secret import MASK, Secret
from vault.util.text import clean

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import httpx

VERSION = "2011-06-15"
NAMESPACE = f"https://sts.amazonaws.com/doc/{VERSION}/"
MIN_DURATION = 900  # STS refuses a shorter DurationSeconds
MAX_DURATION = 43200  # ... and a longer one (a role may allow less: its MaxSessionDuration)
DEADLINE = 20.0  # the whole request, connect to last byte
MAX_ANSWER = 64 * 1024
MAX_ELEMENTS = 200
MAX_DEPTH = 12
MAX_TEXT = 16 * 1024

# arn:PARTITION:iam::ACCOUNT:role/PATH/NAME (IAM: names of [\w+=,.@-], a path of such segments).
ROLE_ARN = re.compile(
    r"arn:aws(?:-[a-z]+)*:iam::[0-9]{12}:role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}", re.ASCII
)
MAX_ROLE_ARN = 2048
SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}", re.ASCII)
_ACCESS_KEY_ID = re.compile(r"[A-Z0-9]{16,128}", re.ASCII)
_PRINTABLE = re.compile(rf"[\x21-\x7e]{{1,{MAX_TEXT}}}", re.ASCII)
_TIME = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(\.[0-9]{1,9})?(Z|[+-]00:00)"
)

# Error codes STS answers, by what they mean here (anything else a 4xx: AuthError).
NETWORK_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
        "IDPCommunicationError",
    }
)
USAGE_CODES = frozenset({"ValidationError", "InvalidParameterValue", "MissingParameter"})


def check_role_arn(text: str) -> str:
    """``text`` if it is an IAM role ARN (``arn:aws[-PARTITION]:iam::ACCOUNT:role/[PATH/]NAME``);
    UsageError otherwise."""
    if len(text) > MAX_ROLE_ARN or not ROLE_ARN.fullmatch(text):
        raise UsageError(
            f"--role-arn {clean(text, 100)!r} is not an IAM role ARN",
            hint="arn:aws:iam::123456789012:role/NAME (a path may come before NAME)",
        )
    return text


def check_session_name(text: str) -> str:
    if not SESSION_NAME.fullmatch(text):
        raise UsageError(
            f"--session-name {clean(text, 100)!r} is not a role session name",
            hint="2 to 64 of the letters, digits and _+=,.@- (what STS accepts)",
        )
    return text


def check_duration(seconds: int) -> int:
    if not MIN_DURATION <= seconds <= MAX_DURATION:
        raise UsageError(
            f"--duration {seconds} is outside what STS accepts ({MIN_DURATION} to {MAX_DURATION} "
            "seconds)"
        )
    return seconds


def session_name_from(*candidates: object) -> str:
    """A valid role session name made from the first usable candidate (a user name, an email
    address, the token's name): characters STS refuses become "-", cut to 64; "vault" when
    none gives 2 characters."""
    for value in candidates:
        if not isinstance(value, str):
            continue
        name = re.sub(r"[^\w+=,.@-]", "-", value, flags=re.ASCII)[:64]
        if len(name.strip("-")) >= 2:
            return name
    return "vault"


def endpoint(env: Mapping[str, str], region: str | None) -> str:
    """Where to send the request, as the AWS SDKs choose it: AWS_ENDPOINT_URL_STS, else
    AWS_ENDPOINT_URL (neither when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true), else the
    regional endpoint of ``region`` (else AWS_REGION, AWS_DEFAULT_REGION, us-east-1). https is
    required, except to a loopback address (vault.login.http.check_url)."""
    from vault.errors import ConfigError
    from vault.login.http import check_url

    if env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").strip().lower() != "true":
        for var in ("AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"):
            value = env.get(var, "").strip()
            if value:
                return check_url(value, what=var, error=ConfigError)
    where = "--region"
    if region is None:
        for var in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            if env.get(var, "").strip():
                region, where = env[var].strip(), var
                break
    region = region or "us-east-1"
    if not REGION.fullmatch(region):
        raise UsageError(f"{where} {clean(region, 40)!r} is not an AWS region name (us-east-1)")
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://sts.{region}.{suffix}/"


@dataclass(frozen=True)
class Issued:
    """What STS gave: the credentials (secrets as ``Secret``) and until when they hold."""

    access_key_id: str
    secret_access_key: Secret
    session_token: Secret
    expiration: int  # UNIX seconds
    assumed_role_arn: str | None

    def __repr__(self) -> str:
        return f"Issued(assumed_role_arn={self.assumed_role_arn!r}, expiration={self.expiration})"


def assume_role_with_web_identity(
    http: httpx.Client,
    url: str,
    *,
    role_arn: str,
    session_name: str,
    web_identity_token: Secret,
    duration: int,
    now: float,
) -> Issued:
    """One AssumeRoleWithWebIdentity request to ``url``. Raises AuthError (STS refused the
    token or the role: exit 4), UsageError (STS refused a parameter, such as a duration over
    the role's maximum: exit 2) or NetworkError (unreachable, throttled, a server error, an
    answer that is not what STS answers: exit 7)."""
    from vault.login.http import host_of, request

    form = {
        "Action": "AssumeRoleWithWebIdentity",
        "Version": VERSION,
        "RoleArn": role_arn,
        "RoleSessionName": session_name,
        "WebIdentityToken": web_identity_token.reveal(),
        "DurationSeconds": str(duration),
    }
    what = f"STS at {host_of(url)}"
    response = request(
        http,
        "POST",
        url,
        what=what,
        data=form,
        headers={"Accept": "text/xml"},  # STS answers JSON when asked for it: not wanted
        limit=MAX_ANSWER,
    )
    secret = web_identity_token.reveal()
    if response.status == 200:
        return parse_issued(response.body, what=what, now=now)
    raise error_of(response.status, response.body, what=what, never_show=(secret,))


def parse_issued(body: bytes, *, what: str, now: float) -> Issued:
    """The credentials in a successful answer; NetworkError for anything else."""
    root = parse_xml(body, what=what)
    if root.tag != f"{{{NAMESPACE}}}AssumeRoleWithWebIdentityResponse":
        raise _invalid(what, "it is not an AssumeRoleWithWebIdentity answer")
    result = root.one("AssumeRoleWithWebIdentityResult", what)
    creds = result.one("Credentials", what)
    key_id = creds.one("AccessKeyId", what).text
    secret = creds.one("SecretAccessKey", what).text
    session = creds.one("SessionToken", what).text
    expiration = creds.one("Expiration", what).text
    if not _ACCESS_KEY_ID.fullmatch(key_id):
        raise _invalid(what, "its AccessKeyId is malformed")
    if not _PRINTABLE.fullmatch(secret) or not _PRINTABLE.fullmatch(session):
        raise _invalid(what, "its secret access key or session token is malformed")
    expires = _parse_time(expiration)
    if expires is None:
        raise _invalid(what, "its Expiration is not a UTC time")
    if expires <= now:
        raise _invalid(what, "the credentials it gave have expired already")
    user = result.find("AssumedRoleUser")
    arn = user.find("Arn") if user is not None else None
    assumed = clean(arn.text, 2048) if arn is not None else None
    return Issued(key_id, Secret(secret), Secret(session), expires, assumed)


def error_of(
    status: int, body: bytes, *, what: str, never_show: tuple[str, ...] = ()
) -> VaultError:
    """The error an answer other than 200 stands for: STS's ``<ErrorResponse>`` Code and
    Message, mapped (see NETWORK_CODES, USAGE_CODES; any other code AuthError); a body that is
    not one, by its HTTP status. ``never_show``: texts replaced in the message wherever STS
    quotes them (the web identity token)."""
    code, message = "", ""
    try:
        root = parse_xml(body, what=what)
        if root.tag == f"{{{NAMESPACE}}}ErrorResponse":
            error = root.one("Error", what)
            found = error.find("Code")
            code = found.text if found is not None else ""
            found = error.find("Message")
            message = found.text if found is not None else ""
    except NetworkError:
        pass
    if not re.fullmatch(r"[A-Za-z0-9.]{1,64}", code):
        code = ""
    for text in never_show:
        if text:
            message = message.replace(text, MASK)
    message = clean(message, 300)
    said = f"{code}: {message}" if message else code
    if not code:
        if status >= 500 or status == 429:
            return NetworkError(f"{what} answered HTTP {status}", code="sts_unavailable")
        return NetworkError(
            f"{what} answered HTTP {status} with something that is not an STS error",
            code="invalid_response",
        )
    if code in NETWORK_CODES or status >= 500:
        return NetworkError(f"{what} could not serve the request ({said})", code="sts_unavailable")
    if code in USAGE_CODES:
        return UsageError(
            f"{what} refused the request ({said})",
            hint="--duration may be over the role's maximum session duration (1 hour unless "
            "the role says more)",
        )
    return AuthError(f"{what} refused the ID token or the role ({said})", code="sts_refused")


def _invalid(what: str, why: str) -> NetworkError:
    return NetworkError(f"{what}: the answer is not usable: {why}", code="invalid_response")


def _parse_time(text: str) -> int | None:
    from datetime import UTC, datetime

    match = _TIME.fullmatch(text)
    if match is None:
        return None
    try:
        when = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(when.timestamp())


# --- a small, strict XML reader ---------------------------------------------------------


class Element:
    """One element: its tag (``{namespace}name``), its text (stripped) and its children."""

    __slots__ = ("children", "tag", "text")

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.text = ""
        self.children: list[Element] = []

    def find(self, name: str) -> Element | None:
        """The child ``name`` in the STS namespace; NetworkError if there are several."""
        found = [c for c in self.children if c.tag == f"{{{NAMESPACE}}}{name}"]
        if len(found) > 1:
            raise _invalid("STS", f"it has more than one {name}")
        return found[0] if found else None

    def one(self, name: str, what: str) -> Element:
        found = self.find(name)
        if found is None:
            raise _invalid(what, f"it has no {name}")
        return found


def parse_xml(body: bytes, *, what: str) -> Element:
    """The document in ``body``, within the bounds of this module's docstring; NetworkError
    (invalid_response) for anything malformed, over a bound, or with a DOCTYPE, an entity or
    a processing instruction."""
    from xml.parsers import expat

    if len(body) > MAX_ANSWER:
        raise _invalid(what, f"it is over {MAX_ANSWER // 1024} KiB")

    class Refused(Exception):
        pass

    stack: list[Element] = []
    texts: list[list[str]] = []
    done: list[Element] = []
    count = [0]

    def start(tag: str, _attrs: dict[str, str]) -> None:
        count[0] += 1
        if count[0] > MAX_ELEMENTS or len(stack) >= MAX_DEPTH or done:
            raise Refused
        element = Element(tag)
        if stack:
            stack[-1].children.append(element)
        stack.append(element)
        texts.append([])

    def end(_tag: str) -> None:
        element = stack.pop()
        element.text = "".join(texts.pop()).strip()
        if not stack:
            done.append(element)

    def data(text: str) -> None:
        if texts:
            part = texts[-1]
            part.append(text)
            if sum(len(p) for p in part) > MAX_TEXT:
                raise Refused
        elif text.strip():
            raise Refused

    def refuse(*_args: object) -> None:
        raise Refused

    def refuse_reference(*_args: object) -> int:
        raise Refused

    parser = expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = lambda tag, attrs: start(_ns(tag), attrs)
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse_reference
    parser.ProcessingInstructionHandler = refuse
    parser.DefaultHandler = _default_refusing(Refused)
    try:
        parser.Parse(body, True)
    except (Refused, expat.ExpatError, RecursionError, ValueError):
        raise _invalid(what, "it is not a well-formed XML document of the expected shape") from None
    if not done:
        raise _invalid(what, "it is empty")
    return done[0]


def _ns(tag: str) -> str:
    """``namespace}name`` (expat's form with namespace_separator "}") as ``{namespace}name``."""
    return "{" + tag if "}" in tag else tag


def _default_refusing(refused: type[Exception]) -> Callable[[str], None]:
    """The handler for what no other handler takes: an entity reference (``&name;``, which
    without a DOCTYPE can only be undefined) is refused; comments and the XML declaration pass."""

    def default(text: str) -> None:
        if text.startswith("&") and text.endswith(";"):
            raise refused

    return default
