"""The trust policy of a target role, built from the policy file, within IAM's size quota.

One implementation for both callers: the CDK stack (``create: true`` roles) and the
``credvend trust-policy`` command / cloud-assembly files (roles in other accounts).
A role's issuance picks the document: ``assume_role`` trusts the vending function's role,
``web_identity`` trusts credvend's OIDC issuer (CONTRACT §9); both have the same fallback.

IAM caps a role's trust policy at 2,048 characters (4,096 where the account's quota is
raised), and the list of granted callers' source identities grows with every caller: about
70 callers granted one role fill 2,048. A role whose list would not fit keeps
``sts:SourceIdentity`` required (present) but drops the list (CONTRACT §5): the function
still authorizes every caller by the policy file before it calls STS, and the function
role's credentials work only from inside the function (``lambda:SourceFunctionArn``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from credvend_policy.model import WEB_IDENTITY, Policy
from credvend_policy.quotas import TRUST_POLICY, iam_size
from credvend_policy.sts_names import source_identity_for

VENDING_ACTIONS = ("sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession")
WEB_IDENTITY_ACTIONS = ("sts:AssumeRoleWithWebIdentity", "sts:SetSourceIdentity", "sts:TagSession")
# The audience of every token credvend signs, and the one client id of its OIDC provider.
STS_AUDIENCE = "sts.amazonaws.com"
# ':' is illegal in a SourceIdentity, so this value can never match: a role that no
# caller is granted stays locked instead of getting an empty (invalid) condition list.
NO_CALLER_GRANTED = "credvend:no-caller-granted"
# The widest ARN partition ("aws-us-gov"), to size a document whose principal is not known
# yet (a CDK token) without ever under-counting it.
WIDEST_PARTITION = "aws-us-gov"
# An issuer URL at least as long as any stack's (10-character API id, the longest Region
# and URL suffix), to size a web_identity document while the real one is a CDK token.
WIDEST_ISSUER = "https://0123456789.execute-api.ap-southeast-5.amazonaws.com.cn/v1"


@dataclass(frozen=True)
class Budgeted:
    """A document chosen to fit a size budget: the full one, or its fallback."""

    document: dict[str, Any]
    size: int  # as IAM counts it
    lists_dropped: bool  # True: the full document did not fit, this is the fallback


def within_budget(
    full: Mapping[str, Any],
    fallback: Mapping[str, Any],
    *,
    budget: int,
    measured: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None,
) -> Budgeted:
    """``full`` if it fits ``budget`` characters as IAM counts them, else ``fallback``.

    ``measured`` gives the same two documents with literal stand-ins for placeholders
    (CDK tokens) so that sizes are counted on what IAM will see. The fallback is returned
    even if it too is over the budget: the synth's quota check then names it.
    """
    full_measured, fallback_measured = measured or (full, fallback)
    size = iam_size(full_measured)
    if size <= budget:
        return Budgeted(document=dict(full), size=size, lists_dropped=False)
    return Budgeted(document=dict(fallback), size=iam_size(fallback_measured), lists_dropped=True)


def _document(principal: str, conditions: dict[str, Any]) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CredvendVendingFunction",
                "Effect": "Allow",
                "Principal": {"AWS": principal},
                "Action": list(VENDING_ACTIONS),
                "Condition": conditions,
            }
        ],
    }


def _conditions(policy: Policy, alias: str, *, list_identities: bool) -> dict[str, Any]:
    role = policy.roles[alias]  # KeyError for an unknown alias: callers check first
    conditions: dict[str, Any] = {}
    string_equals: dict[str, Any] = {}
    if list_identities:
        identities = [source_identity_for(caller) for caller in policy.callers_granted(alias)]
        string_equals["sts:SourceIdentity"] = identities or [NO_CALLER_GRANTED]
    else:
        # Present, whatever its value: every session still names its caller.
        conditions["Null"] = {"sts:SourceIdentity": "false"}
    if role.external_id is not None:
        string_equals["sts:ExternalId"] = role.external_id
    if string_equals:
        conditions["StringEquals"] = string_equals
    conditions["NumericLessThanEqualsIfExists"] = {"sts:DurationSeconds": role.max_session_duration}
    return conditions


def issuer_host_path(issuer: str) -> str:
    """``https://abc.execute-api.eu-west-1.amazonaws.com/v1`` -> ``abc.execute-api.eu-west-1.amazonaws.com/v1``:
    how IAM names an OIDC provider (its ARN) and its condition keys (``<host/path>:sub``)."""
    return issuer.removeprefix("https://").rstrip("/")


def oidc_provider_arn(issuer: str, *, partition: str, account: str) -> str:
    """The ARN IAM gives the OIDC provider for ``issuer`` in ``account``."""
    return f"arn:{partition}:iam::{account}:oidc-provider/{issuer_host_path(issuer)}"


_provider_arn = oidc_provider_arn  # for functions whose parameter of that name shadows it


def oidc_provider_spec(issuer: str, *, partition: str, account: str) -> dict[str, Any]:
    """The OIDC provider a web_identity role's account must have (what ``credvend trust-policy`` prints)."""
    return {
        "Url": issuer.rstrip("/"),
        "ClientIDList": [STS_AUDIENCE],
        "Arn": oidc_provider_arn(issuer, partition=partition, account=account),
    }


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


