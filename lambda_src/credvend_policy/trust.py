"""The trust policy of a target role, built from the policy file, within IAM's size quota.

One implementation for both callers: the CDK stack (``create: true`` roles) and the
``credvend trust-policy`` command / cloud-assembly files (roles in other accounts).

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

from credvend_policy.model import Policy
from credvend_policy.quotas import TRUST_POLICY, iam_size
from credvend_policy.sts_names import source_identity_for

VENDING_ACTIONS = ("sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession")
# ':' is illegal in a SourceIdentity, so this value can never match: a role that no
# caller is granted stays locked instead of getting an empty (invalid) condition list.
NO_CALLER_GRANTED = "credvend:no-caller-granted"
# The widest ARN partition ("aws-us-gov"), to size a document whose principal is not known
# yet (a CDK token) without ever under-counting it.
WIDEST_PARTITION = "aws-us-gov"


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


def trust_policy(
    policy: Policy,
    alias: str,
    *,
    vending_role_arn: str,
    budget: int = TRUST_POLICY,
    measured_arn: str | None = None,
) -> Budgeted:
    """The trust policy that lets only the vending function assume ``alias``, for its callers.

    ``sts:DurationSeconds`` is not in AssumeRole's request context (IAM documents it for
    bearer-token requests), so the cap uses ``...IfExists``: a plain operator on an absent
    key never matches and would lock everyone out. MaxSessionDuration is what AWS enforces.

    The callers' source identities are listed when the document fits ``budget``;
    otherwise ``lists_dropped`` is set and the document requires a source identity
    without listing them. ``measured_arn``: a literal ARN at least as long as
    ``vending_role_arn`` will be, for sizing when that is a placeholder.
    """
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
    policy: Policy, alias: str, *, vending_role_arn: str, budget: int = TRUST_POLICY
) -> dict[str, Any]:
    """The document of :func:`trust_policy` (for a literal ``vending_role_arn``)."""
    return trust_policy(policy, alias, vending_role_arn=vending_role_arn, budget=budget).document
