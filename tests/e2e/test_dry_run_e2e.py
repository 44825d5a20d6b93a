"""Dry run and the CloudTrail join (CONTRACT §11) through the deployed stack on LocalStack.

The STS journal (credvend_local/sts_journal.py) is what LocalStack's STS saw from the
function: a dry run must leave no AssumeRole in it, and a vend's decision line must carry
the RequestId STS answered that AssumeRole with.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from credvend_local.identities import admin_client
from credvend_local.sigv4 import describe, signed_request

pytestmark = pytest.mark.e2e
CREDVEND = str(Path(sys.executable).with_name("credvend"))
DECISION = "credential vend decision"


def _post(api_url: str, creds: Any, **body: Any) -> Any:
    return signed_request("POST", f"{api_url}/credentials", creds, body=body)


def _decision_line(endpoint: str, function_name: str, request_id: str) -> dict[str, Any]:
    """The function's decision line for ``request_id``, from its CloudWatch Logs group. Logs
    arrive after the answer; wait for them a bounded while (a wait, not a timing assertion)."""
    logs = admin_client("logs", endpoint)
    group = f"/aws/lambda/{function_name}"
    for _ in range(100):
        try:
            events = logs.filter_log_events(logGroupName=group, filterPattern=f'"{request_id}"')["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        for event in events:
            try:
                line = json.loads(event["message"])
            except ValueError:
                continue
            if isinstance(line, dict) and line.get("message") == DECISION and line.get("request_id") == request_id:
                return line
        time.sleep(0.2)
    raise AssertionError(f"no decision line for request {request_id} in {group}")


def test_dry_run_answers_the_real_grant_and_assumes_nothing(api_url, callers, sts_journal) -> None:
    with sts_journal.watch() as sent:
        post = _post(api_url, callers.user, role="reports-reader", duration_seconds=43200, dry_run=True)
        get = signed_request(
            "GET",
            f"{api_url}/credentials/reports-reader",
            callers.task,
            params={"duration_seconds": "43200", "dry_run": "true", "format": "container"},
        )
    assert post.status_code == 200, describe(post)
    assert get.status_code == 200, describe(get)
    assert sent == []  # not one AssumeRole from the function

    for response, caller, granted, limited_by in (
        (post, "e2e-user", 3600, ["role_chaining"]),
        (get, "e2e-task", 3600, ["role_chaining"]),
    ):
        body = response.json()
        assert set(body) == {"DryRun", "Grant", "RequestId"}
        assert body["DryRun"] is True
        assert response.headers["Content-Type"].startswith("application/json")
        assert (body["Grant"]["Caller"], body["Grant"]["GrantedDurationSeconds"], body["Grant"]["LimitedBy"]) == (
            caller,
            granted,
            limited_by,
        )

    with sts_journal.watch() as sent:
        real = _post(api_url, callers.user, role="reports-reader", duration_seconds=43200)
    assert real.status_code == 200, describe(real)
    assert real.json()["Grant"] == post.json()["Grant"]
    assert len(sent) == 1


@pytest.mark.parametrize(
    ("who", "body", "status", "code"),
    [
        ("stranger", {"role": "reports-reader", "dry_run": True}, 403, "AccessDenied"),
        ("audit", {"role": "reports-reader", "dry_run": True}, 403, "AccessDenied"),
        ("user", {"role": "reports-reader", "dry_run": "yes"}, 400, "InvalidRequest"),
        ("user", {"role": "reports-reader", "dry_run": True, "duration_seconds": 0}, 400, "InvalidDuration"),
    ],
)
def test_dry_run_has_the_same_errors(api_url, callers, sts_journal, who, body, status, code) -> None:
    with sts_journal.watch() as sent:
        response = _post(api_url, getattr(callers, who), **body)
    assert (response.status_code, response.json()["Error"]["Code"]) == (status, code), describe(response)
    assert sent == []


def test_credvend_get_dry_run(api_url, endpoint, callers, sts_journal, tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CREDVEND_"))}
    env.update(
        CREDVEND_ENDPOINT=api_url,
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID=callers.user.access_key,
        AWS_SECRET_ACCESS_KEY=callers.user.secret_key,
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
    )
    with sts_journal.watch() as sent:
        result = subprocess.run(
            [CREDVEND, "get", "partner-writer", "--dry-run", "--duration", "7200"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["DryRun"] is True and "Credentials" not in answer
    assert answer["Grant"]["RoleArn"] == "arn:aws:iam::210987654321:role/PartnerWriter"
    assert answer["Grant"]["GrantedDurationSeconds"] == 3600
    assert sent == []


def test_decision_line_carries_the_request_id_sts_answered_with(
    api_url, endpoint, callers, sts_journal, deployment
) -> None:
    with sts_journal.watch() as sent:
        response = _post(api_url, callers.task, role="reports-reader", duration_seconds=900)
    assert response.status_code == 200, describe(response)
    [assumed] = sent
    assert assumed["outcome"] == "allowed" and assumed["request_id"]

    line = _decision_line(endpoint, deployment.outputs["FunctionName"], response.json()["RequestId"])
    assert line["outcome"] == "vended"
    assert line["sts_request_id"] == assumed["request_id"]
    assert line["source_identity"] == "e2e-task"


def test_dry_run_decision_line_says_dry_run(api_url, endpoint, callers, deployment) -> None:
    response = _post(api_url, callers.task, role="reports-reader", dry_run=True)
    assert response.status_code == 200, describe(response)
    line = _decision_line(endpoint, deployment.outputs["FunctionName"], response.json()["RequestId"])
    assert line["outcome"] == "dry_run"
    assert line["sts_attempts"] == 0
    assert "sts_request_id" not in line


def test_a_web_identity_dry_run_signs_and_assumes_nothing(api_url, callers, sts_journal) -> None:
    mark = sts_journal.mark()
    response = _post(api_url, callers.user, role="batch-writer", duration_seconds=43200, dry_run=True)
    assert response.status_code == 200, describe(response)
    grant = response.json()["Grant"]
    assert (grant["Issuance"], grant["GrantedDurationSeconds"], grant["LimitedBy"]) == ("web_identity", 43200, [])
    assert "Credentials" not in response.json()
    # nothing reached STS from anyone: no AssumeRoleWithWebIdentity (so no token was signed for one)
    assert sts_journal.entries(after=mark) == []


def test_a_web_identity_vend_carries_the_request_id_sts_answered_with(
    api_url, endpoint, callers, sts_journal, deployment
) -> None:
    mark = sts_journal.mark()
    response = _post(api_url, callers.user, role="batch-writer", duration_seconds=7200)
    assert response.status_code == 200, describe(response)
    [issued] = [e for e in sts_journal.entries(after=mark) if e.get("operation") == "AssumeRoleWithWebIdentity"]
    assert issued["outcome"] == "allowed" and issued["request_id"]
    line = _decision_line(endpoint, deployment.outputs["FunctionName"], response.json()["RequestId"])
    assert line["issuance"] == "web_identity"
    assert line["sts_request_id"] == issued["request_id"]
