"""``credvend serve``: loopback only, the token check, the token file, the SDK's view of it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import stat
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.credentials import ContainerProvider

from credvend_client import sidecar
from credvend_client.api import CredvendClient
from credvend_client.cache import CredentialCache
from credvend_client.sidecar import SidecarServer, token_matches, write_token_file
from tests.client.client_fakes import FAST_RETRY, REGION, FakeCredvend, error

REPO = Path(__file__).resolve().parents[2]
TOKEN = "test-token-0123456789abcdef"


@pytest.fixture
def server(fake: FakeCredvend, aws_env: dict[str, str]) -> Iterator[SidecarServer]:
    from credvend_client.api import build_client

    client: CredvendClient = build_client(endpoint=fake.url, region=None, profile=None, retry=FAST_RETRY)
    cache = CredentialCache(sidecar.upstream_fetch(client))
    sidecar_server = SidecarServer(0, cache=cache, token=TOKEN, allowed_roles=["reports-reader", "other"])
    sidecar_server.start_in_thread()
    yield sidecar_server
    sidecar_server.shutdown()
    sidecar_server.server_close()


def get(server: SidecarServer, path: str, token: str | None = TOKEN) -> tuple[int, dict[str, str], Any]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", path, headers={"Authorization": token} if token is not None else {})
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    return response.status, {name.lower(): value for name, value in response.getheaders()}, body


def test_binds_loopback_only(server: SidecarServer) -> None:
    assert server.server_address[0] == "127.0.0.1"


def test_serves_the_container_credentials_format(server: SidecarServer, fake: FakeCredvend) -> None:
    status, headers, body = get(server, "/roles/reports-reader")
    assert status == 200
    assert headers["cache-control"] == "no-store"
    assert headers["content-type"] == "application/json"
    issued = fake.issued[0]
    assert body["AccessKeyId"] == issued["AccessKeyId"]
    assert body["SecretAccessKey"] == issued["SecretAccessKey"]
    assert body["Token"] == issued["SessionToken"]
    assert body["Expiration"] == issued["Expiration"]
    assert body["AccountId"] == "123456789012"
    assert fake.requests[0].query == {"format": "container"}


@pytest.mark.parametrize(
    ("token", "status"),
    [(None, 401), ("", 403), ("wrong-token", 403), (TOKEN + "x", 403), (TOKEN[:-1], 403), (f"Bearer {TOKEN}", 403)],
)
def test_refuses_a_missing_or_wrong_token(
    server: SidecarServer, fake: FakeCredvend, token: str | None, status: int
) -> None:
    got, _, body = get(server, "/roles/reports-reader", token=token)
    assert got == status
    assert "AccessKeyId" not in body
    assert fake.vends == 0


def test_the_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return a == b

    monkeypatch.setattr(sidecar.hmac, "compare_digest", spy)
    assert token_matches(TOKEN, TOKEN)
    assert not token_matches("nope", TOKEN)
    assert not token_matches(None, TOKEN)
    assert calls == [(TOKEN.encode(), TOKEN.encode()), (b"nope", TOKEN.encode())]


def test_serves_only_the_roles_it_was_given(server: SidecarServer, fake: FakeCredvend) -> None:
    assert get(server, "/roles/admin")[0] == 403
    assert get(server, "/roles/../etc/passwd")[0] == 404
    assert get(server, "/credentials/reports-reader")[0] == 404
    assert fake.vends == 0


def test_health_needs_no_token_and_shows_no_secret(server: SidecarServer) -> None:
    status, _, body = get(server, "/healthz", token=None)
    assert (status, body) == (200, {"Status": "ok"})


def test_upstream_denial_is_403_and_failure_with_nothing_cached_is_503(
    server: SidecarServer, fake: FakeCredvend
) -> None:
    fake.script(error(403, "AccessDenied", "not granted"))
    status, _, body = get(server, "/roles/reports-reader")
    assert (status, body["Error"]["Code"]) == (403, "AccessDenied")
    fake.script([error(503, "UpstreamUnavailable", "STS timed out")] * FAST_RETRY.max_attempts)
    status, _, body = get(server, "/roles/other")
    assert (status, body["Error"]["Code"]) == (503, "UpstreamUnavailable")


def test_one_cached_answer_for_many_requests(server: SidecarServer, fake: FakeCredvend) -> None:
    bodies = [get(server, "/roles/reports-reader")[2] for _ in range(50)]
    assert fake.vends == 1
    assert all(body == bodies[0] for body in bodies)


def test_botocore_container_provider_reads_it(server: SidecarServer, fake: FakeCredvend, tmp_path: Path) -> None:
    token_file = write_token_file(tmp_path / "token", TOKEN)
    environ = {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": server.role_url("reports-reader"),
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
    }
    credentials = ContainerProvider(environ=environ).load().get_frozen_credentials()
    assert credentials.access_key == fake.issued[0]["AccessKeyId"]
    assert credentials.token == fake.issued[0]["SessionToken"]


def test_token_file_is_0600_without_trailing_newline_and_replaces_an_older_one(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("old-token\n")
    path.chmod(0o644)
    write_token_file(path, TOKEN)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == TOKEN.encode()  # no "\n": botocore and Go reject it
    assert [p.name for p in tmp_path.iterdir()] == ["token"]  # no temp file left behind


def test_generated_tokens_are_long_random_and_header_safe() -> None:
    tokens = {sidecar.new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(token) >= 40 and sidecar.is_visible_ascii(token) for token in tokens)
    assert all(sidecar.check_token_value(token) == token for token in tokens)
    for bad in ("short", "a-long-enough-token\n", "a long enough token", "a-long-enough-tökén", "a-long-enough\x7f"):
        with pytest.raises(ValueError):
            sidecar.check_token_value(bad)


def test_only_the_exact_visible_ascii_token_matches() -> None:
    assert token_matches(TOKEN, TOKEN)
    for presented in (TOKEN + " ", " " + TOKEN, TOKEN + "\t", TOKEN + "\n", TOKEN.replace("-", "\u2010"), None, ""):
        assert not token_matches(presented, TOKEN)


# (Whitespace around a header value is not part of it in HTTP: the server strips it, as any would.)
@pytest.mark.parametrize(
    "header", [TOKEN.replace("-", "\u2010"), TOKEN + "\x7f", TOKEN + "\x01x", "Bearer " + TOKEN, TOKEN[:-1], "x"]
)
def test_an_authorization_header_that_is_not_exactly_the_token_is_refused(server: SidecarServer, header: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.putrequest("GET", "/roles/reports-reader")
    connection.putheader("Authorization", header.encode("utf-8"))
    connection.endheaders()
    response = connection.getresponse()
    response.read()
    connection.close()
    assert response.status in (401, 403)


# --- the real command, as a service would run it ----------------------------------------------


def _serve(fake: FakeCredvend, aws_env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "CREDVEND_"))}
    env.update(aws_env)
    env["CREDVEND_ENDPOINT"] = fake.url
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "client"), str(REPO / "lambda_src")])
    command = [sys.executable, "-m", "credvend_client.cli", "serve", "--port", "0", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_serve_command_end_to_end_with_boto(fake: FakeCredvend, aws_env: dict[str, str], tmp_path: Path) -> None:
    token_file = tmp_path / "sidecar" / "token"
    token_file.parent.mkdir()
    process = _serve(fake, aws_env, "--role", "reports-reader", "--token-file", str(token_file))
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        assert ready["event"] == "ready" and ready["host"] == "127.0.0.1"
        assert ready["token_file"] == str(token_file) and "token" not in ready
        exports = [process.stdout.readline().strip() for _ in range(3)][1:]
        url = f"http://127.0.0.1:{ready['port']}/roles/reports-reader"
        assert exports == [
            f"export AWS_CONTAINER_CREDENTIALS_FULL_URI={url}",
            f"export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={token_file}",
        ]
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert not token_file.read_bytes().endswith(b"\n")

        environ = {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": url,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
            "AWS_CONFIG_FILE": aws_env["AWS_CONFIG_FILE"],
            "AWS_SHARED_CREDENTIALS_FILE": aws_env["AWS_SHARED_CREDENTIALS_FILE"],
        }
        for _ in range(20):  # fresh sessions: each one asks the sidecar
            with pytest.MonkeyPatch.context() as patch:
                for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
                    patch.delenv(name)
                for name, value in environ.items():
                    patch.setenv(name, value)
                credentials = botocore.session.Session().get_credentials()
            assert credentials.method == "container-role"
            assert credentials.access_key == fake.issued[0]["AccessKeyId"]
        assert fake.vends == 1
        # the sidecar signed upstream with its own (source) credentials, for the right region
        assert f"/{REGION}/execute-api/aws4_request" in fake.requests[0].headers["authorization"]
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert not token_file.exists()  # cleaned up on exit
    for issued in fake.issued:
        assert issued["SecretAccessKey"] not in stderr and issued["SessionToken"] not in stderr
    assert aws_env["AWS_SECRET_ACCESS_KEY"] not in stderr


def _read_ready(process: subprocess.Popen[str]) -> tuple[dict[str, Any], list[str]]:
    assert process.stdout is not None
    ready = json.loads(process.stdout.readline())
    return ready, [process.stdout.readline().strip() for _ in range(3)]


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    return out, err


def _status_with(port: int, token: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", "/roles/anything", headers={"Authorization": token})
    status = connection.getresponse().status
    connection.close()
    return status


def test_serve_writes_the_token_to_xdg_runtime_dir_and_never_prints_it(
    fake: FakeCredvend, aws_env: dict[str, str], tmp_path: Path
) -> None:
    runtime_dir = tmp_path / "run-user"
    runtime_dir.mkdir(mode=0o700)
    process = _serve(fake, aws_env | {"XDG_RUNTIME_DIR": str(runtime_dir)})
    try:
        ready, lines = _read_ready(process)
        token_file = runtime_dir / "credvend" / "token"
        assert ready["token_file"] == str(token_file)
        assert "token" not in ready
        assert lines[2] == f"export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={token_file}"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text()
        assert token == token.strip() and len(token) >= 40
        assert _status_with(ready["port"], token) == 200
    finally:
        out, err = _stop(process)
    assert token not in out + err + json.dumps(ready) + "".join(lines)
    assert not token_file.exists()  # removed on exit


def test_serve_without_xdg_runtime_dir_uses_a_private_temporary_folder(
    fake: FakeCredvend, aws_env: dict[str, str], tmp_path: Path
) -> None:
    process = _serve(fake, aws_env | {"TMPDIR": str(tmp_path)})
    try:
        ready, _ = _read_ready(process)
        token_file = Path(ready["token_file"])
        assert token_file.parent.parent == tmp_path
        assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert _status_with(ready["port"], token_file.read_text()) == 200
    finally:
        _stop(process)
    assert not token_file.parent.exists()  # the folder it created is gone too


def test_serve_prints_the_token_only_when_asked(fake: FakeCredvend, aws_env: dict[str, str], tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    process = _serve(fake, aws_env, "--token-file", str(token_file), "--print-token")
    try:
        ready, _ = _read_ready(process)
        assert ready["token"] == token_file.read_text()
        assert _status_with(ready["port"], ready["token"]) == 200
    finally:
        _, err = _stop(process)
    assert ready["token"] not in err


def test_serve_uses_the_token_from_the_environment(fake: FakeCredvend, aws_env: dict[str, str], tmp_path: Path) -> None:
    token = "fixed-Token_0123456789~!#"
    token_file = tmp_path / "token"
    process = _serve(fake, aws_env | {sidecar.TOKEN_ENV: token}, "--token-file", str(token_file))
    try:
        ready, _ = _read_ready(process)
        assert token_file.read_bytes() == token.encode()
        assert _status_with(ready["port"], token) == 200
    finally:
        _stop(process)


@pytest.mark.parametrize(
    "token",
    [
        "with a space in it 0123456789",
        "tab\tinside-0123456789",
        "ünïcödé-0123456789abc",
        "trailing-newline-0123\n",
        "short",
    ],
)
def test_serve_refuses_a_token_that_is_not_visible_ascii(
    aws_env: dict[str, str], endpoint: str, run_cli: Any, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    monkeypatch.setenv(sidecar.TOKEN_ENV, token)
    result = run_cli("serve", "--token-file", "/nonexistent/never-written")
    assert result.code == 2
    assert "InvalidToken" in result.err and token.strip() not in result.err


def test_serve_refuses_to_sign_with_itself(
    fake: FakeCredvend, aws_env: dict[str, str], run_cli: Any, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:49731/roles/reports-reader")
    result = run_cli("serve", "--port", "49731")
    assert result.code == 2
    assert "SelfReference" in result.err and len(result.err.splitlines()) == 1


def test_kept_alive_connections_are_answered_without_a_nagle_stall(server: SidecarServer) -> None:
    # Headers and body go out in two writes; with Nagle on, each answer after the first waits
    # for the client's delayed ACK (~40 ms). SDKs keep connections alive between fetches.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    samples = []
    for _ in range(21):
        started = time.perf_counter()
        connection.request("GET", "/roles/reports-reader", headers={"Authorization": TOKEN})
        response = connection.getresponse()
        response.read()
        samples.append(time.perf_counter() - started)
        assert response.status == 200
    connection.close()
    assert statistics.median(samples[1:]) < 0.02


def test_a_bug_in_the_fetch_path_is_a_500_not_a_dropped_connection() -> None:
    def broken(_role: str) -> Any:
        raise RuntimeError("boom")

    errors: list[str] = []
    broken_server = SidecarServer(0, cache=CredentialCache(broken), token=TOKEN, error_log=errors.append)
    broken_server.start_in_thread()
    try:
        status, _, body = get(broken_server, "/roles/reports-reader")
    finally:
        broken_server.shutdown()
        broken_server.server_close()
    assert (status, body["Error"]["Code"]) == (500, "InternalError")
    assert errors == ["internal error serving reports-reader: RuntimeError"]


BURST = 64


def test_a_burst_of_fresh_connections_is_answered_within_a_1_s_client_timeout(
    server: SidecarServer, fake: FakeCredvend
) -> None:
    # Workers that start together each open a new connection at once. With socketserver's
    # default backlog of 5, connections beyond it wait for a SYN retransmit (>= 1 s) and an SDK
    # with a 1 s timeout and no retry (the JS SDK's container provider) fails.
    assert server.request_queue_size >= BURST
    assert get(server, "/roles/reports-reader")[0] == 200  # warm: the burst measures the listener only
    start = threading.Barrier(BURST)
    outcomes: list[object] = [None] * BURST

    def fetch(index: int) -> None:
        try:
            start.wait(10)
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=1)
            connection.request("GET", "/roles/reports-reader", headers={"Authorization": TOKEN})
            response = connection.getresponse()
            response.read()
            connection.close()
            outcomes[index] = response.status
        except Exception as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=fetch, args=(index,)) for index in range(BURST)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes == [200] * BURST
    assert fake.vends == 1


def test_a_hung_upstream_refresh_does_not_delay_the_sdk(tmp_path: Path) -> None:
    """Through HTTP: when a refresh is due, the SDK's request is answered from cache while the
    upstream call is still blocked (it is released only after the answer arrived)."""
    from datetime import UTC, datetime

    from credvend_client.credentials import VendedCredentials

    now = [1_800_000_000.0]
    release = threading.Event()
    entered = threading.Event()
    calls: list[float] = []

    def upstream(_role: str) -> VendedCredentials:
        calls.append(now[0])
        if len(calls) > 1:
            entered.set()
            if not release.wait(30):
                raise AssertionError("never released")
        return VendedCredentials(
            f"ASIA{len(calls):016d}",
            f"secret-{len(calls)}",
            f"token-{len(calls)}",
            datetime.fromtimestamp(now[0] + 3600, UTC),
            "123456789012",
        )

    hung = SidecarServer(0, cache=CredentialCache(upstream, clock=lambda: now[0]), token=TOKEN)
    hung.start_in_thread()
    try:
        first = get(hung, "/roles/reports-reader")[2]
        now[0] += 3600 - 20 * 60  # refresh due; 20 minutes of valid credentials cached
        status, _, body = get(hung, "/roles/reports-reader")
        assert entered.wait(10)
        assert not release.is_set()
        assert (status, body["AccessKeyId"]) == (200, first["AccessKeyId"])
    finally:
        release.set()
        hung.shutdown()
        hung.server_close()
    assert len(calls) == 2
