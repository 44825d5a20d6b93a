"""Who is calling, and may they have this role? Identity comes only from API Gateway's
verified request context (``requestContext.identity.userArn``), never from the body."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from credvend.domain.errors import AccessDenied, Unauthenticated
from credvend_policy import Grant, Policy, PrincipalKey, RoleSpec, is_identity_arn, principal_key


@dataclass(frozen=True, slots=True)
class Authorization:
    """A verified caller that is granted ``alias``."""

    caller: str
    principal_arn: str
    alias: str
    role: RoleSpec
    grant: Grant


def verified_principal_arn(user_arn: object) -> str:
    """The caller's principal ARN from ``requestContext.identity.userArn``, or Unauthenticated.

    Anything API Gateway puts in userArn for a SigV4 caller is an IAM/STS identity ARN; a
    value that is not (null, "", garbage) is no identity at all: fail closed with 401.
    """
    if not isinstance(user_arn, str) or not is_identity_arn(user_arn):
        raise Unauthenticated()
    return user_arn


def authorize(
    policy: Policy,
    callers_by_principal: Mapping[PrincipalKey, str],
    *,
    principal_arn: str,
    alias: str,
) -> Authorization:
    """Resolve the caller and its grant for ``alias``.

    Unknown caller, alias not granted and unknown alias all raise the same AccessDenied
    (the ``reason`` goes to the audit log only).
    """
    key = principal_key(principal_arn)
    caller = callers_by_principal.get(key) if key is not None else None
    if caller is None:
        raise AccessDenied(reason="unknown_caller")
    grant = policy.callers[caller].grant_for(alias)
    role = policy.roles.get(alias)
    if role is None:
        raise AccessDenied(reason="unknown_role")
    if grant is None:
        raise AccessDenied(reason="not_granted")
    return Authorization(caller=caller, principal_arn=principal_arn, alias=alias, role=role, grant=grant)
