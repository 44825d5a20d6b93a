"""``credvend serve``: the SDKs' container credentials provider, on loopback.

An SDK with ``AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:PORT/roles/ROLE`` and
``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`` (or ``..._TOKEN``) sends
``GET /roles/ROLE`` with the token verbatim in ``Authorization`` and reads
``{AccessKeyId, SecretAccessKey, Token, Expiration, AccountId?}``. The SDKs accept plain http
only to loopback, which is also the only address this server binds.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from credvend_client.api import CredvendClient
from credvend_client.cache import CredentialCache, CredentialsUnavailable, Fetch
from credvend_client.credentials import VendedCredentials
from credvend_client.errors import DeniedError

LOOPBACK = "127.0.0.1"
ROLE_PATH = re.compile(r"/roles/([A-Za-z0-9][A-Za-z0-9_.-]{0,63})")  # fullmatch: no trailing newline
TOKEN_BYTES = 32  # token_urlsafe(32): 43 characters, 256 bits
MIN_TOKEN_CHARS = 16
TOKEN_ENV = "CREDVEND_SERVE_TOKEN"  # noqa: S105 - the name of a variable, not a token


# --- the token ---------------------------------------------------------------------------------


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def is_visible_ascii(text: str) -> bool:
    """Only ``!`` (0x21) to ``~`` (0x7e): no space, control character or anything outside
    ASCII, which header parsers, token files and the SDKs each treat differently."""
    return all("!" <= ch <= "~" for ch in text)


def check_token_value(token: str) -> str:
    """A token every SDK sends back unchanged: visible ASCII only, long enough to guess never."""
    if len(token) < MIN_TOKEN_CHARS or not is_visible_ascii(token):
        raise ValueError(
            f"the token must be at least {MIN_TOKEN_CHARS} characters of visible ASCII (0x21-0x7e, no spaces)"
        )
    return token


def default_token_file(environ: Mapping[str, str]) -> tuple[Path, Path | None]:
    """Where ``serve`` writes its token without ``--token-file``: ``$XDG_RUNTIME_DIR/credvend/token``
    (a per-user 0700 directory), else ``token`` in a new private (0700) temporary directory.
    Returns the path and the directory created for it, which ``serve`` removes on exit (or None)."""
    runtime_dir = environ.get("XDG_RUNTIME_DIR")
    if runtime_dir and Path(runtime_dir).is_absolute() and Path(runtime_dir).is_dir():
        folder = Path(runtime_dir) / "credvend"
        folder.mkdir(mode=0o700, exist_ok=True)
        return folder / "token", None
    folder = Path(tempfile.mkdtemp(prefix="credvend-"))  # mode 0700
    return folder / "token", folder


def write_token_file(path: str | os.PathLike[str], token: str) -> Path:
    """Write ``token`` to ``path`` with mode 0600 and no trailing newline, atomically.

    SDKs re-read the file on every fetch, so it is replaced in one rename: no reader ever sees
    an empty or half-written token, and the file never exists with wider permissions.
    """
    target = Path(path)
    fd, temp_name = tempfile.mkstemp(prefix=".credvend-token-", dir=target.parent or Path())  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii", newline="") as handle:
            handle.write(check_token_value(token))  # no "\n": botocore and Go reject it
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return target


def token_matches(presented: str | None, token: str) -> bool:
    """Constant-time comparison of the ``Authorization`` header with the token; a header that
    is not visible ASCII never matches (nor is it compared)."""
    if presented is None or not is_visible_ascii(presented):
        return False
    return hmac.compare_digest(presented.encode("ascii"), token.encode("ascii"))


def upstream_fetch(client: CredvendClient, *, duration: int | None = None) -> Fetch:
    """The cache's fetch function: one signed ``format=container`` vend per call."""

    def fetch(role: str) -> VendedCredentials:
        return VendedCredentials.from_container(client.vend(role, duration=duration, fmt="container"))

    return fetch


# --- the server --------------------------------------------------------------------------------


