"""API Gateway's IAM authorization, as AWS enforces it, before the function runs."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from botocore.credentials import Credentials

from credvend_local.identities import create_role_session
from credvend_local.sigv4 import signed_request

pytestmark = pytest.mark.e2e


def _vend_url(api_url: str) -> str:
    return f"{api_url}/credentials"


def _refused(response: requests.Response) -> str:
    """API Gateway's refusal, in the contract's error shape (its gateway responses, §12):
    401 Unauthenticated, API Gateway's message kept. Returns the message."""
    assert response.status_code == 401, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"Error", "RequestId"} and body["RequestId"]
    assert body["Error"]["Code"] == "Unauthenticated"
    return str(body["Error"]["Message"])


def test_unsigned_request_is_refused_by_the_gateway(api_url: str) -> None:
    response = signed_request("POST", _vend_url(api_url), None, body={"role": "reports-reader"})
    assert _refused(response) == "Missing Authentication Token"


def test_wrong_secret_is_refused_by_the_gateway(api_url: str, callers) -> None:
    forged = Credentials(callers.user.access_key, "not-the-secret-key")
    response = signed_request("POST", _vend_url(api_url), forged, body={"role": "reports-reader"})
    assert _refused(response).startswith("The request signature we calculated does not match")


def test_unknown_session_token_is_refused_by_the_gateway(api_url: str, callers) -> None:
    forged = Credentials(callers.task.access_key, callers.task.secret_key, "FwoGZXIvYXdzEJr-not-a-real-token")
    response = signed_request("POST", _vend_url(api_url), forged, body={"role": "reports-reader"})
    assert _refused(response).startswith("The security token included in the request is invalid")


def test_stale_signature_is_refused_by_the_gateway(api_url: str, callers, monkeypatch: pytest.MonkeyPatch) -> None:
    # Sign as if it were 20 minutes ago: AWS accepts 5 minutes of clock skew, no more.
    past = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=20)
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: past)
    response = signed_request("POST", _vend_url(api_url), callers.user, body={"role": "reports-reader"})
    assert "Signature expired" in _refused(response)


def test_expired_session_token_is_refused_by_the_gateway(api_url: str, endpoint: str) -> None:
    session = create_role_session(endpoint, "credvend-e2e-expiring", session_name="expiring")
    # While the session is valid the gateway lets it through, and the function refuses it
    # (not in the policy); once it has expired the gateway refuses it before the function.
    before = signed_request("POST", _vend_url(api_url), session, body={"role": "reports-reader"})
    assert before.json()["Error"]["Code"] == "AccessDenied"
    expired = requests.post(
        f"{endpoint}/_credvend/test/expire-session", json={"AccessKeyId": session.access_key}, timeout=10
    )
    assert expired.status_code == 204

    response = signed_request("POST", _vend_url(api_url), session, body={"role": "reports-reader"})
    assert _refused(response).startswith("The security token included in the request is expired")
