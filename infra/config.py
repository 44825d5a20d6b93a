"""Deployment settings: CDK context (``-c key=value`` or ``cdk.json``) read into one typed object.

Everything about *who may get what* lives in the policy file; this is only *how* the
service is deployed. Values from ``-c`` arrive as strings and values from ``cdk.json`` as
JSON types, so each parser accepts both. A bad value fails the synth naming its key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from aws_cdk import aws_logs as logs

from credvend_policy.api_policy import is_organization_id
from credvend_policy.quotas import (
    MANAGED_POLICIES_PER_ROLE,
    MANAGED_POLICIES_PER_ROLE_MAX,
    TRUST_POLICY,
    TRUST_POLICY_MAX,
    Limits,
)

Architecture = Literal["arm64", "x86_64"]
ARCHITECTURES: tuple[Architecture, ...] = ("arm64", "x86_64")

# The values CloudWatch Logs accepts for a retention, in RetentionDays' member order.
# fmt: off
_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)
# fmt: on
RETENTION_BY_DAYS: dict[int, logs.RetentionDays] = dict(zip(_RETENTION_DAYS, list(logs.RetentionDays), strict=False))

# Stack names become the prefix of the execution role's name (64 characters at most).
_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,39}")  # fullmatch: `$` would take a trailing newline

T = TypeVar("T")

CONTEXT_KEYS = (
    "policy",
    "stack_name",
    "architecture",
    "reserved_concurrency",
    "log_retention_days",
    "throttle_rate_limit",
    "throttle_burst_limit",
    "api_cloudwatch_role",
    "tracing",
    "trust_policy_quota",
    "managed_policies_per_role",
    "organization_id",
)


class ConfigError(ValueError):
    """A context value is unusable; the message names the key."""


@dataclass(frozen=True, kw_only=True)
class DeploymentConfig:
    policy_file: Path
    stack_name: str = "Credvend"
    # Graviton: ~20 % cheaper per GB-second and the bundler fetches aarch64 wheels, so no
    # local toolchain matters. LocalStack on this project's x86-64 hosts passes x86_64.
    architecture: Architecture = "arm64"
    reserved_concurrency: int | None = None
    # One year: the function's log is the record of every grant decision, and CloudTrail's
    # free event history keeps only 90 days.
    log_retention_days: int = 365
    # STS shares one request-rate quota per account and Region with every other caller;
    # these keep a misbehaving client from spending all of it. Raise them deliberately.
    throttle_rate_limit: float = 50.0
    throttle_burst_limit: int = 100
    # API Gateway logs through ONE CloudWatch role per account and Region (its Account
    # settings). True: this stack creates one and sets it there (a fresh account has none,
    # and execution logging fails to deploy without it); both are retained on destroy, so
    # other APIs keep logging. False: the account already has one; leave it alone.
    api_cloudwatch_role: bool = True
    # X-Ray for the API stage and the function. Off by default: it costs per trace and
    # needs xray:Put* on "*" in the function's role; turn it on while investigating latency.
    tracing: bool = False
    # IAM's trust-policy length quota in the target account: 2,048 unless the account had
    # it raised (Service Quotas, up to 4,096). Roles whose callers would not fit it get
    # trust policies that require a source identity without listing them (CONTRACT §5).
    trust_policy_quota: int = TRUST_POLICY
    # IAM's managed-policies-per-role quota (10; up to 20 raised): created roles' own
    # managed_policy_arns, and the execution role's policies of external role ARNs.
    managed_policies_per_role: int = MANAGED_POLICIES_PER_ROLE
    # AWS Organizations id (o-...): admit SigV4 callers of the whole organization at the
    # API's resource policy instead of the accounts of the policy's principals.
    organization_id: str | None = None

    @property
    def limits(self) -> Limits:
        """The AWS quotas this deployment's documents are checked against."""
        return Limits(trust_policy=self.trust_policy_quota, managed_policies_per_role=self.managed_policies_per_role)

    @property
    def function_role_name(self) -> str:
        """The execution role's fixed name: external trust policies name it before it exists."""
        return f"{self.stack_name}-VendingFunction"


