"""The trust policy of a target role, built from the policy file.

One implementation for both callers: the CDK stack (``create: true`` roles) and the
``credvend trust-policy`` command / stack output (roles in other accounts).
"""

from __future__ import annotations

from typing import Any

from credvend_policy.model import WEB_IDENTITY, Policy
from credvend_policy.sts_names import source_identity_for

VENDING_ACTIONS = ("sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession")
WEB_IDENTITY_ACTIONS = ("sts:AssumeRoleWithWebIdentity", "sts:SetSourceIdentity", "sts:TagSession")
# The audience of every token credvend signs, and the one client id of its OIDC provider.
STS_AUDIENCE = "sts.amazonaws.com"
# ':' is illegal in a SourceIdentity, so this value can never match: a role that no
# caller is granted stays locked instead of getting an empty (invalid) condition list.
NO_CALLER_GRANTED = "credvend:no-caller-granted"


def issuer_host_path(issuer: str) -> str:
    """``https://abc.execute-api.eu-west-1.amazonaws.com/v1`` -> ``abc.execute-api.eu-west-1.amazonaws.com/v1``:
    how IAM names an OIDC provider (its ARN) and its condition keys (``<host/path>:sub``)."""
    return issuer.removeprefix("https://").rstrip("/")


def oidc_provider_arn(issuer: str, *, partition: str, account: str) -> str:
    """The ARN IAM gives the OIDC provider for ``issuer`` in ``account``."""
    return f"arn:{partition}:iam::{account}:oidc-provider/{issuer_host_path(issuer)}"


def oidc_provider_spec(issuer: str, *, partition: str, account: str) -> dict[str, Any]:
    """The OIDC provider a web_identity role's account must have (what ``credvend trust-policy`` prints)."""
    return {
        "Url": issuer.rstrip("/"),
        "ClientIDList": [STS_AUDIENCE],
        "Arn": oidc_provider_arn(issuer, partition=partition, account=account),
    }


def trust_policy_document(
    policy: Policy,
    alias: str,
    *,
    vending_role_arn: str,
    issuer: str | None = None,
    oidc_provider_arn: str | None = None,
) -> dict[str, Any]:
    """The trust policy of ``alias`` for its issuance: ``assume_role`` trusts the vending
    function's role; ``web_identity`` trusts credvend's OIDC issuer (``issuer`` and the
    ``oidc_provider_arn`` registered for it in the role's account are then required)."""
    if policy.issuance_of(alias) == WEB_IDENTITY:
        if issuer is None or oidc_provider_arn is None:
            raise ValueError(f"role {alias!r} uses web_identity issuance: the issuer and its OIDC provider are needed")
        return web_identity_trust_policy_document(policy, alias, issuer=issuer, oidc_provider_arn=oidc_provider_arn)
    return assume_role_trust_policy_document(policy, alias, vending_role_arn=vending_role_arn)


def web_identity_trust_policy_document(
    policy: Policy, alias: str, *, issuer: str, oidc_provider_arn: str, list_callers: bool = True
) -> dict[str, Any]:
    """The trust policy of a ``web_identity`` role: tokens from credvend's issuer, for its callers.

    ``:aud`` pins the audience credvend signs for, ``:sub`` the callers granted the role (the
    token's ``sub`` is the caller's name), ``sts:SourceIdentity`` (from the token's
    source-identity claim) their SourceIdentities. The duration cap is the same
    ``...IfExists`` form as for ``assume_role`` (the key is present for web identity requests).

    ``list_callers=False`` is the size fallback (CONTRACT §5): the lists are dropped, ``:aud``
    stays and a source identity is still required (present); the function authorizes every
    caller by the policy file before it signs a token, and only it can sign.
    """
    role = policy.roles[alias]
    callers = policy.callers_granted(alias)
    host_path = issuer_host_path(issuer)
    conditions: dict[str, Any] = {}
    string_equals: dict[str, Any] = {f"{host_path}:aud": STS_AUDIENCE}
    if list_callers:
        string_equals[f"{host_path}:sub"] = callers or [NO_CALLER_GRANTED]
        string_equals["sts:SourceIdentity"] = [source_identity_for(caller) for caller in callers] or [NO_CALLER_GRANTED]
    else:
        conditions["Null"] = {"sts:SourceIdentity": "false"}
    conditions["StringEquals"] = string_equals
    conditions["NumericLessThanEqualsIfExists"] = {"sts:DurationSeconds": role.max_session_duration}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CredvendIssuer",
                "Effect": "Allow",
                "Principal": {"Federated": oidc_provider_arn},
                "Action": list(WEB_IDENTITY_ACTIONS),
                "Condition": conditions,
            }
        ],
    }


def assume_role_trust_policy_document(policy: Policy, alias: str, *, vending_role_arn: str) -> dict[str, Any]:
    """The IAM trust policy that lets only the vending function assume ``alias``, for its callers.

    ``sts:DurationSeconds`` is not in AssumeRole's request context (IAM documents it for
    bearer-token requests), so the cap uses ``...IfExists``: a plain operator on an absent
    key never matches and would lock everyone out. MaxSessionDuration is what AWS enforces.
    """
    role = policy.roles[alias]  # KeyError for an unknown alias: callers check first
    identities = [source_identity_for(caller) for caller in policy.callers_granted(alias)]
    string_equals: dict[str, Any] = {"sts:SourceIdentity": identities or [NO_CALLER_GRANTED]}
    if role.external_id is not None:
        string_equals["sts:ExternalId"] = role.external_id
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CredvendVendingFunction",
                "Effect": "Allow",
                "Principal": {"AWS": vending_role_arn},
                "Action": list(VENDING_ACTIONS),
                "Condition": {
                    "StringEquals": string_equals,
                    "NumericLessThanEqualsIfExists": {"sts:DurationSeconds": role.max_session_duration},
                },
            }
        ],
    }
