"""Who is calling, and may they have this role?

Two ways to arrive at a caller, one way on from there: a SigV4 identity that API Gateway
verified (``requestContext.identity.userArn``, IAM routes) or an OIDC token the function
verified (``credvend.oidc``, OIDC routes) each resolve to a caller name; ``authorize_caller``
then decides the grant the same way for both. Identity never comes from the body."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from credvend.domain.errors import AccessDenied, Unauthenticated
from credvend_policy import Grant, OidcMatcher, Policy, PrincipalKey, RoleSpec, is_identity_arn, principal_key

MatchersByIssuer = Mapping[str, Sequence[tuple[str, OidcMatcher]]]


@dataclass(frozen=True, slots=True)
class OidcIdentity:
    """An OIDC token that passed verification: its issuer's name in the policy, ``sub``, and
    all its (verified) claims, which the callers' matchers read."""

    issuer: str
    subject: str
    claims: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Authorization:
    """A verified caller that is granted ``alias``."""

    caller: str
    principal_arn: str | None  # None for a caller that authenticated with an OIDC token
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


def caller_for_principal(callers_by_principal: Mapping[PrincipalKey, str], principal_arn: str) -> str:
    key = principal_key(principal_arn)
    caller = callers_by_principal.get(key) if key is not None else None
    if caller is None:
        raise AccessDenied(reason="unknown_caller")
    return caller


def caller_for_token(matchers_by_issuer: MatchersByIssuer, identity: OidcIdentity) -> str:
    """The one caller whose matcher accepts the token's claims. None, or two different
    callers, is AccessDenied: a token must never pick between callers by file order."""
    candidates = matchers_by_issuer.get(identity.issuer, ())
    callers = {caller for caller, matcher in candidates if matcher.matches(identity.claims)}
    if not callers:
        raise AccessDenied(reason="no_matching_caller")
    if len(callers) > 1:
        raise AccessDenied(reason="ambiguous_caller")
    return callers.pop()


def authorize(
    policy: Policy,
    callers_by_principal: Mapping[PrincipalKey, str],
    *,
    principal_arn: str,
    alias: str,
) -> Authorization:
    """Resolve a SigV4 caller and its grant for ``alias`` (see ``authorize_caller``)."""
    caller = caller_for_principal(callers_by_principal, principal_arn)
    return authorize_caller(policy, caller, alias=alias, principal_arn=principal_arn)


def authorize_caller(policy: Policy, caller: str, *, alias: str, principal_arn: str | None = None) -> Authorization:
    """The grant of an identified caller for ``alias``, however it authenticated.

    Unknown caller, alias not granted and unknown alias all raise the same AccessDenied
    (the ``reason`` goes to the audit log only).
    """
    grant = policy.callers[caller].grant_for(alias)
    role = policy.roles.get(alias)
    if role is None:
        raise AccessDenied(reason="unknown_role")
    if grant is None:
        raise AccessDenied(reason="not_granted")
    return Authorization(caller=caller, principal_arn=principal_arn, alias=alias, role=role, grant=grant)
