"""STS's rules, reproduced through the deployed stack, and credvend against them.

The test LocalStack enforces what AWS's STS does (credvend_local/plugin: trust policies,
MaxSessionDuration, the 1-hour role-chaining cap). Here, against the real deployment:

1. the rules themselves — the classic hand-written failures, and the stack's own trust
   policies refusing principals and source identities the policy file does not grant;
2. credvend against them — the 12-hour request succeeds, clamped, and the STS journal shows
   that no AssumeRole the function sends is ever refused for its duration;
3. every created role admits the function for exactly the callers the policy grants;
4. the role in "another account" (partner-writer): its owner applies the stack's
   TrustPolicies output, and then it vends, with its ExternalId enforced.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from credvend_local.identities import ACCOUNT, admin_client, client_with
from credvend_local.sigv4 import describe, signed_request
from credvend_local.sts_journal import StsJournal
from credvend_policy import load_policy, source_identity_for

pytestmark = pytest.mark.e2e

POLICY = load_policy(Path(__file__).with_name("policy.e2e.yaml"))
PARTNER_ACCOUNT = "210987654321"
PARTNER_ROLE_ARN = f"arn:aws:iam::{PARTNER_ACCOUNT}:role/PartnerWriter"
TWELVE_HOURS = 43200
# AWS's own words (FACTS.md): what a hand-written 12-hour call gets back
CHAINING = "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
MAX_SESSION = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
# a source identity no caller of the policy has
STRANGER = "e2e-stranger"
PROBE_SID = "CredvendE2eProbe"


# ------------------------------------------------------------------------------- helpers


def _created_role_arn(alias: str) -> str:
    return POLICY.roles[alias].arn_in(alias=alias, partition="aws", account=ACCOUNT)


# Created roles the function assumes with AssumeRole; web_identity roles trust the issuer
# instead (tests/e2e/test_web_identity_e2e.py).
CREATED_ALIASES = [
    alias for alias, spec in POLICY.roles.items() if spec.create and POLICY.issuance_of(alias) == "assume_role"
]


def _refusal(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call()
    error = raised.value.response
    return {
        "code": error["Error"]["Code"],
        "message": error["Error"]["Message"],
        "status": error["ResponseMetadata"]["HTTPStatusCode"],
    }


def _denied(caller_arn: str, role_arn: str, action: str = "sts:AssumeRole") -> dict[str, Any]:
    return {
        "code": "AccessDenied",
        "message": f"User: {caller_arn} is not authorized to perform: {action} on resource: {role_arn}",
        "status": 403,
    }


def _vend(api_url: str, creds: Credentials, **body: Any) -> Any:
    return signed_request("POST", f"{api_url}/credentials", creds, body=body)


def _trust_root(principal: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}],
        }
    )


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture
def handwritten_role(endpoint: str) -> Iterator[Callable[..., str]]:
    """Roles as someone would write them by hand, outside credvend's stack."""
    iam = admin_client("iam", endpoint)
    created: list[str] = []

    def make(name: str, *, trusts: str, max_session: int) -> str:
        with contextlib.suppress(iam.exceptions.NoSuchEntityException):  # left by an interrupted run
            iam.delete_role(RoleName=name)
        created.append(name)
        return str(
            iam.create_role(
                RoleName=name, AssumeRolePolicyDocument=_trust_root(trusts), MaxSessionDuration=max_session
            )["Role"]["Arn"]
        )

    yield make
    for name in created:
        iam.delete_role(RoleName=name)


@pytest.fixture(scope="module")
def function_role_session(endpoint: str, deployment: Any, sts_journal: StsJournal) -> Iterator[Credentials]:
    """A session of the vending function's execution role, held by the test.

    Why: every target role trusts only that role, and its own trust policy admits only
    lambda.amazonaws.com, so no test identity can otherwise be the principal whose
    conditions the stack's trust policies express. The test, as the account's admin, adds
    one statement to the *execution role's* trust (never a target role's) letting the
    account root assume it, takes a session, and restores the trust at the end. The target
    roles' trust policies stay exactly as deployed, and the session's ARN is what the
    Lambda's is: assumed-role/<FunctionRole>/<session>. A trust policy names the role, not
    the session, so only the session name differs (used to tell these calls apart in the
    STS journal). The session is itself role chaining, as the Lambda's are.
    """
    iam = admin_client("iam", endpoint)
    role_arn = deployment.outputs["FunctionRoleArn"]
    role_name = role_arn.rsplit("/", 1)[-1]
    deployed = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    # a run killed before its teardown (on a reused LocalStack) may have left the statement
    original = {**deployed, "Statement": [s for s in deployed["Statement"] if s.get("Sid") != PROBE_SID]}
    extended = {
        **original,
        "Statement": [
            *original["Statement"],
            {
                "Sid": PROBE_SID,
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            },
        ],
    }
    iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(extended))
    try:
        creds = admin_client("sts", endpoint).assume_role(
            RoleArn=role_arn, RoleSessionName=sts_journal.probe_session_name
        )["Credentials"]
        yield Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    finally:
        iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(original))


