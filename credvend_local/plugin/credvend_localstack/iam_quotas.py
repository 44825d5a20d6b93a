"""AWS's policy-size quotas, so a document AWS refuses is refused on LocalStack too.

Community LocalStack stores IAM and API Gateway policies of any size. A stack whose trust
policy or API resource policy grows with its callers then deploys locally and fails halfway
on AWS. These rules refuse what AWS refuses, with AWS's error codes and messages:

| document | quota | refused by | error |
| --- | --- | --- | --- |
| role trust policy | 2,048 (up to 4,096 on request) | CreateRole, UpdateAssumeRolePolicy | 409 LimitExceeded |
| a role's inline policies, summed | 10,240 | PutRolePolicy | 409 LimitExceeded |
| managed policy | 6,144 | CreatePolicy, CreatePolicyVersion | 409 LimitExceeded |
| REST API resource policy | 8,192 (adjustable) | CreateRestApi, UpdateRestApi | 400 BadRequestException |

Sizes are counted as IAM counts them: characters, whitespace not counted. The same count is
used for the API resource policy (API Gateway stores it minified).

Pure: the functions here take documents and return a `Refusal` or None; the LocalStack
hook (quota_rules.py) only translates requests. CloudFormation's resource providers call
these operations through LocalStack's own clients, so a stack that breaks a quota fails its
resource as it does on AWS.

Settings (LocalStack's environment, read when LocalStack starts):
- CREDVEND_IAM_TRUST_POLICY_QUOTA: 2048 (default) up to 4096, the most AWS grants on request;
- CREDVEND_APIGW_POLICY_QUOTA: 8192 (default) or more, as an increase AWS granted;
- CREDVEND_POLICY_QUOTAS=0 (or false/off/no) turns every quota off.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from .iam_policy_eval import Refusal

SWITCH = "CREDVEND_POLICY_QUOTAS"
TRUST_POLICY_SETTING = "CREDVEND_IAM_TRUST_POLICY_QUOTA"
API_POLICY_SETTING = "CREDVEND_APIGW_POLICY_QUOTA"

TRUST_POLICY_QUOTA = 2048
TRUST_POLICY_QUOTA_MAX = 4096  # the most an account can be granted (Service Quotas)
ROLE_INLINE_AGGREGATE_QUOTA = 10240
MANAGED_POLICY_QUOTA = 6144
API_RESOURCE_POLICY_QUOTA = 8192


class SettingError(ValueError):
    """A quota setting is unusable; LocalStack must not start with a quota it cannot honour."""


@dataclass(frozen=True)
class Quotas:
    trust_policy: int = TRUST_POLICY_QUOTA
    role_inline_aggregate: int = ROLE_INLINE_AGGREGATE_QUOTA
    managed_policy: int = MANAGED_POLICY_QUOTA
    api_resource_policy: int = API_RESOURCE_POLICY_QUOTA


def quotas_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(SWITCH, "1").strip().lower() not in {"0", "false", "off", "no"}


def _int_setting(environ: Mapping[str, str], key: str, default: int, lowest: int, highest: int | None) -> int:
    raw = environ.get(key, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingError(f"{key}={raw!r} is not a whole number") from None
    if value < lowest or (highest is not None and value > highest):
        bound = f"{lowest}..{highest}" if highest is not None else f">= {lowest}"
        raise SettingError(f"{key}={value} is outside {bound}")
    return value


def quotas_from_environment(environ: Mapping[str, str] = os.environ) -> Quotas:
    """The quotas this LocalStack enforces. Only the adjustable ones are settings, and only
    within what AWS grants: a test must not pass with a quota no real account can have."""
    return Quotas(
        trust_policy=_int_setting(
            environ, TRUST_POLICY_SETTING, TRUST_POLICY_QUOTA, TRUST_POLICY_QUOTA, TRUST_POLICY_QUOTA_MAX
        ),
        api_resource_policy=_int_setting(
            environ, API_POLICY_SETTING, API_RESOURCE_POLICY_QUOTA, API_RESOURCE_POLICY_QUOTA, None
        ),
    )


# ------------------------------------------------------------------------------- sizes


def plain_document(document: str) -> str:
    """The JSON text of a policy: LocalStack keeps some documents URL-quoted (CreateRole's)."""
    text = document.strip()
    return text if text.startswith("{") else unquote(text)


def policy_size(document: str) -> int:
    """Characters IAM counts against a quota: all but whitespace."""
    return sum(1 for ch in plain_document(document) if not ch.isspace())


# ------------------------------------------------------------------------------- refusals


def _limit_exceeded(message: str) -> Refusal:
    # IAM answers quota breaches with HTTP 409 and code LimitExceeded
    return Refusal("LimitExceeded", message, 409)


def check_trust_policy(document: str, quotas: Quotas) -> Refusal | None:
    """CreateRole / UpdateAssumeRolePolicy."""
    if policy_size(document) > quotas.trust_policy:
        return _limit_exceeded(f"Cannot exceed quota for ACLSizePerRole: {quotas.trust_policy}")
    return None


def check_role_inline_policy(
    role_name: str,
    policy_name: str,
    document: str,
    existing: Mapping[str, str],
    quotas: Quotas,
) -> Refusal | None:
    """PutRolePolicy: the quota is on the sum of all the role's inline policies, the new or
    replaced one included (putting a policy under an existing name replaces it)."""
    others = sum(policy_size(text) for name, text in existing.items() if name != policy_name)
    if others + policy_size(document) > quotas.role_inline_aggregate:
        return _limit_exceeded(
            f"Maximum policy size of {quotas.role_inline_aggregate} bytes exceeded for role {role_name}"
        )
    return None


def check_managed_policy(document: str, quotas: Quotas) -> Refusal | None:
    """CreatePolicy / CreatePolicyVersion."""
    if policy_size(document) > quotas.managed_policy:
        return _limit_exceeded(f"Cannot exceed quota for PolicySize: {quotas.managed_policy}")
    return None


def check_api_resource_policy(document: str, quotas: Quotas) -> Refusal | None:
    """CreateRestApi / UpdateRestApi (patch of /policy).

    AWS's wording for this refusal is not published and was not observed here; the code
    and status are API Gateway's for invalid input (BadRequestException, 400).
    """
    size = policy_size(document)
    if size > quotas.api_resource_policy:
        return Refusal(
            "BadRequestException",
            f"Resource policy size ({size} characters) exceeds the quota for resource policy length: "
            f"{quotas.api_resource_policy}",
            400,
        )
    return None


def api_policy_from_patch(patch_operations: list[Mapping[str, object]] | None) -> str | None:
    """The resource policy an UpdateRestApi sets, if it sets one (op replace/add on /policy)."""
    for operation in patch_operations or []:
        if operation.get("path") == "/policy" and operation.get("op") in ("replace", "add"):
            value = operation.get("value")
            if isinstance(value, str):
                return value
    return None
