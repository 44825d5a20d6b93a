"""Vending through the deployed API: callers, the clamp, the policy, and credentials that work."""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from credvend_local.identities import client_with
from credvend_local.sigv4 import describe, signed_request

pytestmark = pytest.mark.e2e
TWELVE_HOURS = 43200
SECRET_FIELDS = ("SecretAccessKey", "SessionToken", "Token")


def _vend(api_url: str, creds, **body):
    return signed_request("POST", f"{api_url}/credentials", creds, body=body)


def _expires_in(expiration: str) -> float:
    return (dt.datetime.fromisoformat(expiration.replace("Z", "+00:00")) - dt.datetime.now(dt.UTC)).total_seconds()


def test_twelve_hours_from_an_iam_user_is_clamped_to_one_hour_by_role_chaining(api_url, callers, endpoint) -> None:
    response = _vend(api_url, callers.user, role="reports-reader", duration_seconds=TWELVE_HOURS)

    assert response.status_code == 200, describe(response)
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    grant = body["Grant"]
    assert grant["Caller"] == "e2e-user"
    assert grant["Role"] == "reports-reader"
    assert grant["RoleArn"] == "arn:aws:iam::000000000000:role/ReportsReader"
    assert grant["RequestedDurationSeconds"] == TWELVE_HOURS
    assert grant["GrantedDurationSeconds"] == 3600
    assert grant["LimitedBy"] == ["role_chaining"]
    assert grant["RoleSessionName"] == "e2e-user"
    assert grant["SourceIdentity"] == "e2e-user"
    assert 3500 < _expires_in(body["Credentials"]["Expiration"]) <= 3600 + 60

    identity = client_with("sts", endpoint, body["Credentials"]).get_caller_identity()
    assert identity["Arn"] == "arn:aws:sts::000000000000:assumed-role/ReportsReader/e2e-user"
    assert body["AssumedRoleUser"]["Arn"] == identity["Arn"]


def test_a_role_session_caller_is_matched_by_its_role_and_capped_by_its_grant(api_url, callers) -> None:
    response = signed_request(
        "GET", f"{api_url}/credentials/reports-reader", callers.task, params={"duration_seconds": "1800"}
    )
    assert response.status_code == 200, describe(response)
    grant = response.json()["Grant"]
    assert grant["Caller"] == "e2e-task"
    assert grant["GrantedDurationSeconds"] == 1800
    assert grant["LimitedBy"] == []


def test_default_duration_applies_when_none_is_asked(api_url, callers) -> None:
    grant = _vend(api_url, callers.task, role="reports-reader").json()["Grant"]
    assert grant["RequestedDurationSeconds"] == 3600
    assert grant["GrantedDurationSeconds"] == 3600


def test_short_requests_are_raised_to_the_sts_minimum(api_url, callers) -> None:
    response = _vend(api_url, callers.audit, role="audit-reader", duration_seconds=60)
    assert response.status_code == 200, describe(response)
    grant = response.json()["Grant"]
    assert grant["GrantedDurationSeconds"] == 900
    assert grant["LimitedBy"] == ["sts_minimum"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("{not json", 400, "InvalidRequest"),
        ('["reports-reader"]', 400, "InvalidRequest"),
        ('{"role": "reports-reader", "extra": 1}', 400, "InvalidRequest"),
        ('{"role": 7}', 400, "InvalidRequest"),
        ('{"role": "reports-reader", "format": "yaml"}', 400, "InvalidRequest"),
        ('{"role": "reports-reader", "duration_seconds": 0}', 400, "InvalidDuration"),
        ('{"role": "reports-reader", "duration_seconds": 43201}', 400, "InvalidDuration"),
        ('{"role": "reports-reader", "duration_seconds": "3600"}', 400, "InvalidDuration"),
        ('{"role": "reports-reader", "duration_seconds": 1.5}', 400, "InvalidDuration"),
        (json.dumps({"role": "reports-reader", "pad": "x" * 9000}), 413, "PayloadTooLarge"),
    ],
)
def test_bad_requests_get_the_contract_codes_and_nothing_is_issued(
    api_url, callers, sts_journal, body, status, code
) -> None:
    with sts_journal.watch() as sent_to_sts:
        response = signed_request("POST", f"{api_url}/credentials", callers.user, body=body)
    assert response.status_code == status, describe(response)
    payload = response.json()
    assert payload["Error"]["Code"] == code
    assert payload["RequestId"]
    assert "Credentials" not in payload
    assert sent_to_sts == []  # the function asked STS for nothing


@pytest.mark.parametrize(
    ("who", "role"),
    [
        ("stranger", "reports-reader"),  # not in the policy at all
        ("audit", "reports-reader"),  # a known caller, a role not granted to it
        ("user", "no-such-role"),  # an unknown alias: same answer, no enumeration
    ],
)
def test_refusals_are_one_access_denied_and_nothing_is_issued(api_url, callers, sts_journal, who, role) -> None:
    with sts_journal.watch() as sent_to_sts:
        response = _vend(api_url, getattr(callers, who), role=role, duration_seconds=900)
    assert response.status_code == 403, describe(response)
    assert response.json()["Error"]["Code"] == "AccessDenied"
    assert "Credentials" not in response.json()
    assert sent_to_sts == []  # the function asked STS for nothing


def test_secrets_are_only_in_credential_responses(api_url, callers) -> None:
    denied = _vend(api_url, callers.stranger, role="reports-reader").text
    assert not any(field in denied for field in SECRET_FIELDS)


def test_fifty_parallel_vends_all_succeed_with_distinct_working_credentials(api_url, callers, endpoint) -> None:
    def vend_once(_: int) -> dict:
        response = _vend(api_url, callers.user, role="reports-reader", duration_seconds=900)
        assert response.status_code == 200, describe(response)
        return response.json()["Credentials"]

    with ThreadPoolExecutor(max_workers=50) as pool:
        issued = list(pool.map(vend_once, range(50)))

    # Counted first, so a failure shows numbers, never the tokens themselves.
    distinct_key_ids = len({creds["AccessKeyId"] for creds in issued})
    distinct_tokens = len({creds["SessionToken"] for creds in issued})
    assert (distinct_key_ids, distinct_tokens) == (50, 50)
    with ThreadPoolExecutor(max_workers=10) as pool:
        arns = set(pool.map(lambda c: client_with("sts", endpoint, c).get_caller_identity()["Arn"], issued))
    assert arns == {"arn:aws:sts::000000000000:assumed-role/ReportsReader/e2e-user"}