def _parse(context: Mapping[str, Any], key: str, parser: Callable[[Any], T], default: T) -> T:
    raw = context.get(key)
    if raw is None or raw == "":
        return default
    try:
        return parser(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"context `{key}`: {exc}") from None


def _int(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ValueError(f"expected an integer, got {raw!r}")
    return int(raw)


def _positive_int(raw: Any) -> int:
    value = _int(raw)
    if value < 1:
        raise ValueError(f"must be at least 1, got {value}")
    return value


def _positive_float(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError(f"expected a number, got {raw!r}")
    value = float(raw)
    if not value > 0:
        raise ValueError(f"must be positive, got {raw!r}")
    return value


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in {"true", "false"}:
        return raw.lower() == "true"
    raise ValueError(f"expected true or false, got {raw!r}")


def _architecture(raw: Any) -> Architecture:
    for name in ARCHITECTURES:
        if raw == name:
            return name
    raise ValueError(f"expected one of {list(ARCHITECTURES)}, got {raw!r}")


def _retention(raw: Any) -> int:
    days = _int(raw)
    if days not in RETENTION_BY_DAYS:
        raise ValueError(f"CloudWatch Logs accepts {list(_RETENTION_DAYS)} days, got {days}")
    return days


def _trust_policy_quota(raw: Any) -> int:
    value = _int(raw)
    if not TRUST_POLICY <= value <= TRUST_POLICY_MAX:
        raise ValueError(
            f"IAM's trust policy quota is {TRUST_POLICY} by default and {TRUST_POLICY_MAX} at most, got {value}"
        )
    return value


def _managed_policies_per_role(raw: Any) -> int:
    value = _int(raw)
    if not MANAGED_POLICIES_PER_ROLE <= value <= MANAGED_POLICIES_PER_ROLE_MAX:
        raise ValueError(
            f"IAM's managed policies per role quota is {MANAGED_POLICIES_PER_ROLE} by default and "
            f"{MANAGED_POLICIES_PER_ROLE_MAX} at most, got {value}"
        )
    return value


def _organization_id(raw: Any) -> str:
    if not isinstance(raw, str) or not is_organization_id(raw):
        raise ValueError(f"expected an AWS Organizations id like o-a1b2c3d4e5, got {raw!r}")
    return raw


def _stack_name(raw: Any) -> str:
    if not isinstance(raw, str) or not _STACK_NAME.fullmatch(raw):
        raise ValueError(f"expected a letter then up to 39 letters, digits or '-', got {raw!r}")
    return raw


def config_from_context(context: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> DeploymentConfig:
    """Read the deployment settings. The policy path: context ``policy``, else ``CREDVEND_POLICY``, else policy.yaml."""
    environ = os.environ if environ is None else environ
    policy = context.get("policy") or environ.get("CREDVEND_POLICY") or "policy.yaml"
    defaults = DeploymentConfig(policy_file=Path(policy))
    return DeploymentConfig(
        policy_file=Path(policy),
        stack_name=_parse(context, "stack_name", _stack_name, defaults.stack_name),
        architecture=_parse(context, "architecture", _architecture, defaults.architecture),
        reserved_concurrency=_parse(context, "reserved_concurrency", _positive_int, None),
        log_retention_days=_parse(context, "log_retention_days", _retention, defaults.log_retention_days),
        throttle_rate_limit=_parse(context, "throttle_rate_limit", _positive_float, defaults.throttle_rate_limit),
        throttle_burst_limit=_parse(context, "throttle_burst_limit", _positive_int, defaults.throttle_burst_limit),
        api_cloudwatch_role=_parse(context, "api_cloudwatch_role", _bool, defaults.api_cloudwatch_role),
        tracing=_parse(context, "tracing", _bool, defaults.tracing),
        trust_policy_quota=_parse(context, "trust_policy_quota", _trust_policy_quota, defaults.trust_policy_quota),
        managed_policies_per_role=_parse(
            context, "managed_policies_per_role", _managed_policies_per_role, defaults.managed_policies_per_role
        ),
        organization_id=_parse(context, "organization_id", _organization_id, None),
    )