def web_identity_trust_policy(
    policy: Policy,
    alias: str,
    *,
    issuer: str,
    oidc_provider_arn: str,
    budget: int = TRUST_POLICY,
    measured_issuer: str | None = None,
) -> Budgeted:
    """:func:`web_identity_trust_policy_document` within ``budget``, else its fallback.
    ``measured_issuer``: a literal issuer at least as long as ``issuer`` will be (a token)."""

    def document(url: str, provider: str, *, list_callers: bool) -> dict[str, Any]:
        return web_identity_trust_policy_document(
            policy, alias, issuer=url, oidc_provider_arn=provider, list_callers=list_callers
        )

    full = document(issuer, oidc_provider_arn, list_callers=True)
    reduced = document(issuer, oidc_provider_arn, list_callers=False)
    measured = None
    if measured_issuer is not None:
        provider = _provider_arn(measured_issuer, partition=WIDEST_PARTITION, account="123456789012")
        measured = (
            document(measured_issuer, provider, list_callers=True),
            document(measured_issuer, provider, list_callers=False),
        )
    return within_budget(full, reduced, budget=budget, measured=measured)


def trust_policy(
    policy: Policy,
    alias: str,
    *,
    vending_role_arn: str,
    budget: int = TRUST_POLICY,
    measured_arn: str | None = None,
    issuer: str | None = None,
    oidc_provider_arn: str | None = None,
    measured_issuer: str | None = None,
) -> Budgeted:
    """The trust policy that lets only the vending function assume ``alias``, for its callers.

    ``sts:DurationSeconds`` is not in AssumeRole's request context (IAM documents it for
    bearer-token requests), so the cap uses ``...IfExists``: a plain operator on an absent
    key never matches and would lock everyone out. MaxSessionDuration is what AWS enforces.

    The callers' source identities are listed when the document fits ``budget``;
    otherwise ``lists_dropped`` is set and the document requires a source identity
    without listing them. ``measured_arn``: a literal ARN at least as long as
    ``vending_role_arn`` will be, for sizing when that is a placeholder.

    A ``web_identity`` role gets :func:`web_identity_trust_policy` instead (``issuer`` and the
    ``oidc_provider_arn`` registered for it in the role's account are then required).
    """
    if policy.issuance_of(alias) == WEB_IDENTITY:
        if issuer is None or oidc_provider_arn is None:
            raise ValueError(f"role {alias!r} uses web_identity issuance: the issuer and its OIDC provider are needed")
        return web_identity_trust_policy(
            policy,
            alias,
            issuer=issuer,
            oidc_provider_arn=oidc_provider_arn,
            budget=budget,
            measured_issuer=measured_issuer,
        )
    full = _document(vending_role_arn, _conditions(policy, alias, list_identities=True))
    reduced = _document(vending_role_arn, _conditions(policy, alias, list_identities=False))
    measured = None
    if measured_arn is not None:
        measured = (
            _document(measured_arn, _conditions(policy, alias, list_identities=True)),
            _document(measured_arn, _conditions(policy, alias, list_identities=False)),
        )
    return within_budget(full, reduced, budget=budget, measured=measured)


def trust_policy_document(
    policy: Policy,
    alias: str,
    *,
    vending_role_arn: str,
    budget: int = TRUST_POLICY,
    issuer: str | None = None,
    oidc_provider_arn: str | None = None,
) -> dict[str, Any]:
    """The document of :func:`trust_policy` (for a literal ``vending_role_arn``/``issuer``)."""
    return trust_policy(
        policy,
        alias,
        vending_role_arn=vending_role_arn,
        budget=budget,
        issuer=issuer,
        oidc_provider_arn=oidc_provider_arn,
    ).document
