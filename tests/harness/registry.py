"""A container registry on 127.0.0.1 for the docker credential helper's tests: Debian's
`docker-registry` (the CNCF distribution registry, its own config file, storage in a temporary
folder) behind a small reverse proxy that checks HTTP Basic credentials against the vault's
current token (the registry's own htpasswd cannot check a token that changes), and a small OCI
image to push.

The proxy accepts only ``Authorization: Basic base64(USERNAME:TOKEN)`` for the username and
tokens it is told, answers 401 with ``WWW-Authenticate: Basic realm=...`` otherwise, and
forwards the rest to the registry unchanged (Host included, so the registry's upload URLs
name the proxy). It records every Authorization header it saw, to check where the token went.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import http.client
import io
import json
import re
import shutil
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REGISTRY = shutil.which("docker-registry")
SKOPEO = shutil.which("skopeo")
REALM = "vault-test-registry"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "trailer"}


@dataclass
class Gate:
    """What the proxy accepts, and what it saw."""

    username: str = ""
    tokens: set[str] = field(default_factory=set)
    seen: list[str] = field(default_factory=list)  # every Authorization header, in order
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def allows(self, header: str | None) -> bool:
        with self.lock:
            if header is not None:
                self.seen.append(header)
            if header is None or not header.startswith("Basic "):
                self.refused += 1
                return False
            try:
                user, _, secret = (
                    base64.b64decode(header[6:], validate=True).decode().partition(":")
                )
            except (ValueError, UnicodeDecodeError):
                self.refused += 1
                return False
            ok = user == self.username and secret in self.tokens
            self.refused += 0 if ok else 1
            return ok

    def reset(self, username: str, *tokens: str) -> None:
        with self.lock:
            self.username = username
            self.tokens = set(tokens)
            self.seen.clear()
            self.refused = 0


def _handler(gate: Gate, upstream: tuple[str, int]) -> type[BaseHTTPRequestHandler]:
    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _forward(self) -> None:
            body = self._body()
            if not gate.allows(self.headers.get("Authorization")):
                message = (
                    b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
                )
                self.send_response(401)
                self.send_header("WWW-Authenticate", f'Basic realm="{REALM}"')
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(message)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(message)
                return
            dropped = {*HOP_BY_HOP, "authorization", "content-length"}
            conn = http.client.HTTPConnection(*upstream, timeout=30)
            try:
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in self.headers.items():  # repeated headers (Accept) stay repeated
                    if k.lower() not in dropped:
                        conn.putheader(k, v)
                conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body)
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for k, v in answer.getheaders():
                    if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            finally:
                conn.close()

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    return Proxy


@dataclass
class Registry:
    """The registry behind its proxy: ``host`` is what clients use (127.0.0.1:PROXY_PORT)."""

    host: str
    gate: Gate
    log: Path


@contextlib.contextmanager
def running_registry(base: Path) -> Iterator[Registry]:
    """docker-registry on 127.0.0.1 (a port of its own choosing), storage and config under
    ``base``, the checking proxy in front; both stopped after."""
    assert REGISTRY is not None
    base.mkdir(parents=True, exist_ok=True)
    config = base / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: info}\n"
        f"storage: {{filesystem: {{rootdirectory: {base / 'data'}}}}}\n"
        "http: {addr: '127.0.0.1:0', relativeurls: true}\n"
    )
    log = base / "registry.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([REGISTRY, "serve", str(config)], stdout=out, stderr=out)
    server: ThreadingHTTPServer | None = None
    try:
        port = _listening_port(log, proc)
        gate = Gate()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(gate, ("127.0.0.1", port)))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield Registry(f"127.0.0.1:{server.server_address[1]}", gate, log)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _listening_port(log: Path, proc: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"listening on 127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
        if found:
            return int(found.group(1))
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log.read_text(errors='replace')}")
        time.sleep(0.05)
    raise RuntimeError("docker-registry did not start listening")


def _blob(folder: Path, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    (folder / "blobs" / "sha256" / digest).write_bytes(data)
    return f"sha256:{digest}", len(data)


def make_oci_image(folder: Path, content: bytes = b"hello from the vault tests\n") -> str:
    """An OCI image layout at ``folder`` with one image (one layer: one file), tagged
    "latest"; returns the manifest's digest."""
    (folder / "blobs" / "sha256").mkdir(parents=True)
    (folder / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mtime, info.mode = len(content), 0, 0o644
        tar.addfile(info, io.BytesIO(content))
    layer_tar = raw.getvalue()
    layer, layer_size = _blob(folder, gzip.compress(layer_tar, mtime=0))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {
            "type": "layers",
            "diff_ids": [f"sha256:{hashlib.sha256(layer_tar).hexdigest()}"],
        },
        "config": {},
    }
    config_digest, config_size = _blob(folder, json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer,
                "size": layer_size,
            }
        ],
    }
    manifest_digest, manifest_size = _blob(folder, json.dumps(manifest).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": {"org.opencontainers.image.ref.name": "latest"},
            }
        ],
    }
    (folder / "index.json").write_text(json.dumps(index))
    return manifest_digest