@pytest.fixture(scope="module")
def partner_role(endpoint: str, deployment: Any) -> Iterator[str]:
    """The partner account's owner creates PartnerWriter with the trust policy credvend's
    stack outputs for it — exactly what the README tells a role owner to do."""
    iam = admin_client("iam", endpoint, account=PARTNER_ACCOUNT)
    trust = json.dumps(json.loads(deployment.outputs["TrustPolicies"])["partner-writer"])
    name = PARTNER_ROLE_ARN.rsplit("/", 1)[-1]
    with contextlib.suppress(iam.exceptions.NoSuchEntityException):  # left by an interrupted run
        iam.delete_role(RoleName=name)
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust, MaxSessionDuration=3600)["Role"]["Arn"]
    assert arn == PARTNER_ROLE_ARN
    yield arn
    iam.delete_role(RoleName=name)


@pytest.fixture(scope="module")
def module_mark(sts_journal: StsJournal) -> int:
    """Where the STS journal stood before this module's first test."""
    return sts_journal.mark()


@pytest.fixture(autouse=True)
def _take_module_mark(module_mark: int) -> None:
    """Instantiated with the first test, so the last test sees the whole module's calls."""


# ------------------------------------------------------------------ 1. the rules themselves


def test_twelve_hours_direct_from_a_role_session_fails_as_role_chaining(endpoint, callers, handwritten_role) -> None:
    # The classic failure: a role that allows 12 hours, trusted by the whole account, and
    # a caller holding a role session (an ECS task, a Lambda) asking it for 12 hours.
    target = handwritten_role(
        "credvend-e2e-handwritten-target", trusts=f"arn:aws:iam::{ACCOUNT}:root", max_session=43200
    )
    as_task = client_with("sts", endpoint, callers.task)

    error = _refusal(
        lambda: as_task.assume_role(RoleArn=target, RoleSessionName="direct", DurationSeconds=TWELVE_HOURS)
    )

    assert error == {"code": "ValidationError", "message": CHAINING, "status": 400}
    # it is the chaining, not the role: long-term credentials get the full 12 hours...
    root = admin_client("sts", endpoint).assume_role(
        RoleArn=target, RoleSessionName="root", DurationSeconds=TWELVE_HOURS
    )
    assert root["Credentials"]
    # ...and the same role session gets one hour
    assert as_task.assume_role(RoleArn=target, RoleSessionName="direct", DurationSeconds=3600)["Credentials"]


def test_over_a_roles_max_session_duration_fails_from_user_keys(endpoint, callers, handwritten_role) -> None:
    user_arn = client_with("sts", endpoint, callers.user).get_caller_identity()["Arn"]
    target = handwritten_role("credvend-e2e-handwritten-2h", trusts=user_arn, max_session=7200)
    as_user = client_with("sts", endpoint, callers.user)

    error = _refusal(lambda: as_user.assume_role(RoleArn=target, RoleSessionName="over", DurationSeconds=7201))

    assert error == {"code": "ValidationError", "message": MAX_SESSION, "status": 400}
    # user keys are not a role session: two hours (over the chaining cap) is fine
    assert as_user.assume_role(RoleArn=target, RoleSessionName="within", DurationSeconds=7200)["Credentials"]


@pytest.mark.parametrize("alias", CREATED_ALIASES)
@pytest.mark.parametrize("who", ["user", "task", "audit", "stranger", "root"])
def test_principals_the_stacks_trust_policy_does_not_name_are_denied(endpoint, callers, who, alias) -> None:
    # Even callers granted the role in the policy file, with a source identity the trust
    # condition accepts: only the vending function's role may assume it.
    creds = None if who == "root" else getattr(callers, who)
    sts = admin_client("sts", endpoint) if creds is None else client_with("sts", endpoint, creds)
    caller_arn = sts.get_caller_identity()["Arn"]
    role_arn = _created_role_arn(alias)
    granted = POLICY.callers_granted(alias)[0]

    error = _refusal(
        lambda: sts.assume_role(RoleArn=role_arn, RoleSessionName="direct", SourceIdentity=source_identity_for(granted))
    )

    assert error == _denied(caller_arn, role_arn)


