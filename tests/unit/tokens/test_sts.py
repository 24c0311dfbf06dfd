"""The STS edge (vault.tokens.sts): the answers it accepts, the hostile ones it refuses (with a
typed error, never anything else), the mapping of STS's errors to exit codes, the checks of what
the command line gives, and where the request goes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.harness.fake_oauth import Handler, fake_oauth
from vault.errors import AuthError, ConfigError, NetworkError, UsageError, VaultError
from vault.login.http import client
from vault.secret import Secret
from vault.tokens import sts
from vault.util.redact import scrub_text

NOW = 1_800_000_000.0
NS = sts.NAMESPACE
KEY_ID = "ASIARZPUZDIKOZHFNUWO"
SECRET_KEY = "59oKQN7G6SUYaQn7QSiCTb2bR8V7lA0a9wFDzBf8"
SESSION = "FQoGZXIvYXdzEBYaDVQuwvGpWTSm1aQfO2+Y/oYVc0gKdu1bPMpVkb+jQ5i+yZFT1ye1z8jj=="
WEB_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWNhbmFyeQ"


def issued_xml(
    *,
    expiration: str = "2027-01-15T09:00:00.123456Z",
    key_id: str = KEY_ID,
    secret: str = SECRET_KEY,
    extra: str = "",
    root: str = "AssumeRoleWithWebIdentityResponse",
    ns: str = NS,
) -> bytes:
    return (
        f'<{root} xmlns="{ns}"><AssumeRoleWithWebIdentityResult>'
        f"<Credentials><AccessKeyId>{key_id}</AccessKeyId>"
        f"<SecretAccessKey>{secret}</SecretAccessKey><SessionToken>{SESSION}</SessionToken>"
        f"<Expiration>{expiration}</Expiration></Credentials>{extra}"
        "<AssumedRoleUser><AssumedRoleId>ARO123:alice</AssumedRoleId>"
        "<Arn>arn:aws:sts::123456789012:assumed-role/dev/alice</Arn></AssumedRoleUser>"
        f"</AssumeRoleWithWebIdentityResult></{root}>"
    ).encode()


def error_xml(code: str, message: str) -> bytes:
    return (
        f'<ErrorResponse xmlns="{NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
    ).encode()


def test_a_successful_answer_gives_the_credentials_as_secrets() -> None:
    issued = sts.parse_issued(issued_xml(), what="STS", now=NOW)
    assert issued.access_key_id == KEY_ID
    assert issued.secret_access_key.reveal() == SECRET_KEY
    assert issued.session_token.reveal() == SESSION
    assert issued.expiration == int(NOW) + 3600  # 2027-01-15T09:00:00Z, the fraction dropped
    assert issued.assumed_role_arn == "arn:aws:sts::123456789012:assumed-role/dev/alice"
    assert SECRET_KEY not in repr(issued)
    assert SESSION not in repr(issued)
    assert KEY_ID not in repr(issued)


@pytest.mark.parametrize("when", ["2027-01-15T09:00:00Z", "2027-01-15T09:00:00+00:00"])
def test_expiration_in_utc_is_read_with_or_without_a_fraction(when: str) -> None:
    assert sts.parse_issued(issued_xml(expiration=when), what="STS", now=NOW).expiration == (
        int(NOW) + 3600
    )


LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'.encode()
        for i in range(1, 10)
    )
    + b"]><AssumeRoleWithWebIdentityResponse>&lol9;</AssumeRoleWithWebIdentityResponse>"
)

HOSTILE = {
    "billion laughs": LAUGHS,
    "external entity": b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
    "parameter entity": b'<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x"> %p;]><x/>',
    "doctype alone": b"<!DOCTYPE x><x/>",
    "undefined entity": b"<x>&e;</x>",
    "processing instruction": b'<?xml-stylesheet href="x"?><x/>',
    "too deep": b"<a>" * 40 + b"</a>" * 40,
    "too many elements": b"<a>" + b"<b/>" * 500 + b"</a>",
    "text too long": b"<a>" + b"x" * (sts.MAX_TEXT + 1) + b"</a>",
    "over the size limit": b"<a>" + b" " * sts.MAX_ANSWER + b"</a>",
    "two roots": b"<a/><b/>",
    "text outside": b"junk<a/>",
    "not xml": b'{"AccessKeyId": "x"}',
    "empty": b"",
    "truncated": issued_xml()[:-20],
    "not utf-8": b"<a>\xff\xfe</a>",
    "wrong root": issued_xml(root="AssumeRoleResponse"),
    "wrong namespace": issued_xml(ns="https://evil.example/"),
    "no namespace": issued_xml().replace(f' xmlns="{NS}"'.encode(), b""),
    "key id malformed": issued_xml(key_id="ASIA KEY<>"),
    "key id empty": issued_xml(key_id=""),
    "secret with a space": issued_xml(secret="a b"),
    "secret with a control": issued_xml(secret="ab&#1;cd"),
    "expiration not a time": issued_xml(expiration="tomorrow"),
    "expiration not utc": issued_xml(expiration="2027-01-15T09:00:00+02:00"),
    "expiration impossible": issued_xml(expiration="2027-02-30T09:00:00Z"),
    "expired already": issued_xml(expiration="2027-01-15T07:59:59Z"),
    "credentials twice": issued_xml(
        extra=f"<Credentials><AccessKeyId>{KEY_ID}</AccessKeyId></Credentials>"
    ),
    "no credentials": (
        f'<AssumeRoleWithWebIdentityResponse xmlns="{NS}"><AssumeRoleWithWebIdentityResult>'
        "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
    ).encode(),
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_or_malformed_answers_are_refused_as_invalid(body: bytes) -> None:
    with pytest.raises(NetworkError) as refused:
        sts.parse_issued(body, what="STS at x", now=NOW)
    assert refused.value.code == "invalid_response"
    assert refused.value.exit_code == 7
    assert "root:" not in refused.value.message  # nothing of a file was read into it


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096) | st.text(max_size=2048).map(str.encode))
def test_any_bytes_give_credentials_or_a_typed_error(body: bytes) -> None:
    for parse in (
        lambda: sts.parse_issued(body, what="STS", now=NOW),
        lambda: sts.error_of(400, body, what="STS"),
    ):
        try:
            result = parse()
        except NetworkError:
            continue
        assert isinstance(result, (sts.Issued, VaultError))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["<a>", "</a>", "<b/>", "&amp;", "x", "<!--c-->", "&#65;"])))
def test_xml_pieces_in_any_order_never_escape_the_parser(pieces: list[str]) -> None:
    with contextlib.suppress(NetworkError):
        sts.parse_xml("".join(pieces).encode(), what="STS")


ERRORS = [
    # (status, code, error class, exit code)
    (400, "InvalidIdentityToken", AuthError, 4),
    (400, "ExpiredTokenException", AuthError, 4),
    (403, "AccessDenied", AuthError, 4),
    (403, "IDPRejectedClaim", AuthError, 4),
    (400, "ValidationError", UsageError, 2),
    (400, "InvalidParameterValue", UsageError, 2),
    (400, "Throttling", NetworkError, 7),
    (400, "IDPCommunicationError", NetworkError, 7),
    (503, "ServiceUnavailable", NetworkError, 7),
    (500, "InternalFailure", NetworkError, 7),
    (500, "SomethingNew", NetworkError, 7),
    (400, "SomethingNew", AuthError, 4),
]


@pytest.mark.parametrize(("status", "code", "kind", "exit_code"), ERRORS)
def test_sts_errors_are_mapped_to_exit_codes(
    status: int, code: str, kind: type[VaultError], exit_code: int
) -> None:
    error = sts.error_of(status, error_xml(code, "it said no"), what="STS at x")
    assert type(error) is kind
    assert isinstance(error, VaultError)
    assert error.exit_code == exit_code
    assert f"{code}: it said no" in error.message


@pytest.mark.parametrize(
    ("status", "body", "exit_code"),
    [
        (500, b"<html>oops</html>", 7),
        (502, b"", 7),
        (429, b"slow down", 7),
        (404, b"not found", 7),
        (400, error_xml("Bad Code!", "x"), 7),  # a code outside STS's shape is no code
    ],
)
def test_answers_that_are_not_sts_errors_are_network_errors(
    status: int, body: bytes, exit_code: int
) -> None:
    error = sts.error_of(status, body, what="STS at x")
    assert isinstance(error, NetworkError)
    assert error.exit_code == exit_code


def test_an_error_message_never_carries_the_web_identity_token() -> None:
    body = error_xml("InvalidIdentityToken", f"the token {WEB_TOKEN} is not valid\u202e")
    error = sts.error_of(400, body, what="STS", never_show=(WEB_TOKEN,))
    assert WEB_TOKEN not in error.message
    assert "\u202e" not in error.message  # no bidi override, control or escape reaches a person
    assert "InvalidIdentityToken" in error.message


def test_the_request_is_the_unsigned_query_and_the_answer_parsed() -> None:
    routes: dict[str, Handler] = {"/": lambda _: (200, {"Content-Type": "text/xml"}, issued_xml())}
    with fake_oauth(routes) as fake, client(5) as http:
        issued = sts.assume_role_with_web_identity(
            http,
            f"{fake.issuer}/",
            role_arn="arn:aws:iam::123456789012:role/dev",
            session_name="alice",
            web_identity_token=Secret(WEB_TOKEN),
            duration=900,
            now=NOW,
        )
    assert issued.access_key_id == KEY_ID
    assert fake.requests == [
        (
            "/",
            {
                "Action": "AssumeRoleWithWebIdentity",
                "Version": "2011-06-15",
                "RoleArn": "arn:aws:iam::123456789012:role/dev",
                "RoleSessionName": "alice",
                "WebIdentityToken": WEB_TOKEN,
                "DurationSeconds": "900",
            },
        )
    ]


def test_an_oversized_answer_is_refused_while_it_is_read() -> None:
    routes: dict[str, Handler] = {"/": lambda _: (200, {}, b"<a>" + b"x" * (4 * sts.MAX_ANSWER))}
    with fake_oauth(routes) as fake, client(5) as http, pytest.raises(NetworkError) as refused:
        sts.assume_role_with_web_identity(
            http,
            f"{fake.issuer}/",
            role_arn="arn:aws:iam::123456789012:role/dev",
            session_name="alice",
            web_identity_token=Secret(WEB_TOKEN),
            duration=900,
            now=NOW,
        )
    assert "over 64 KiB" in refused.value.message


ARNS_OK = [
    "arn:aws:iam::123456789012:role/dev",
    "arn:aws:iam::123456789012:role/path/to/Dev+Role=,.@-_",
    "arn:aws-us-gov:iam::123456789012:role/x",
    "arn:aws-cn:iam::123456789012:role/x",
    "arn:aws-iso-b:iam::123456789012:role/x",
]
ARNS_BAD = [
    "",
    "dev",
    "arn:aws:iam::12345678901:role/dev",  # 11 digits
    "arn:aws:iam::1234567890123:role/dev",
    "arn:aws:iam::123456789012:user/dev",
    "arn:aws:sts::123456789012:role/dev",
    "arn:aws:iam:us-east-1:123456789012:role/dev",
    "arn:aws:iam::123456789012:role/",
    "arn:aws:iam::123456789012:role//dev",
    "arn:aws:iam::123456789012:role/dev/",
    "arn:aws:iam::123456789012:role/de v",
    "arn:aws:iam::123456789012:role/dev\n",
    "arn:aws:iam::123456789012:role/dév",
    "arn:aws:iam::\uff11\uff12\uff13456789012:role/dev",  # other scripts' digits
    "arn:evil:iam::123456789012:role/dev",
    "ARN:AWS:IAM::123456789012:ROLE/dev",
    "arn:aws:iam::123456789012:role/" + "x" * 65,
    "arn:aws:iam::123456789012:role/" + "p/" * 1100 + "x",
]


@pytest.mark.parametrize("arn", ARNS_OK)
def test_role_arns_of_every_partition_are_accepted(arn: str) -> None:
    assert sts.check_role_arn(arn) == arn


@pytest.mark.parametrize("arn", ARNS_BAD)
def test_what_is_not_a_role_arn_is_a_usage_error(arn: str) -> None:
    with pytest.raises(UsageError) as refused:
        sts.check_role_arn(arn)
    assert refused.value.exit_code == 2
    assert "\n" not in refused.value.message


@given(st.text(max_size=80))
def test_session_names_are_what_sts_accepts(text: str) -> None:
    import re

    valid = re.fullmatch(r"[A-Za-z0-9_+=,.@-]{2,64}", text) is not None
    if valid:
        assert sts.check_session_name(text) == text
    else:
        with pytest.raises(UsageError):
            sts.check_session_name(text)


@given(st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=100)), max_size=4))
def test_a_session_name_made_from_anything_is_valid(candidates: list[object]) -> None:
    assert sts.check_session_name(sts.session_name_from(*candidates))


def test_a_session_name_comes_from_the_first_usable_candidate() -> None:
    assert sts.session_name_from(None, "alice@example.com", "x") == "alice@example.com"
    assert sts.session_name_from("Ann Lee", "x") == "Ann-Lee"
    assert sts.session_name_from("-", "ü", "ab") == "ab"
    assert sts.session_name_from("a" * 100) == "a" * 64
    assert sts.session_name_from() == "vault"


@pytest.mark.parametrize("seconds", [899, 43201, 0, -1])
def test_a_duration_outside_what_sts_accepts_is_a_usage_error(seconds: int) -> None:
    with pytest.raises(UsageError):
        sts.check_duration(seconds)
    assert sts.check_duration(900) == 900
    assert sts.check_duration(43200) == 43200


ENDPOINTS = [
    ({}, None, "https://sts.us-east-1.amazonaws.com/"),
    ({"AWS_REGION": "eu-west-1"}, None, "https://sts.eu-west-1.amazonaws.com/"),
    ({"AWS_DEFAULT_REGION": "eu-west-2"}, None, "https://sts.eu-west-2.amazonaws.com/"),
    (
        {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "x"},
        None,
        "https://sts.eu-west-1.amazonaws.com/",
    ),
    ({"AWS_REGION": "eu-west-1"}, "ap-south-1", "https://sts.ap-south-1.amazonaws.com/"),
    ({}, "cn-north-1", "https://sts.cn-north-1.amazonaws.com.cn/"),
    ({}, "us-gov-west-1", "https://sts.us-gov-west-1.amazonaws.com/"),
    ({"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}, "eu-west-1", "http://127.0.0.1:5000"),
    (
        {
            "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
            "AWS_ENDPOINT_URL_STS": "https://sts.example",
        },
        None,
        "https://sts.example",
    ),
    (
        {
            "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
        },
        None,
        "https://sts.us-east-1.amazonaws.com/",
    ),
]


@pytest.mark.parametrize(("env", "region", "url"), ENDPOINTS)
def test_the_endpoint_is_chosen_as_the_aws_sdks_choose_it(
    env: dict[str, str], region: str | None, url: str
) -> None:
    assert sts.endpoint(env, region) == url


@pytest.mark.parametrize(
    ("env", "region", "kind"),
    [
        ({"AWS_ENDPOINT_URL": "http://sts.example"}, None, ConfigError),  # plain http off loopback
        ({"AWS_ENDPOINT_URL_STS": "https://user:pw@sts.example"}, None, ConfigError),
        ({"AWS_ENDPOINT_URL": "ftp://127.0.0.1"}, None, ConfigError),
        ({}, "evil.example/x", UsageError),
        ({"AWS_REGION": "us-east-1.evil.example"}, None, UsageError),
        ({}, "US-EAST-1", UsageError),
    ],
)
def test_an_unusable_endpoint_or_region_is_refused(
    env: dict[str, str], region: str | None, kind: type[VaultError]
) -> None:
    with pytest.raises(kind):
        sts.endpoint(env, region)


def test_the_log_redactor_masks_the_secrets_of_an_sts_answer() -> None:
    text = scrub_text(issued_xml().decode())
    assert SECRET_KEY not in text
    assert SESSION not in text
    assert KEY_ID in text  # an identifier, not a secret
