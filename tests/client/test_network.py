"""How the client reaches the endpoint: never through a proxy for loopback or plain http
(issue 9, item 6), and a 429 with Retry-After retried to success by every command."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from credvend_client import sidecar
from credvend_client.api import build_client, proxies_for
from credvend_client.cache import CredentialCache
from credvend_client.sidecar import SidecarServer
from tests.client.client_fakes import FAST_RETRY, FakeCredvend, error

PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


class CountingProxy:
    """A listening socket that counts the connections made to it (and answers none)."""

    def __init__(self) -> None:
        self.connections = 0
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._socket.close()


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingProxy]:
    counting = CountingProxy()
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in PROXY_VARIABLES:
        monkeypatch.setenv(name, counting.url)
    yield counting
    counting.close()


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:4566/prod",
        "http://localhost:4566/prod",
        "http://LOCALHOST:4566/prod",
        "http://[::1]:4566/prod",
        "https://127.0.0.2/prod",
        "https://localhost/prod",
        "http://10.1.2.3/prod",  # plain http elsewhere (CREDVEND_ALLOW_INSECURE_HTTP): in clear to a proxy too
        "http://credvend.internal/prod",
    ],
)
def test_loopback_and_plain_http_endpoints_are_never_proxied(proxy: CountingProxy, endpoint: str) -> None:
    assert proxies_for(endpoint) == {}


def test_https_to_another_host_may_use_the_proxy(proxy: CountingProxy) -> None:
    assert proxies_for("https://abc123.execute-api.eu-west-1.amazonaws.com/prod")["https"] == proxy.url


def test_no_proxy_still_applies_to_https(proxy: CountingProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", ".amazonaws.com")
    assert proxies_for("https://abc123.execute-api.eu-west-1.amazonaws.com/prod") == {}


def test_get_to_a_loopback_endpoint_goes_direct_with_proxy_variables_set(
    fake: FakeCredvend, endpoint: str, run_cli: Any, proxy: CountingProxy
) -> None:
    result = run_cli("get", "reports-reader")
    assert result.code == 0, result.err
    assert len(fake.requests) == 1
    assert proxy.connections == 0


# --- 429 + Retry-After, retried to success by every command ------------------------------------


def test_get_retries_a_429_with_retry_after(fake: FakeCredvend, endpoint: str, run_cli: Any) -> None:
    fake.script(error(429, "Throttled", "slow down", **{"Retry-After": "0"}))
    result = run_cli("get", "reports-reader")
    assert result.code == 0, result.err
    assert json.loads(result.out)["Credentials"] == fake.issued[0]
    assert len(fake.requests) == 2


def test_credential_process_retries_a_429_with_retry_after(fake: FakeCredvend, endpoint: str, run_cli: Any) -> None:
    fake.script([error(429, "Throttled", "slow down", **{"Retry-After": "0"})] * 2)
    result = run_cli("credential-process", "reports-reader")
    assert result.code == 0, result.err
    assert json.loads(result.out)["SessionToken"] == fake.issued[0]["SessionToken"]
    assert len(fake.requests) == 3


def test_serve_retries_a_429_with_retry_after(fake: FakeCredvend, aws_env: dict[str, str]) -> None:
    token = "test-token-0123456789abcdef"
    client = build_client(endpoint=fake.url, region=None, profile=None, retry=FAST_RETRY)
    waited: list[float] = []
    client._sleep = waited.append
    server = SidecarServer(0, cache=CredentialCache(sidecar.upstream_fetch(client)), token=token)
    server.start_in_thread()
    fake.script(error(429, "Throttled", "slow down", **{"Retry-After": "2"}))
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("GET", "/roles/reports-reader", headers={"Authorization": token})
        response = connection.getresponse()
        body = json.loads(response.read())
        connection.close()
    finally:
        server.shutdown()
        server.server_close()
    assert response.status == 200
    assert body["Token"] == fake.issued[0]["SessionToken"]
    assert len(fake.requests) == 2
    assert waited == [2.0]  # Retry-After honoured