class SidecarHandler(BaseHTTPRequestHandler):
    """``GET /roles/{role}`` (token required) and ``GET /healthz`` (no secrets, no token)."""

    server: SidecarServer
    protocol_version = "HTTP/1.1"  # keep-alive: botocore and the other SDKs pool connections
    timeout = 30  # an idle keep-alive connection gives its thread back after this
    # Headers and body leave in two writes; with Nagle's algorithm the second waits for the
    # client's delayed ACK (~40 ms on Linux) on a kept-alive connection.
    disable_nagle_algorithm = True
    server_version = "credvend-sidecar"
    sys_version = ""
    error_content_type = "application/json"
    error_message_format = '{"Error": {"Code": "HTTP%(code)d", "Message": "malformed request"}}'

    _UNAUTHENTICATED: ClassVar[tuple[int, str, str]] = (401, "Unauthenticated", "the Authorization token is missing")
    _FORBIDDEN_TOKEN: ClassVar[tuple[int, str, str]] = (403, "AccessDenied", "the Authorization token is wrong")

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._send_json(200, {"Status": "ok"})
            return
        match = ROLE_PATH.fullmatch(path)
        if match is None:
            self._send_error(404, "NotFound", "use GET /roles/{role}")
            return
        presented = self.headers.get("Authorization")
        if presented is None:
            self._send_error(*self._UNAUTHENTICATED)
            return
        if not token_matches(presented, self.server.token):
            self._send_error(*self._FORBIDDEN_TOKEN)
            return
        role = match.group(1)
        if self.server.allowed_roles is not None and role not in self.server.allowed_roles:
            self._send_error(403, "AccessDenied", "this sidecar does not serve that role")
            return
        try:
            credentials = self.server.cache.get(role)
        except CredentialsUnavailable as exc:
            cause = exc.cause
            if isinstance(cause, DeniedError):
                self._send_error(403, cause.code, cause.message)
            else:
                code = cause.code if cause is not None else "UpstreamUnavailable"
                message = cause.message if cause is not None else "no valid credentials"
                self._send_error(503, code, message)
            return
        except Exception as exc:  # a bug: answer (the SDK retries) rather than drop the connection
            self.log_error("internal error serving %s: %s", role, type(exc).__name__)
            self._send_error(500, "InternalError", "the sidecar failed; see its log")
            return
        self._send_json(200, credentials.container_document(), secret=True)

    def do_POST(self) -> None:
        self._send_error(405, "MethodNotAllowed", "use GET")

    do_PUT = do_DELETE = do_PATCH = do_POST

    def _send_error(self, status: int, code: str, message: str) -> None:
        self._send_json(status, {"Error": {"Code": code, "Message": message}})

    def _send_json(self, status: int, document: dict[str, Any], *, secret: bool = False) -> None:
        body = json.dumps(document, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if secret:
            self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_error(self, format: str, *args: Any) -> None:
        if self.server.error_log is not None:
            self.server.error_log(format % args)

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines carry no secret (the token is a header), but one line per SDK fetch
        # is noise; the server logs refreshes and failures through ``on_event`` instead.
        if self.server.access_log is not None:
            self.server.access_log(f"{self.address_string()} {format % args}")


class SidecarServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog is 5: SDK workers starting together open dozens of
    # connections at once, and those beyond the backlog wait for a SYN retransmit (>= 1 s),
    # longer than the JS SDK's 1 s timeout. The kernel caps this at net.core.somaxconn.
    request_queue_size = 1024
    allow_reuse_address = False  # a second sidecar on the same port must fail, not share it

    def __init__(
        self,
        port: int,
        *,
        cache: CredentialCache,
        token: str,
        allowed_roles: Iterable[str] | None = None,
        access_log: Callable[[str], None] | None = None,
        error_log: Callable[[str], None] | None = None,
    ) -> None:
        self.cache = cache
        self.token = check_token_value(token)
        roles = frozenset(allowed_roles or ())
        self.allowed_roles: frozenset[str] | None = roles or None
        self.access_log = access_log
        self.error_log = error_log
        super().__init__((LOOPBACK, port), SidecarHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def role_url(self, role: str) -> str:
        return f"http://{LOOPBACK}:{self.port}/roles/{role}"

    def start_in_thread(self, *, poll_interval: float = 0.05) -> threading.Thread:
        """For tests and the benchmark: serve in a daemon thread; ``shutdown()`` stops it."""
        thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": poll_interval}, name="credvend-sidecar", daemon=True
        )
        thread.start()
        return thread
