"""STS misbehaving, end to end: throttling and slowness injected into LocalStack's STS.

The faults come from the plugin's control endpoint (credvend_local/plugin/credvend_localstack/
sts_faults.py); what credvend does about them is checked at the API, through `credvend get`
and `credvend serve`, and against the STS journal: every credential a caller received was
issued by exactly one allowed AssumeRole, and a refused vend got none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.credentials import Credentials

from credvend_local.sigv4 import describe, signed_request
from credvend_local.sts_journal import StsJournal

pytestmark = pytest.mark.e2e
CREDVEND = str(Path(sys.executable).with_name("credvend"))
FAULTS_PATH = "/_credvend/sts/faults"
# The function's STS client: 2 attempts, 2 s read timeout each (lambda_src/credvend/adapters/sts.py).
# A delay longer than one read timeout makes both attempts time out: STS "slower than the deadline".
SLOW_STS_SECONDS = 5


class Faults:
    def __init__(self, endpoint: str) -> None:
        self.url = f"{endpoint}{FAULTS_PATH}"

    def arm(self, **settings: Any) -> dict[str, Any]:
        response = requests.post(self.url, json=settings, timeout=10)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def state(self) -> dict[str, Any]:
        return dict(requests.get(self.url, timeout=10).json())

    def clear(self) -> None:
        requests.delete(self.url, timeout=10).raise_for_status()

    def wait_for_delayed_calls(self) -> None:
        """Delayed calls still run after the client gave up; let them finish (and be journaled)."""
        for _ in range(300):
            if self.state()["in_delay"] == 0:
                return
            time.sleep(0.1)
        raise AssertionError("delayed STS calls never finished")


@pytest.fixture
def faults(endpoint: str, deployment) -> Iterator[Faults]:
    faults = Faults(endpoint)
    faults.clear()
    yield faults
    faults.wait_for_delayed_calls()
    faults.clear()


def _get(api_url: str, creds: Credentials) -> requests.Response:
    return signed_request("GET", f"{api_url}/credentials/reports-reader", creds, timeout=60)


def _key_id(credentials: dict[str, Any]) -> str:
    """The key id alone: an assertion that failed on ``credentials[...]`` would print the secrets."""
    return str(credentials["AccessKeyId"])


def _allowed(sts_journal: StsJournal, mark: int) -> list[dict[str, Any]]:
    return [entry for entry in sts_journal.function_calls(after=mark) if entry["outcome"] == "allowed"]


def _env(api_url: str, endpoint: str, creds: Credentials, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CREDVEND_"))}
    env.update(
        CREDVEND_ENDPOINT=api_url,
        AWS_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
        AWS_CONFIG_FILE=str(home / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "none"),
        AWS_ACCESS_KEY_ID=creds.access_key,
        AWS_SECRET_ACCESS_KEY=creds.secret_key,
    )
    if creds.token:
        env["AWS_SESSION_TOKEN"] = creds.token
    return env


def _credvend_get(api_url: str, endpoint: str, creds: Credentials, home: Path) -> dict[str, Any]:
    result = subprocess.run(
        [CREDVEND, "get", "reports-reader"],
        env=_env(api_url, endpoint, creds, home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_a_throttling_burst_reaches_every_caller_as_429_with_retry_after(api_url, callers, faults, sts_journal) -> None:
    # Three vends at once, and STS throttles the next six AssumeRoles: the function's own
    # retry (2 attempts) cannot absorb it, so each of the three answers 429.
    mark = sts_journal.mark()
    faults.arm(throttle_next=6)
    with ThreadPoolExecutor(3) as pool:
        responses = list(pool.map(lambda creds: _get(api_url, creds), [callers.user, callers.task, callers.user]))

    for response in responses:
        assert response.status_code == 429, describe(response)
        assert response.json()["Error"]["Code"] == "Throttled"
        assert int(response.headers["Retry-After"]) >= 1
        assert "Credentials" not in set(response.json())  # key names only, if it ever fails
    assert faults.state()["throttled"] == 6
    assert _allowed(sts_journal, mark) == []  # refused vends: nothing issued

    # STS recovered: the next vend succeeds, issued by exactly one AssumeRole.
    mark = sts_journal.mark()
    ok = _get(api_url, callers.user)
    assert ok.status_code == 200, describe(ok)
    key = _key_id(ok.json()["Credentials"])
    assert [e["access_key_id"] for e in _allowed(sts_journal, mark)] == [key]


def test_credvend_get_retries_throttling_to_success(api_url, endpoint, callers, faults, sts_journal, tmp_path) -> None:
    mark = sts_journal.mark()
    faults.arm(throttle_next=4)  # two API answers of 429 (2 STS attempts each), then STS answers

    vended = _credvend_get(api_url, endpoint, callers.user, tmp_path)

    assert faults.state()["throttled"] == 4
    issued = [e["access_key_id"] for e in _allowed(sts_journal, mark)]
    key = _key_id(vended["Credentials"])
    assert issued == [key]  # one vend, one AssumeRole: nothing twice


def test_credvend_serve_retries_throttling_to_success(api_url, endpoint, callers, faults, sts_journal, tmp_path):
    token_file = tmp_path / "token"
    proc = subprocess.Popen(
        [CREDVEND, "serve", "--port", "0", "--role", "reports-reader", "--token-file", str(token_file)],
        env=_env(api_url, endpoint, callers.task, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = json.loads(proc.stdout.readline() or "{}") if proc.stdout else {}
        assert ready.get("event") == "ready", ready
        mark = sts_journal.mark()
        faults.arm(throttle_next=4)  # serve tries 3 times: 429, 429, then credentials

        loopback = requests.Session()
        loopback.trust_env = False  # no proxy for a loopback sidecar
        response = loopback.get(
            f"{ready['url']}reports-reader", headers={"Authorization": token_file.read_text()}, timeout=60
        )
        assert response.status_code == 200, response.status_code
        served = response.json()
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    assert faults.state()["throttled"] == 4
    key = _key_id(served)
    assert [e["access_key_id"] for e in _allowed(sts_journal, mark)] == [key]


def test_sts_slower_than_the_deadline_is_a_503_not_a_lambda_timeout(api_url, callers, faults, sts_journal) -> None:
    mark = sts_journal.mark()
    faults.arm(delay_seconds=SLOW_STS_SECONDS, count=2)

    response = _get(api_url, callers.task)

    # The function's own JSON answer: a Lambda timeout would be the gateway's 502/504 instead.
    assert response.status_code == 503, describe(response)
    assert response.json()["Error"]["Code"] == "UpstreamUnavailable"
    assert "Credentials" not in set(response.json())  # key names only, if it ever fails
    assert faults.state()["delayed"] == 2
    # STS still finishes the two calls the function gave up on; nobody holds what they issued.
    faults.wait_for_delayed_calls()
    abandoned = _allowed(sts_journal, mark)
    assert len(abandoned) == 2  # one per attempt the function gave up on, none returned to anyone

    # STS is fast again: a retry succeeds, with credentials from exactly one new AssumeRole.
    mark = sts_journal.mark()
    ok = _get(api_url, callers.task)
    assert ok.status_code == 200, describe(ok)
    issued = [e["access_key_id"] for e in _allowed(sts_journal, mark)]
    key = _key_id(ok.json()["Credentials"])
    assert issued == [key]
    assert issued[0] not in {e["access_key_id"] for e in abandoned}


def test_credvend_get_retries_a_slow_sts_to_success(api_url, endpoint, callers, faults, sts_journal, tmp_path) -> None:
    mark = sts_journal.mark()
    faults.arm(delay_seconds=SLOW_STS_SECONDS, count=2)  # the first API attempt: 503

    vended = _credvend_get(api_url, endpoint, callers.user, tmp_path)

    assert faults.state()["delayed"] == 2
    faults.wait_for_delayed_calls()
    key = _key_id(vended["Credentials"])
    issued = [e["access_key_id"] for e in _allowed(sts_journal, mark)]
    assert issued.count(key) == 1  # what the caller holds was issued once
    assert len(issued) == 3  # and the two calls the function abandoned, nothing more


def test_the_fault_control_refuses_malformed_settings(endpoint, faults) -> None:
    for body in ({}, {"throttle_next": -1}, {"throttle_next": True}, {"delay_seconds": 0, "count": 1}, {"x": 1}):
        response = requests.post(faults.url, json=body, timeout=10)
        assert response.status_code == 400, body
    assert faults.state()["throttle_next"] == 0
