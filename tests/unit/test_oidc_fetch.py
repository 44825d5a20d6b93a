"""``credvend.oidc.jwks.http_fetch`` against a real local server: the JWKS fetch never follows
a redirect, never reads more than its size cap, and turns every failure into ``JwksUnavailable``
(the function's 503), never an exception of another type (a 500)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from credvend.oidc.jwks import MAX_DOCUMENT_BYTES, JwksUnavailable, http_fetch


class _Handler(BaseHTTPRequestHandler):
    followed: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.followed.append(self.path)
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/target")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/big":
            body = b"[" + b" " * MAX_DOCUMENT_BYTES + b"]"
            self._send(200, body)
        elif self.path == "/big-chunked":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()  # no Content-Length: read until close
            self.wfile.write(b" " * (MAX_DOCUMENT_BYTES + 10))
        elif self.path == "/created":
            self._send(201, b"{}")
        elif self.path == "/target":
            self._send(200, b'{"keys": []}')
        else:
            self._send(404, b"{}")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_200_is_read(server: str) -> None:
    assert http_fetch(f"{server}/target", 2.0) == b'{"keys": []}'


def test_a_redirect_is_never_followed(server: str) -> None:
    _Handler.followed.clear()
    with pytest.raises(JwksUnavailable) as caught:
        http_fetch(f"{server}/redirect", 2.0)
    assert caught.value.reason == "http_302"
    assert _Handler.followed == ["/redirect"]


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
def test_a_document_over_the_cap_is_refused(server: str, path: str) -> None:
    with pytest.raises(JwksUnavailable) as caught:
        http_fetch(f"{server}{path}", 2.0)
    assert caught.value.reason == "too_large"


@pytest.mark.parametrize(("path", "reason"), [("/created", "http_201"), ("/missing", "http_404")])
def test_any_other_status_is_unavailable(server: str, path: str, reason: str) -> None:
    with pytest.raises(JwksUnavailable) as caught:
        http_fetch(f"{server}{path}", 2.0)
    assert caught.value.reason == reason


def test_nothing_listening_is_unavailable() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(JwksUnavailable) as caught:
        http_fetch(f"http://127.0.0.1:{port}/k", 2.0)
    assert caught.value.reason == "unreachable"


def _raw_server(payload: bytes) -> str:
    """A loopback server that answers every connection with ``payload`` (not necessarily HTTP)."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def serve() -> None:
        while True:
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(payload)

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"garbage\r\n\r\n", id="bad-status-line"),
        pytest.param(b"{}", id="http-0.9"),
        pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc", id="broken-chunk"),
        pytest.param(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 200 + b"\r\n{}", id="too-many-headers"),
    ],
)
def test_an_answer_that_is_not_http_is_unavailable_never_another_error(payload: bytes) -> None:
    # http.client raises HTTPException (not OSError, not wrapped by urllib) for these: it once
    # escaped, and the OIDC route answered 500 instead of 503.
    with pytest.raises(JwksUnavailable) as caught:
        http_fetch(f"{_raw_server(payload)}/k", 2.0)
    assert caught.value.reason == "unreachable"


@pytest.mark.parametrize("document", [b"[" * 100_000, b'{"keys":' * 50_000, b"\xff\xfe", b"1" * 5000])
@pytest.mark.parametrize("discovered", [False, True])
def test_a_document_that_is_not_json_is_unavailable(document: bytes, discovered: bool) -> None:
    # Deep nesting raised RecursionError past the JSON check: a 500 instead of 503.
    from credvend.oidc.jwks import IssuerKeys
    from credvend_policy import IssuerSpec

    def fetch(url: str, timeout: float) -> bytes:
        return document

    jwks_uri = None if discovered else "https://issuer.example.com/keys"
    spec = IssuerSpec(url="https://issuer.example.com", audiences=("a",), jwks_uri=jwks_uri)
    with pytest.raises(JwksUnavailable) as caught:
        IssuerKeys(spec, fetch=fetch).jwk_for("k1")
    assert caught.value.reason == ("discovery_not_json" if discovered else "jwks_not_json")
