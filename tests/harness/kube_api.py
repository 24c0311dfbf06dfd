"""A loopback HTTPS server that answers enough of the Kubernetes API for the real kubectl
(`kubectl get --raw PATH`, `kubectl get pods`: discovery, one empty pod list), and records the
Authorization header of every request it gets. Its certificate is signed by a CA made for it,
with ``cryptography``; it listens on 127.0.0.1 only.

Not a fake of vault's peer: kubectl is the peer under test, this is only what it talks to.
"""

from __future__ import annotations

import json
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

_DISCOVERY: dict[str, dict[str, Any]] = {
    "/api": {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    },
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/api/v1": {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {
                "name": "pods",
                "singularName": "pod",
                "namespaced": True,
                "kind": "Pod",
                "verbs": ["get", "list"],
                "shortNames": ["po"],
            }
        ],
    },
    "/api/v1/namespaces/default/pods": {
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "1"},
        "items": [],
    },
    "/version": {"major": "1", "minor": "32", "gitVersion": "v1.32.0"},
}


@dataclass
class Seen:
    """One request: its path and the Authorization header it carried (None: none)."""

    path: str
    authorization: str | None


@dataclass
class KubeAPI:
    server: ThreadingHTTPServer
    ca_file: Path
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def bearer_tokens(self) -> list[str]:
        """The bearer token of every request, in order."""
        with self.lock:
            return [
                s.authorization.removeprefix("Bearer ")
                for s in self.seen
                if s.authorization is not None and s.authorization.startswith("Bearer ")
            ]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def make_tls(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, cert, key)."""
    from tests.harness.testca import make_ca

    ca = make_ca(folder, "vault test kube")
    return ca.ca_file, ca.cert_file, ca.key_file


def start_kube_api(folder: Path) -> KubeAPI:
    """The server, running in a thread on 127.0.0.1 (a free port); stop it with ``stop``."""
    ca_file, cert_file, key_file = make_tls(folder)
    holder: list[KubeAPI] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            api = holder[0]
            auth = self.headers.get("Authorization")
            path = self.path.split("?", 1)[0]
            with api.lock:
                api.seen.append(Seen(path, auth))
            if auth is None or not auth.startswith("Bearer ") or len(auth) <= len("Bearer "):
                self._answer(
                    401,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "message": "Unauthorized",
                        "reason": "Unauthorized",
                        "code": 401,
                    },
                )
                return
            body = _DISCOVERY.get(path)
            if body is None:
                self._answer(
                    404,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "reason": "NotFound",
                        "code": 404,
                    },
                )
                return
            self._answer(200, body)

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    api = KubeAPI(server, ca_file)
    holder.append(api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return api
