"""A Terraform module registry on 127.0.0.1 over HTTPS, for the credentials helper's tests:
service discovery (`/.well-known/terraform.json`), the module registry protocol's `versions`
and `download`, and the module itself (a .tar.gz with one output). Its certificate is
self-signed for 127.0.0.1 (Terraform trusts it through SSL_CERT_FILE). It records the
Authorization header of every request: where Terraform sent the token.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import ipaddress
import json
import shutil
import ssl
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TERRAFORM = shutil.which("terraform")


@dataclass
class ModuleRegistry:
    host: str  # 127.0.0.1:PORT, as Terraform names it
    ca_file: Path
    seen: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Authorization)


def _certificate(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vault test module registry")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return cert_file, key_file


def _module_archive() -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        data = b'output "hello" {\n  value = "from the vault test registry"\n}\n'
        info = tarfile.TarInfo("main.tf")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


@contextlib.contextmanager
def running_module_registry(folder: Path) -> Iterator[ModuleRegistry]:
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = _certificate(folder)
    archive = _module_archive()
    registry = ModuleRegistry("", cert_file)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key.replace("_", "-"), value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            registry.seen.append((self.path, self.headers.get("Authorization")))
            if self.path == "/.well-known/terraform.json":
                body = json.dumps({"modules.v1": "/v1/modules/"}).encode()
                self._send(200, body, Content_Type="application/json")
            elif self.path == "/v1/modules/acme/hello/null/versions":
                body = json.dumps({"modules": [{"versions": [{"version": "1.0.0"}]}]}).encode()
                self._send(200, body, Content_Type="application/json")
            elif self.path == "/v1/modules/acme/hello/null/1.0.0/download":
                self._send(204, X_Terraform_Get=f"https://{registry.host}/hello.tar.gz")
            elif self.path == "/hello.tar.gz":
                self._send(200, archive, Content_Type="application/gzip")
            else:
                self._send(404)

        do_HEAD = do_GET

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    registry.host = f"127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield registry
    finally:
        server.shutdown()
        server.server_close()
