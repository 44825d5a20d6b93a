"""Unit tests for API Gateway's resource-policy evaluation (apigw_resource_policy.py).

Pure and fast: no LocalStack. Each test names the rule of AWS's it pins down.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from credvend_localstack import apigw_resource_policy as rp
from credvend_localstack.iam_policy_eval import Caller, Decision

API_ACCOUNT = "000000000000"
PARTNER = "111111111111"
STRANGER = "999999999999"
ORG = "o-abc123def4"
IAM_ROUTES = ["execute-api:/*/POST/credentials", "execute-api:/*/GET/credentials/*"]
PUBLIC_ROUTES = ["execute-api:/*/GET/.well-known/*", "execute-api:/*/GET/oidc/*"]


def session(account: str, role: str = "svc-task", name: str = "task-1") -> Caller:
    return Caller(
        arn=f"arn:aws:sts::{account}:assumed-role/{role}/{name}",
        account=account,
        principal_type="AssumedRole",
        principal_arn=f"arn:aws:iam::{account}:role/{role}",
    )


def invoke(caller: Caller | None, method: str = "POST", path: str = "/credentials", **extra: Any) -> rp.InvokeRequest:
    return rp.InvokeRequest(
        api_id="abc123",
        stage="v1",
        http_method=method,
        path=path,
        region="us-east-1",
        api_account=API_ACCOUNT,
        caller=caller,
        **extra,
    )


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(principal: Any, resources: Any = "execute-api:/*", **condition: Any) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Principal": principal, "Action": "execute-api:Invoke", "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def deny(principal: Any, resources: Any = "execute-api:/*", **condition: Any) -> dict[str, Any]:
    return {**allow(principal, resources, **condition), "Effect": "Deny"}


# --- the resource ------------------------------------------------------------------------


def test_resource_arn_is_api_stage_method_path() -> None:
    request = invoke(session(API_ACCOUNT), "GET", "/credentials/reports-reader")
    assert request.resource_arn == "arn:aws:execute-api:us-east-1:000000000000:abc123/v1/GET/credentials/reports-reader"


def test_shorthand_resource_expands_to_this_api() -> None:
    request = invoke(None)
    assert rp.expand_resource("execute-api:/*", request) == "arn:aws:execute-api:us-east-1:000000000000:abc123/*"


@pytest.mark.parametrize(
    ("resource", "matches"),
    [
        ("execute-api:/*", True),
        ("execute-api:/v1/POST/credentials", True),
        ("execute-api:/*/POST/*", True),
        ("execute-api:/prod/POST/credentials", False),
        ("execute-api:/*/GET/*", False),
        ("arn:aws:execute-api:us-east-1:000000000000:abc123/*", True),
        ("arn:aws:execute-api:us-east-1:000000000000:other/*", False),
        ("arn:aws:execute-api:*:*:*", True),
    ],
)
def test_resource_matching(resource: str, matches: bool) -> None:
    document = policy(allow("*", resource))
    expected = Decision.ALLOW if matches else Decision.IMPLICIT_DENY
    assert rp.evaluate(document, invoke(session(PARTNER))) is expected


def test_not_resource() -> None:
    statement = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "execute-api:Invoke",
        "NotResource": "execute-api:/*/GET/*",
    }
    assert rp.evaluate(policy(statement), invoke(session(PARTNER))) is Decision.ALLOW
    assert rp.evaluate(policy(statement), invoke(session(PARTNER), "GET", "/x")) is Decision.IMPLICIT_DENY


def test_action_wildcards() -> None:
    statement = allow("*")
    statement["Action"] = "execute-api:*"
    assert rp.evaluate(policy(statement), invoke(None)) is Decision.ALLOW
    statement["Action"] = "execute-api:ManageConnections"
    assert rp.evaluate(policy(statement), invoke(None)) is Decision.IMPLICIT_DENY


# --- AWS's decision table ------------------------------------------------------------------


def test_explicit_deny_refuses_even_the_apis_own_account() -> None:
    document = policy(allow({"AWS": f"arn:aws:iam::{API_ACCOUNT}:root"}), deny("*", IAM_ROUTES))
    refusal = rp.authorize_invoke(document, invoke(session(API_ACCOUNT)))
    assert refusal is not None and refusal.status == 403
    assert refusal.message == (
        f"User: arn:aws:sts::{API_ACCOUNT}:assumed-role/svc-task/task-1 is not authorized to perform: "
        "execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:********0000:abc123/v1/POST/credentials "
        "with an explicit deny"
    )


def test_allow_admits_another_account() -> None:
    document = policy(allow({"AWS": f"arn:aws:iam::{PARTNER}:root"}))
    assert rp.authorize_invoke(document, invoke(session(PARTNER))) is None


def test_another_account_without_allow_is_refused() -> None:
    document = policy(allow({"AWS": f"arn:aws:iam::{PARTNER}:root"}))
    refusal = rp.authorize_invoke(document, invoke(session(STRANGER)))
    assert refusal is not None and refusal.status == 403
    assert refusal.message.startswith(f"User: arn:aws:sts::{STRANGER}:assumed-role/svc-task/task-1 is not authorized")
    assert not refusal.message.endswith("explicit deny")


def test_same_account_without_allow_is_admitted_by_its_identity_policy() -> None:
    # identity policies are not evaluated locally: assumed to allow
    document = policy(allow({"AWS": f"arn:aws:iam::{PARTNER}:root"}))
    assert rp.authorize_invoke(document, invoke(session(API_ACCOUNT))) is None


def test_without_a_policy_only_other_accounts_are_refused() -> None:
    assert rp.authorize_invoke(None, invoke(None)) is None
    assert rp.authorize_invoke(None, invoke(session(API_ACCOUNT))) is None
    assert rp.authorize_invoke(None, invoke(session(PARTNER))) is not None


def test_anonymous_needs_an_allow_for_everyone_once_a_policy_exists() -> None:
    document = policy(allow({"AWS": f"arn:aws:iam::{API_ACCOUNT}:root"}, IAM_ROUTES))
    refusal = rp.authorize_invoke(document, invoke(None, "GET", "/.well-known/openid-configuration"))
    assert refusal is not None and refusal.status == 403
    assert refusal.message == (
        "User: anonymous is not authorized to perform: execute-api:Invoke on resource: "
        "arn:aws:execute-api:us-east-1:********0000:abc123/v1/GET/.well-known/openid-configuration"
    )
    public = policy(allow({"AWS": f"arn:aws:iam::{API_ACCOUNT}:root"}, IAM_ROUTES), allow("*", PUBLIC_ROUTES))
    assert rp.authorize_invoke(public, invoke(None, "GET", "/.well-known/openid-configuration")) is None
    assert rp.authorize_invoke(public, invoke(None, "POST", "/credentials")) is not None


@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}])
def test_everyone_includes_anonymous(principal: Any) -> None:
    assert rp.authorize_invoke(policy(allow(principal)), invoke(None)) is None


def test_a_named_principal_never_matches_anonymous() -> None:
    document = policy(allow({"AWS": [f"arn:aws:iam::{API_ACCOUNT}:root", f"arn:aws:iam::{API_ACCOUNT}:role/x"]}))
    assert rp.authorize_invoke(document, invoke(None)) is not None


def test_unreadable_policy_fails_closed() -> None:
    # (Date operators are evaluated since the revocation rules needed them: aws:CurrentTime
    # after 2020 allows; binary comparisons remain unimplemented)
    dated = policy(allow("*", "execute-api:/*", DateGreaterThan={"aws:CurrentTime": "2020-01-01T00:00:00Z"}))
    assert rp.authorize_invoke(dated, invoke(session(API_ACCOUNT))) is None
    document = policy(allow("*", "execute-api:/*", BinaryEquals={"aws:CurrentTime": "QmluYXJ5"}))
    assert rp.authorize_invoke(document, invoke(session(API_ACCOUNT))) is not None
    assert rp.authorize_invoke("not json", invoke(None)) is not None


# --- the stack's shape (h2): callers' accounts or organization, deny the rest ---------------------


def stack_policy(accounts: list[str], org: str | None = None) -> str:
    """Allow on IAM routes for the callers' accounts (or organization), explicit Deny on IAM
    routes for principals outside them, anonymous Allow on public routes."""
    statements = []
    if org:
        statements.append(allow("*", IAM_ROUTES, StringEquals={"aws:PrincipalOrgID": org}))
        statements.append(deny("*", IAM_ROUTES, StringNotEquals={"aws:PrincipalOrgID": org}))
    else:
        statements.append(allow({"AWS": [f"arn:aws:iam::{a}:root" for a in accounts]}, IAM_ROUTES))
        statements.append(deny("*", IAM_ROUTES, StringNotEquals={"aws:PrincipalAccount": accounts}))
    statements.append(allow("*", PUBLIC_ROUTES))
    return policy(*statements)


def test_stack_policy_by_account() -> None:
    document = stack_policy([API_ACCOUNT, PARTNER])
    assert rp.authorize_invoke(document, invoke(session(API_ACCOUNT))) is None
    assert rp.authorize_invoke(document, invoke(session(PARTNER), "GET", "/credentials/r")) is None
    refused = rp.authorize_invoke(document, invoke(session(STRANGER)))
    assert refused is not None and refused.message.endswith("with an explicit deny")
    # anonymous on an IAM route: no PrincipalAccount, so StringNotEquals holds: explicit deny
    anonymous = rp.authorize_invoke(document, invoke(None))
    assert anonymous is not None and anonymous.message.startswith("User: anonymous ")
    assert anonymous.message.endswith("with an explicit deny")
    assert rp.authorize_invoke(document, invoke(None, "GET", "/oidc/jwks.json")) is None


def test_stack_policy_by_organization() -> None:
    document = stack_policy([], org=ORG)
    member = invoke(session(PARTNER), principal_org_id=ORG)
    assert rp.authorize_invoke(document, member) is None
    outsider = invoke(session(STRANGER), principal_org_id="o-someoneelse")
    assert rp.authorize_invoke(document, outsider) is not None
    # an account LocalStack knows no organization for has no aws:PrincipalOrgID: denied, even
    # in the API's own account (the explicit deny wins)
    unknown = rp.authorize_invoke(document, invoke(session(API_ACCOUNT)))
    assert unknown is not None and unknown.message.endswith("with an explicit deny")


# --- condition keys ------------------------------------------------------------------------------


def test_principal_keys() -> None:
    caller = session(PARTNER, role="svc-0001-task")
    context = rp.request_context(invoke(caller, principal_org_id=ORG, user_id="AROAEXAMPLE:task-1"))
    assert context == {
        "aws:principalarn": [f"arn:aws:iam::{PARTNER}:role/svc-0001-task"],
        "aws:principalaccount": [PARTNER],
        "aws:principaltype": ["AssumedRole"],
        "aws:principalorgid": [ORG],
        "aws:userid": ["AROAEXAMPLE:task-1"],
    }
    document = policy(allow("*", "execute-api:/*", ArnLike={"aws:PrincipalArn": f"arn:aws:iam::{PARTNER}:role/svc-*"}))
    assert rp.evaluate(document, invoke(caller)) is Decision.ALLOW
    assert rp.evaluate(document, invoke(session(PARTNER, role="other"))) is Decision.IMPLICIT_DENY


def test_anonymous_has_no_principal_keys() -> None:
    assert rp.request_context(invoke(None, source_ip="10.0.0.1")) == {"aws:sourceip": ["10.0.0.1"]}


def test_principal_type() -> None:
    document = policy(allow("*", "execute-api:/*", StringEquals={"aws:PrincipalType": "AssumedRole"}))
    assert rp.evaluate(document, invoke(session(PARTNER))) is Decision.ALLOW
    user = Caller(
        arn=f"arn:aws:iam::{PARTNER}:user/bob",
        account=PARTNER,
        principal_type="User",
        principal_arn=f"arn:aws:iam::{PARTNER}:user/bob",
    )
    assert rp.evaluate(document, invoke(user)) is Decision.IMPLICIT_DENY


@pytest.mark.parametrize(
    ("ip", "allowed"), [("10.1.2.3", True), ("10.2.0.1", False), ("not-an-ip", False), (None, False)]
)
def test_source_ip(ip: str | None, allowed: bool) -> None:
    document = policy(allow("*", "execute-api:/*", IpAddress={"aws:SourceIp": ["10.1.0.0/16", "192.0.2.7"]}))
    expected = Decision.ALLOW if allowed else Decision.IMPLICIT_DENY
    assert rp.evaluate(document, invoke(None, source_ip=ip)) is expected


def test_not_ip_address_deny() -> None:
    document = policy(allow("*"), deny("*", "execute-api:/*", NotIpAddress={"aws:SourceIp": "127.0.0.0/8"}))
    assert rp.authorize_invoke(document, invoke(None, source_ip="127.0.0.1")) is None
    assert rp.authorize_invoke(document, invoke(None, source_ip="198.51.100.1")) is not None


def test_not_principal() -> None:
    statement = {
        "Effect": "Deny",
        "NotPrincipal": {"AWS": f"arn:aws:iam::{API_ACCOUNT}:root"},
        "Action": "execute-api:Invoke",
        "Resource": "execute-api:/*",
    }
    document = policy(allow("*"), statement)
    assert rp.authorize_invoke(document, invoke(session(API_ACCOUNT))) is None
    assert rp.authorize_invoke(document, invoke(session(PARTNER))) is not None
    assert rp.authorize_invoke(document, invoke(None)) is not None


def test_masked_arn_keeps_the_last_four_digits() -> None:
    request = replace(invoke(None), api_account="123456786200")
    assert rp.masked_resource_arn(request) == "arn:aws:execute-api:us-east-1:********6200:abc123/v1/POST/credentials"


def test_organization_setting() -> None:
    setting = f"{ORG}={API_ACCOUNT}, {PARTNER};o-other=222222222222"
    assert rp.organization_of(PARTNER, setting) == ORG
    assert rp.organization_of("222222222222", setting) == "o-other"
    assert rp.organization_of(STRANGER, setting) is None
    assert rp.organization_of(PARTNER, "") is None