def test_a_source_identity_not_granted_the_role_is_denied_by_the_stacks_trust_condition(
    endpoint, function_role_session
) -> None:
    # The right principal (the function's role), the wrong caller: audit-bot exists in the
    # policy file but is not granted reports-reader.
    as_function = client_with("sts", endpoint, function_role_session)
    session_arn = as_function.get_caller_identity()["Arn"]
    role_arn = _created_role_arn("reports-reader")

    error = _refusal(
        lambda: as_function.assume_role(
            RoleArn=role_arn, RoleSessionName="audit-bot", SourceIdentity="audit-bot", DurationSeconds=900
        )
    )

    assert error == _denied(session_arn, role_arn)
    granted = as_function.assume_role(
        RoleArn=role_arn, RoleSessionName="e2e-task", SourceIdentity="e2e-task", DurationSeconds=900
    )
    assert granted["SourceIdentity"] == "e2e-task"


# ---------------------------------------------------------------- 2. credvend against them


def test_twelve_hours_through_credvend_is_granted_clamped_and_sts_never_refuses_it(
    api_url, callers, sts_journal
) -> None:
    # The same caller whose direct 12-hour call fails above.
    with sts_journal.watch() as sent:
        response = _vend(api_url, callers.task, role="reports-reader", duration_seconds=TWELVE_HOURS)

    assert response.status_code == 200, describe(response)
    grant = response.json()["Grant"]
    assert (grant["Caller"], grant["RequestedDurationSeconds"]) == ("e2e-task", TWELVE_HOURS)
    assert grant["GrantedDurationSeconds"] == 3600
    assert grant["LimitedBy"] == ["role_chaining"]
    # what credvend asked STS for: one call, already within the one-hour cap, allowed
    assert [(e["role_arn"], e["duration_seconds"], e["source_identity"], e["outcome"]) for e in sent] == [
        (_created_role_arn("reports-reader"), 3600, "e2e-task", "allowed")
    ]


VENDS = [
    (who, alias, duration)
    for who, alias in [("user", "reports-reader"), ("task", "reports-reader"), ("audit", "audit-reader")]
    for duration in (None, 60, 900, 1800, 3599, 3600, 3601, 7200, 14400, 14401, 43200)
]


def test_no_assume_role_the_function_sends_is_refused_for_its_duration(api_url, callers, sts_journal) -> None:
    grants = []
    with sts_journal.watch() as sent:
        for who, alias, duration in VENDS:
            body: dict[str, Any] = {"role": alias}
            if duration is not None:
                body["duration_seconds"] = duration
            response = _vend(api_url, getattr(callers, who), **body)
            assert response.status_code == 200, (who, alias, duration, describe(response))
            grants.append(response.json()["Grant"])

    assert len(sent) == len(VENDS)  # one AssumeRole per vend: no refusal, so no retry
    assert all(e["outcome"] == "allowed" and e["error_code"] is None for e in sent), sent
    assert all(e["duration_seconds"] is not None and 900 <= e["duration_seconds"] <= 3600 for e in sent), sent
    # and STS gave exactly what the API says was granted, to the caller it names
    assert [(e["role_arn"], e["duration_seconds"], e["source_identity"]) for e in sent] == [
        (g["RoleArn"], g["GrantedDurationSeconds"], g["SourceIdentity"]) for g in grants
    ]


# ------------------------------------------- 3. every created role x every source identity


MATRIX = [
    (alias, caller, caller in POLICY.callers_granted(alias))
    for alias in CREATED_ALIASES
    for caller in [*POLICY.callers, STRANGER]
]


@pytest.mark.parametrize(("alias", "caller", "granted"), MATRIX)
def test_created_roles_admit_the_function_for_exactly_the_granted_callers(
    endpoint, function_role_session, alias, caller, granted
) -> None:
    as_function = client_with("sts", endpoint, function_role_session)
    role_arn = _created_role_arn(alias)
    source_identity = source_identity_for(caller)

    # what the function sends: source identity, session tags, a duration within the cap
    def assume() -> Any:
        return as_function.assume_role(
            RoleArn=role_arn,
            RoleSessionName=source_identity,
            SourceIdentity=source_identity,
            DurationSeconds=900,
            Tags=[{"Key": "credvend:caller", "Value": caller}],
        )

    if granted:
        assert assume()["SourceIdentity"] == source_identity
    else:
        assert _refusal(assume) == _denied(as_function.get_caller_identity()["Arn"], role_arn)


