"""AWS's quotas on the documents credvend generates, and the size checks against them.

Pure code shared by the CDK app (every synth checks its template, infra/quota_checks.py)
and ``credvend policy check`` (which checks what the policy file alone decides). A deploy
that would fail in CloudFormation halfway fails here first, with a message naming the
document, the quota and the size.

Sizes are counted as IAM counts them: the JSON without whitespace (IAM "doesn't count
white space"), characters not bytes. Sources: AWS's "IAM and AWS STS quotas", "Quotas for
configuring and running a REST API" (API Gateway) and "CloudFormation quotas" pages.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# --- the quotas ------------------------------------------------------------------------

# IAM: role trust policy length ("ACLSizePerRole"). 2,048 by default; an account can have
# it raised through Service Quotas, to 4,096 at most.
TRUST_POLICY = 2048
TRUST_POLICY_MAX = 4096
# IAM: all inline policies of one role together (PutRolePolicy / AWS::IAM::Policy).
ROLE_INLINE_POLICIES = 10240
# IAM: one customer managed policy, and how many managed policies one role may have
# attached (10 by default, 20 at most after a quota increase).
MANAGED_POLICY = 6144
MANAGED_POLICIES_PER_ROLE = 10
MANAGED_POLICIES_PER_ROLE_MAX = 20
# API Gateway: a REST API's resource policy. Not raisable.
API_RESOURCE_POLICY = 8192
# CloudFormation: per stack.
STACK_OUTPUTS = 200
STACK_RESOURCES = 500
# CloudFormation: a template uploaded to S3 (the CDK CLI always uploads it as an asset),
# and a template body passed inline (CreateStack's TemplateBody) for comparison.
TEMPLATE_BYTES = 1_048_576
TEMPLATE_BODY_BYTES = 51_200


@dataclass(frozen=True)
class Quota:
    """One AWS quota: what it limits, its value, and whether an account can raise it."""

    name: str
    limit: int
    unit: str = "characters"
    raisable_with: str | None = None  # the context setting that states a raised value


@dataclass(frozen=True)
class Limits:
    """The quotas one deployment is checked against (raised values come from context)."""

    trust_policy: int = TRUST_POLICY
    managed_policies_per_role: int = MANAGED_POLICIES_PER_ROLE

    def __post_init__(self) -> None:
        if not TRUST_POLICY <= self.trust_policy <= TRUST_POLICY_MAX:
            raise ValueError(
                f"trust policy quota must be between {TRUST_POLICY} and {TRUST_POLICY_MAX}, got {self.trust_policy}"
            )
        if not MANAGED_POLICIES_PER_ROLE <= self.managed_policies_per_role <= MANAGED_POLICIES_PER_ROLE_MAX:
            raise ValueError(
                f"managed policies per role must be between {MANAGED_POLICIES_PER_ROLE} and "
                f"{MANAGED_POLICIES_PER_ROLE_MAX}, got {self.managed_policies_per_role}"
            )

    @property
    def trust_policy_quota(self) -> Quota:
        return Quota("IAM role trust policy length", self.trust_policy, raisable_with="trust_policy_quota")

    @property
    def managed_policies_per_role_quota(self) -> Quota:
        return Quota(
            "IAM managed policies attached to a role",
            self.managed_policies_per_role,
            "policies",
            raisable_with="managed_policies_per_role",
        )


ROLE_INLINE_QUOTA = Quota("IAM role inline policies, all together", ROLE_INLINE_POLICIES)
MANAGED_POLICY_QUOTA = Quota("IAM managed policy length", MANAGED_POLICY)
API_RESOURCE_POLICY_QUOTA = Quota("API Gateway resource policy length", API_RESOURCE_POLICY)
STACK_OUTPUTS_QUOTA = Quota("CloudFormation outputs per stack", STACK_OUTPUTS, "outputs")
STACK_RESOURCES_QUOTA = Quota("CloudFormation resources per stack", STACK_RESOURCES, "resources")
TEMPLATE_QUOTA = Quota("CloudFormation template size (uploaded to S3)", TEMPLATE_BYTES, "bytes")


# --- measuring -------------------------------------------------------------------------


def iam_size(document: Mapping[str, Any] | str) -> int:
    """A policy's size as IAM counts it: its JSON with no whitespace outside strings."""
    if isinstance(document, str):
        document = json.loads(document)
    return len(json.dumps(document, separators=(",", ":"), ensure_ascii=False))


@dataclass(frozen=True)
class QuotaFinding:
    """A document over (or, for ``usage``, measured against) a quota."""

    document: str  # names the thing: "trust policy of role 'reports-reader' (ReportsReader)"
    quota: Quota
    size: int

    @property
    def exceeded(self) -> bool:
        return self.size > self.quota.limit

    def __str__(self) -> str:
        verdict = "exceeds" if self.exceeded else "within"
        quota = f"{self.quota.name} quota of {self.quota.limit:,}"
        text = f"{self.document}: {self.size:,} {self.quota.unit} {verdict} {quota}"
        if self.exceeded and self.quota.raisable_with:
            text += f" (if your account's quota is raised, set context `{self.quota.raisable_with}`)"
        return text


def measure(document: str, quota: Quota, size: int) -> QuotaFinding:
    return QuotaFinding(document=document, quota=quota, size=size)


def exceeded(findings: Iterable[QuotaFinding]) -> list[QuotaFinding]:
    return [finding for finding in findings if finding.exceeded]


class QuotaError(ValueError):
    """Some generated document would break an AWS quota; ``findings`` lists each one."""

    def __init__(self, findings: list[QuotaFinding]) -> None:
        self.findings = findings
        lines = "\n".join(f"  {finding}" for finding in findings)
        super().__init__(f"{len(findings)} document(s) over AWS quotas:\n{lines}")


def fits(document: Mapping[str, Any], budget: int) -> bool:
    """Whether ``document`` stays within ``budget`` characters as IAM counts them."""
    return iam_size(document) <= budget
