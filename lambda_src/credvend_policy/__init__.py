"""The policy file: models, loading, naming rules and trust policies.

Pure code shared by the vending function, the CDK app and the client. It imports
neither boto3 nor CDK nor Powertools, so every side can use it.
"""

from credvend_policy.loader import PolicyError, load_policy, parse_policy, policy_as_json
from credvend_policy.model import (
    ROLE_CHAINING_LIMIT,
    STS_MAX_DURATION,
    STS_MIN_DURATION,
    CallerSpec,
    Defaults,
    Grant,
    Issuance,
    IssuerSpec,
    OidcMatcher,
    Policy,
    RoleSpec,
)
from credvend_policy.principals import (
    Arn,
    PrincipalKey,
    account_of,
    is_identity_arn,
    is_long_term_identity,
    parse_arn,
    principal_key,
)
from credvend_policy.sts_names import source_identity_for, to_sts_name
from credvend_policy.trust import trust_policy_document

__all__ = [
    "ROLE_CHAINING_LIMIT",
    "STS_MAX_DURATION",
    "STS_MIN_DURATION",
    "Arn",
    "CallerSpec",
    "Defaults",
    "Grant",
    "Issuance",
    "IssuerSpec",
    "OidcMatcher",
    "Policy",
    "PolicyError",
    "PrincipalKey",
    "RoleSpec",
    "account_of",
    "is_identity_arn",
    "is_long_term_identity",
    "load_policy",
    "parse_arn",
    "parse_policy",
    "policy_as_json",
    "principal_key",
    "source_identity_for",
    "to_sts_name",
    "trust_policy_document",
]
