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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from credvend_policy.model import Policy

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


# --- what the policy file alone decides (``credvend policy check``) ---------------------

# What one managed policy of external role ARNs spends besides the ARNs: its statement
# (Sid, actions, the lambda:SourceFunctionArn condition with the longest function ARN).
EXTERNAL_STATEMENT_OVERHEAD = 400
# The stack's own resources besides the created roles and the external-role policies,
# with room for what it grows (dashboard, alarms, keys): the resource count is an estimate
# here; every synth counts the real template.
BASE_RESOURCES = 60


def chunk_arns(arns: list[str], *, statement_overhead: int = EXTERNAL_STATEMENT_OVERHEAD) -> list[list[str]]:
    """``arns`` split into lists that each fit one managed policy (each ARN costs its length,
    quotes and a comma). Order is kept: an ARN appended to the file moves no other."""
    chunks: list[list[str]] = []
    size = MANAGED_POLICY
    for arn in arns:
        cost = len(arn) + 3
        if size + cost > MANAGED_POLICY - statement_overhead:
            chunks.append([])
            size = 0
        chunks[-1].append(arn)
        size += cost
    return chunks


@dataclass(frozen=True)
class PolicyQuotaReport:
    findings: list[QuotaFinding]
    unlisted: list[str]  # aliases whose trust policy requires a source identity without listing it


def policy_findings(
    policy: Policy,
    *,
    stack_name: str = "Credvend",
    limits: Limits = Limits(),
    organization_id: str | None = None,
    public_routes: Iterable[tuple[str, str]] | None = None,
) -> PolicyQuotaReport:
    """The quota-bound documents a stack built from ``policy`` would have, measured from the
    policy file alone (the same builders as the stack; sizes with the longest ARNs)."""
    from credvend_policy.api_policy import OIDC_ROUTES, api_resource_policy
    from credvend_policy.model import default_role_name
    from credvend_policy.trust import WIDEST_ISSUER, WIDEST_PARTITION, oidc_provider_arn, trust_policy

    function_role = f"arn:{WIDEST_PARTITION}:iam::{'0' * 12}:role/{stack_name}-VendingFunction"
    findings: list[QuotaFinding] = []
    unlisted: list[str] = []
    for alias, role in policy.roles.items():
        # web_identity roles are sized with the longest issuer (and its provider) a stack can have
        trust = trust_policy(
            policy,
            alias,
            vending_role_arn=function_role,
            budget=limits.trust_policy,
            issuer=WIDEST_ISSUER,
            oidc_provider_arn=oidc_provider_arn(WIDEST_ISSUER, partition=WIDEST_PARTITION, account="0" * 12),
        )
        where = f"role {alias!r} ({role.role_name or default_role_name(alias)})" if role.create else f"role {alias!r}"
        findings.append(QuotaFinding(f"trust policy of {where}", limits.trust_policy_quota, trust.size))
        if trust.lists_dropped:
            unlisted.append(alias)
        if role.managed_policy_arns:
            count = len(role.managed_policy_arns)
            findings.append(QuotaFinding(f"managed policies of {where}", limits.managed_policies_per_role_quota, count))
    principals = [arn for caller in policy.callers.values() for arn in caller.iam_principals]
    routes = list(OIDC_ROUTES if public_routes is None else public_routes)  # the stack always has the OIDC routes
    api = api_resource_policy(principals, public_routes=routes, organization_id=organization_id)
    if api is not None:
        findings.append(QuotaFinding("API resource policy", API_RESOURCE_POLICY_QUOTA, iam_size(api)))
    external = [role.arn for role in policy.roles.values() if role.arn is not None]
    chunks = chunk_arns(external)
    if chunks:
        findings.append(
            QuotaFinding(
                f"managed policies of the execution role ({len(external)} external role ARNs)",
                limits.managed_policies_per_role_quota,
                len(chunks),
            )
        )
    created = sum(1 for role in policy.roles.values() if role.create)
    findings.append(
        QuotaFinding("stack resources (estimate)", STACK_RESOURCES_QUOTA, BASE_RESOURCES + created + len(chunks))
    )
    return PolicyQuotaReport(findings=findings, unlisted=unlisted)