@pytest.mark.parametrize("alias", CREATED_ALIASES)
def test_created_roles_refuse_the_function_without_a_source_identity_or_with_a_near_miss(
    endpoint, function_role_session, alias
) -> None:
    as_function = client_with("sts", endpoint, function_role_session)
    session_arn = as_function.get_caller_identity()["Arn"]
    role_arn = _created_role_arn(alias)
    granted = source_identity_for(POLICY.callers_granted(alias)[0])

    # StringEquals on an absent key is false: no source identity, no session
    assert _refusal(lambda: as_function.assume_role(RoleArn=role_arn, RoleSessionName="anon")) == _denied(
        session_arn, role_arn
    )
    # StringEquals is case-sensitive
    near_miss = granted.upper()
    assert _refusal(
        lambda: as_function.assume_role(RoleArn=role_arn, RoleSessionName="near", SourceIdentity=near_miss)
    ) == _denied(session_arn, role_arn)


# ------------------------------------------------------- 4. the role in another account


def test_partner_writer_vends_credentials_of_the_partner_account(
    api_url, endpoint, callers, partner_role, sts_journal
) -> None:
    with sts_journal.watch() as sent:
        response = _vend(api_url, callers.user, role="partner-writer", duration_seconds=TWELVE_HOURS)

    assert response.status_code == 200, describe(response)
    body = response.json()
    grant = body["Grant"]
    assert (grant["Caller"], grant["RoleArn"], grant["GrantedDurationSeconds"]) == ("e2e-user", partner_role, 3600)
    assert grant["LimitedBy"] == ["caller_grant", "role_max_session_duration", "role_chaining"]
    identity = client_with("sts", endpoint, body["Credentials"]).get_caller_identity()
    assert identity["Account"] == PARTNER_ACCOUNT
    assert identity["Arn"] == f"arn:aws:sts::{PARTNER_ACCOUNT}:assumed-role/PartnerWriter/e2e-user"
    assert [(e["role_arn"], e["duration_seconds"], e["source_identity"], e["outcome"]) for e in sent] == [
        (partner_role, 3600, "e2e-user", "allowed")
    ]


def test_partner_writer_is_refused_to_a_caller_not_granted_it(api_url, callers, partner_role, sts_journal) -> None:
    with sts_journal.watch() as sent:
        response = _vend(api_url, callers.task, role="partner-writer")

    assert response.status_code == 403, describe(response)
    assert response.json()["Error"]["Code"] == "AccessDenied"
    assert sent == []  # refused by credvend itself, before STS


def test_partner_writer_trust_requires_the_external_id(endpoint, function_role_session, partner_role) -> None:
    as_function = client_with("sts", endpoint, function_role_session)
    session_arn = as_function.get_caller_identity()["Arn"]
    external_id = POLICY.roles["partner-writer"].external_id
    assert external_id

    def assume(**extra: str) -> Any:
        return as_function.assume_role(
            RoleArn=partner_role, RoleSessionName="e2e-user", SourceIdentity="e2e-user", DurationSeconds=900, **extra
        )

    assert _refusal(assume) == _denied(session_arn, partner_role)
    assert _refusal(lambda: assume(ExternalId="not-the-shared-id")) == _denied(session_arn, partner_role)
    assert assume(ExternalId=external_id)["Credentials"]


# -------------------------------------------------------------------------------- summary


def test_every_assume_role_the_function_sent_during_this_module_was_allowed_within_one_hour(
    module_mark, sts_journal, api_url, callers
) -> None:
    # One 12-hour vend of its own, so the check holds even when this test runs alone (-k, --lf).
    body = {"role": "reports-reader", "duration_seconds": 43200}
    response = signed_request("POST", f"{api_url}/credentials", callers.user, body=body)
    assert response.status_code == 200, response.json().get("Error")
    sent = sts_journal.function_calls(after=module_mark)
    assert sent, "the vends above must have called STS"
    refused_or_long = [e for e in sent if e["outcome"] != "allowed" or (e["duration_seconds"] or 3600) > 3600]
    assert refused_or_long == []
