"""TLS for the syslog sink (RFC 5425): the client context and the optional key pin.

* TLS 1.2 or later, the standard library's :mod:`ssl` with its secure defaults
  (``ssl.create_default_context``): the server's certificate must chain to a trusted CA and
  name the host of ``tls:HOST:PORT`` (a DNS name, or an IP address as an IP SAN).
* The trusted CAs are the file ``audit.tls_ca`` (PEM, one or more certificates) when it is
  set, and the system's trust store otherwise.
* ``audit.tls_pin: "sha256:<64 hex>"`` additionally requires the SHA-256 of the server
  certificate's SubjectPublicKeyInfo (DER) to be that value. The key is pinned, not the
  certificate, so a renewal that keeps the key keeps the pin (as HPKP and curl's
  ``--pinnedpubkey`` do). Compute it with::

      openssl x509 -in server.pem -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum

  The pin adds to the CA check; it never replaces it.
* A CA file that group or others may write is refused (:func:`client_context`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import ssl
from typing import Final

__all__ = ["PIN_RE", "TlsSettingsError", "check_pin", "client_context", "parse_pin", "spki_sha256"]

PIN_RE: Final = re.compile(r"sha256:([0-9a-fA-F]{64})")
"""The form of ``audit.tls_pin``."""


class TlsSettingsError(ValueError):
    """The CA file cannot be used, or the pin is not of the form ``sha256:<64 hex>``."""


def parse_pin(pin: str) -> bytes:
    """The 32 bytes of a ``sha256:<64 hex>`` pin."""
    match = PIN_RE.fullmatch(pin)
    if match is None:
        raise TlsSettingsError("tls_pin must be sha256: followed by 64 hex digits")
    return bytes.fromhex(match.group(1))


def client_context(ca_file: str | None) -> ssl.SSLContext:
    """A client context: TLS 1.2+, certificate and host name checked, ``ca_file`` or the
    system's CAs trusted. A CA file that group or others may write is refused: whoever can
    change it chooses whom the audit records go to."""
    try:
        if ca_file is not None and os.stat(ca_file).st_mode & 0o022:
            raise TlsSettingsError(f"cannot use tls_ca {ca_file}: group or others may write it")
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
        raise TlsSettingsError(f"cannot load tls_ca {ca_file}: {reason}") from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def spki_sha256(certificate_der: bytes) -> bytes:
    """SHA-256 of the DER SubjectPublicKeyInfo of a DER certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_der_x509_certificate(certificate_der)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).digest()


def check_pin(certificate_der: bytes | None, pin: bytes) -> bool:
    """Whether the certificate's key is the pinned one."""
    if not certificate_der:
        return False
    try:
        found = spki_sha256(certificate_der)
    except ValueError:
        return False
    return hmac.compare_digest(found, pin)
