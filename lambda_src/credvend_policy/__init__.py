"""The policy file: models, loading, naming rules and trust policies.

Pure code shared by the vending function, the CDK app and the client. It imports
neither boto3 nor CDK nor Powertools, so every side can use it.
"""

from credvend_policy.loader import PolicyError, load_policy, parse_policy, policy_as_json
from credvend_policy.model import CallerSpec, Defaults, Grant, Policy, RoleSpec
from credvend_policy.principals import PrincipalKey, principal_key
from credvend_policy.sts_names import source_identity_for, to_sts_name
from credvend_policy.trust import trust_policy_document

__all__ = [
    "CallerSpec",
    "Defaults",
    "Grant",
    "Policy",
    "PolicyError",
    "PrincipalKey",
    "RoleSpec",
    "load_policy",
    "parse_policy",
    "policy_as_json",
    "principal_key",
    "source_identity_for",
    "to_sts_name",
    "trust_policy_document",
]
