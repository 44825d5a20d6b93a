"""Per-caller revocation (CONTRACT §11) on the deployed stack, end to end.

Callers A (e2e-user) and B (e2e-task) hold sessions of the created role ReportsReader and use
them on S3. ``credvend revoke --caller e2e-user`` (the operator's credentials: LocalStack's
root) puts the Deny on the role; LocalStack's credvend plugin enforces explicit Denies in a
role's inline policies for its sessions on every service (revocation.py), so A's session is
refused, B's keeps working, and A's next vend works. A second ``cdk deploy`` of the same
stack that changes the role (its MaxSessionDuration and trust policy) keeps the revocation, as AWS
does (the plugin's cfn_role_update.py makes LocalStack update roles in place, as AWS does);
``--clear`` lifts it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from credvend_local import deploy as cdk_deploy
from credvend_local.identities import admin_client, client_with
from credvend_local.sigv4 import describe, signed_request
from tests.e2e.conftest import POLICY_FILE

pytestmark = pytest.mark.e2e
CREDVEND = str(Path(sys.executable).with_name("credvend"))
BUCKET = "credvend-e2e-revocation"
ROLE_NAME = "ReportsReader"
# The second deploy changes ReportsReader (its MaxSessionDuration, and with it the trust
# policy's sts:DurationSeconds cap) and nothing the other tests rely on: every grant of it is
# held to 3600 by role chaining. (Not a new caller: that changes the API's resource policy, and
# LocalStack 2026.3.0 fails such an update: "CreateStage ... Stage already exists".)
FIRST_MAX, SECOND_MAX = "max_session_duration: 14400", "max_session_duration: 18000"


def _vend(api_url: str, caller: Any) -> dict[str, str]:
    response = signed_request("POST", f"{api_url}/credentials", caller, body={"role": "reports-reader"})
    assert response.status_code == 200, describe(response)
    return dict(response.json()["Credentials"])


def _s3_works(endpoint: str, credentials: dict[str, str]) -> bool:
    try:
        client_with("s3", endpoint, credentials).list_objects_v2(Bucket=BUCKET)
    except ClientError as exc:
        error = exc.response["Error"]
        assert (error["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDenied", 403)
        assert "explicit deny" in error["Message"]
        return False
    return True


def _credvend(endpoint: str, *args: str) -> dict[str, Any]:
    """``credvend revoke ...`` as the stack's operator (LocalStack's account root)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CREDVEND_"))}
    env.update(cdk_deploy.admin_environment(endpoint))
    result = subprocess.run(
        [CREDVEND, "revoke", *args, "--policy", str(POLICY_FILE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def _revocation_policy(endpoint: str) -> dict[str, Any] | None:
    iam = admin_client("iam", endpoint)
    try:
        return dict(iam.get_role_policy(RoleName=ROLE_NAME, PolicyName="credvend-revocations")["PolicyDocument"])
    except iam.exceptions.NoSuchEntityException:
        return None


def _wait_past(moment: datetime) -> None:
    """Until the clock has passed ``moment`` (a new session must be issued after the
    revocation's time to be unaffected by it); a wait, not a timing assertion."""
    while datetime.now(UTC) <= moment:
        time.sleep(0.05)


def test_revoke_one_callers_sessions_keep_it_across_a_deploy_and_clear_it(
    api_url, endpoint, callers, deployment, tmp_path
) -> None:
    admin_client("s3", endpoint).create_bucket(Bucket=BUCKET)
    a_session = _vend(api_url, callers.user)
    b_session = _vend(api_url, callers.task)
    assert _s3_works(endpoint, a_session) and _s3_works(endpoint, b_session)

    redeployed = False
    try:
        revoked = _credvend(endpoint, "--caller", "e2e-user", "--role", "reports-reader")
        assert [r["RoleName"] for r in revoked["Revoked"]] == [ROLE_NAME]
        before = datetime.fromisoformat(revoked["Before"].replace("Z", "+00:00"))

        # A's session is refused on S3; B's, of the same role, still works
        assert not _s3_works(endpoint, a_session)
        assert _s3_works(endpoint, b_session)
        # as on AWS, GetCallerIdentity needs no permission: a denied session still answers it
        identity = client_with("sts", endpoint, a_session).get_caller_identity()
        assert identity["Arn"].endswith(f"assumed-role/{ROLE_NAME}/e2e-user")

        # A's next vend is a session issued after the revocation's time: it works
        _wait_past(before)
        a_again = _vend(api_url, callers.user)
        assert _s3_works(endpoint, a_again)

        # a second deploy of the same stack that changes the role keeps the revocation
        policy = tmp_path / "policy.yaml"
        original = POLICY_FILE.read_text()
        assert FIRST_MAX in original
        policy.write_text(original.replace(FIRST_MAX, SECOND_MAX, 1))
        redeployed = True
        cdk_deploy.deploy(endpoint, policy_file=policy, workdir=tmp_path / "cdk")
        role = admin_client("iam", endpoint).get_role(RoleName=ROLE_NAME)["Role"]
        # the deploy did change the role, or this would prove nothing
        assert role["MaxSessionDuration"] == 18000
        assert "18000" in json.dumps(role["AssumeRolePolicyDocument"])
        assert _revocation_policy(endpoint) is not None
        assert not _s3_works(endpoint, a_session)
        assert _s3_works(endpoint, b_session) and _s3_works(endpoint, a_again)

        listed = _credvend(endpoint, "--list")["Revocations"]
        assert [(r["RoleName"], r["Caller"], r["Before"]) for r in listed] == [
            (ROLE_NAME, "e2e-user", revoked["Before"])
        ]
    finally:
        cleared = _credvend(endpoint, "--clear", "--caller", "e2e-user", "--role", "reports-reader")
        if redeployed:  # leave the stack as the session deployed it, for the tests after this one
            cdk_deploy.deploy(endpoint, policy_file=POLICY_FILE, workdir=tmp_path / "cdk-restore")

    assert [c["RoleName"] for c in cleared["Cleared"]] == [ROLE_NAME]
    assert _revocation_policy(endpoint) is None
    assert _s3_works(endpoint, a_session)  # --clear lifts it


def test_an_external_roles_statement_is_printed_for_its_owner(endpoint, deployment) -> None:
    answer = _credvend(endpoint, "--caller", "e2e-user", "--role", "partner-writer")
    assert answer["Revoked"] == []
    [external] = answer["External"]
    assert external["RoleArn"] == "arn:aws:iam::210987654321:role/PartnerWriter"
    assert external["Statement"]["Condition"]["StringEquals"] == {"aws:SourceIdentity": "e2e-user"}
    partner_iam = admin_client("iam", endpoint, account="210987654321")
    with pytest.raises(partner_iam.exceptions.NoSuchEntityException):
        partner_iam.get_role_policy(RoleName="PartnerWriter", PolicyName="credvend-revocations")
