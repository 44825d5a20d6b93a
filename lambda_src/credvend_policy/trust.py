"""The trust policy of a target role, built from the policy file.

One implementation for both callers: the CDK stack (``create: true`` roles) and the
``credvend trust-policy`` command / stack output (roles in other accounts).
"""

from __future__ import annotations

from typing import Any

from credvend_policy.model import Policy
from credvend_policy.sts_names import source_identity_for

VENDING_ACTIONS = ("sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession")
# ':' is illegal in a SourceIdentity, so this value can never match: a role that no
# caller is granted stays locked instead of getting an empty (invalid) condition list.
NO_CALLER_GRANTED = "credvend:no-caller-granted"


def trust_policy_document(policy: Policy, alias: str, *, vending_role_arn: str) -> dict[str, Any]:
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
