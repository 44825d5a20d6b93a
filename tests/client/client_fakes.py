"""A stand-in for the credvend API on 127.0.0.1, for the client's unit tests and the bench.

It answers ``GET {stage}/credentials/{role}`` in the three formats of CONTRACT §2 with fresh
fake credentials (counting every vend), or with scripted answers (errors, throttling), and
records each request as received so tests can check the signature.
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from credvend_client.api import RetryPolicy

STAGE = "/prod"
ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/ReportsReader"
# The caller's own (source) credentials: they sign, and must never be printed.
SOURCE_KEY = "AKIDSOURCEEXAMPLE0001"
SOURCE_SECRET = "source-secret-do-not-print-9f8e7d"
SOURCE_TOKEN = "source-session-token-do-not-print-1a2b3c"
REGION = "eu-west-1"
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.002, max_retry_after=5.0)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str  # as sent, with the query
    headers: dict[str, str]  # lower-case names

    @property
    def query(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}


@dataclass(frozen=True)
class Scripted:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, code: str, message: str, *, request_id: str = "req-123", **headers: str) -> Scripted:
    return Scripted(status, {"Error": {"Code": code, "Message": message}, "RequestId": request_id}, headers)


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (the read-timeout tests) closes the connection under a handler
        # still sleeping; socketserver would print that traceback to stderr, where it lands in
        # a later test's captured output.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class FakeCredvend:
    """Run with ``with FakeCredvend() as fake: ... fake.url``."""

    def __init__(self, *, lifetime: float = 3600, clock: Callable[[], float] = time.time, delay: float = 0.0) -> None:
        self.lifetime = lifetime
        self.clock = clock
        self.delay = delay
        self.requests: list[Recorded] = []
        self.scripted: deque[Scripted] = deque()
        self.vends = 0
        self.issued: list[dict[str, str]] = []  # every secret handed out, to prove none leaks
        self._serial = itertools.count(1)
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{STAGE}"

    def script(self, *answers: Scripted | Iterable[Scripted]) -> None:
        for answer in answers:
            if isinstance(answer, Scripted):
                self.scripted.append(answer)
            else:
                self.scripted.extend(answer)

    def __enter__(self) -> FakeCredvend:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- answers --------------------------------------------------------------------------

    def _credentials(self, role: str) -> dict[str, str]:
        with self._lock:
            self.vends += 1
            serial = next(self._serial)
        now = self.clock()
        creds = {
            "AccessKeyId": f"ASIAFAKE{serial:012d}",
            "SecretAccessKey": f"fake-secret-{role}-{serial}-wJalrXUtnFEMI",
            "SessionToken": f"fake-session-token-{role}-{serial}-FwoGZXIvYXdzEJr",
            "Expiration": iso(now + self.lifetime),
        }
        self.issued.append(creds)
        return creds

    def answer(self, role: str, fmt: str) -> Scripted:
        creds = self._credentials(role)
        if fmt == "credential_process":
            return Scripted(200, {"Version": 1, **creds, "AccountId": ACCOUNT})
        if fmt == "container":
            body = {
                "AccessKeyId": creds["AccessKeyId"],
                "SecretAccessKey": creds["SecretAccessKey"],
                "Token": creds["SessionToken"],
                "Expiration": creds["Expiration"],
                "RoleArn": ROLE_ARN,
                "AccountId": ACCOUNT,
            }
            return Scripted(200, body)
        envelope = {
            "Credentials": creds,
            "AssumedRoleUser": {"Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/ReportsReader/billing-api"},
            "Grant": {"Caller": "billing-api", "Role": role, "RoleArn": ROLE_ARN, "GrantedDurationSeconds": 3600},
            "RequestId": "req-ok",
        }
        return Scripted(200, envelope)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                fake.requests.append(
                    Recorded("GET", self.path, {name.lower(): value for name, value in self.headers.items()})
                )
                if fake.delay:
                    time.sleep(fake.delay)
                parts = urlsplit(self.path)
                # The OIDC routes (a bearer token instead of a signature) answer the same way.
                prefix = next(
                    (p for p in (f"{STAGE}/credentials/", f"{STAGE}/oidc/credentials/") if parts.path.startswith(p)),
                    None,
                )
                if fake.scripted:
                    answer = fake.scripted.popleft()
                elif prefix is not None:
                    fmt = parse_qs(parts.query).get("format", ["json"])[0]
                    answer = fake.answer(parts.path[len(prefix) :], fmt)
                else:
                    answer = Scripted(403, {"message": "Missing Authentication Token"})
                body = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("x-amzn-RequestId", "hdr-req-id")
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
