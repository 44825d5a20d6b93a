"""``credvend policy explain``: the decision a deployed function would make, from the policy
file alone (CONTRACT §11).

It runs the function's own code path, ``VendService.preview`` (authorize, name, clamp), not a
re-implementation, so a reviewer's answer and the service's cannot drift apart. What the
function learns at run time it is told here instead, and the answer says so:

- its own identity: on Lambda the function's credentials are always an assumed-role session,
  so every ``assume_role`` grant is role chaining (at most 1 hour; ``web_identity`` grants are
  not). The offline port answers GetCallerIdentity with such a session; neither it nor the
  offline web_identity issuer can issue anything.
- the account created roles live in (the deploying account): given, or the caller's.
- caps STS taught a running container (``sts_rejected``) are not known offline.

This module ships in the client distribution (pyproject.toml) with the rest of the pure domain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from credvend.domain.authorize import OidcIdentity
from credvend.domain.errors import InvalidRequest, Unauthenticated
from credvend.domain.formats import AssumedRole, GrantRecord
from credvend.domain.issuers import BeforeCall, IssueRequest
from credvend.domain.requests import validate_request
from credvend.domain.vend import Decision, VendService
from credvend_policy import Policy, parse_arn

EXPLAIN_REQUEST_ID = "explain"  # {request_id} in a session-name template renders as this
# An OIDC caller names no account: created roles' ARNs show this one unless --account is given.
OIDC_DEFAULT_ACCOUNT = "000000000000"
ASSUMPTIONS = (
    "offline: the function is assumed to run on AWS Lambda, where every assume_role grant is "
    "role chaining (capped at 3600 seconds); web_identity grants are not",
    "offline: caps STS may teach a running function (sts_rejected) are not known",
)


class OfflineSts:
    """The ``StsPort`` of an explanation: the Lambda function's identity, and no issuing."""

    max_call_seconds = 0.0

    def __init__(self, *, partition: str, account: str) -> None:
        self._identity = f"arn:{partition}:sts::{account}:assumed-role/credvend-function/explain"

    def caller_identity_arn(self) -> str:
        return self._identity

    def assume_role(self, **_: object) -> AssumedRole:  # pragma: no cover - preview never issues
        raise RuntimeError("an explanation never issues credentials")

    def assume_role_with_web_identity(self, **_: object) -> AssumedRole:  # pragma: no cover - idem
        raise RuntimeError("an explanation never issues credentials")


class OfflineIssuer:
    """The web_identity issuer of an explanation: the deployed stack is one (it has a signing
    key and an OIDC provider whenever a role uses web_identity); it never signs anything."""

    def issue(self, request: IssueRequest, *, before_call: BeforeCall) -> AssumedRole:  # pragma: no cover
        raise RuntimeError("an explanation never issues credentials")


@dataclass(frozen=True, slots=True)
class Explanation:
    grant: GrantRecord
    decision: Decision
    assumptions: Sequence[str]


def explain(
    policy: Policy,
    *,
    alias: str,
    principal_arn: str | None = None,
    token: OidcIdentity | None = None,
    duration: int | None = None,
    account: str | None = None,
) -> Explanation:
    """The grant a caller would get for ``alias``: the caller is a SigV4 ``principal_arn`` or
    the (assumed verified) claims of an OIDC ``token``, exactly one. Raises the same errors as
    the service (``AccessDenied`` with its ``reason``, ``InvalidDuration``, ``Unauthenticated``)."""
    from credvend.domain.authorize import verified_principal_arn

    if (principal_arn is None) == (token is None):
        raise Unauthenticated()
    principal = verified_principal_arn(principal_arn) if principal_arn is not None else None
    parsed = parse_arn(principal) if principal is not None else None
    partition = parsed.partition if parsed else "aws"
    home_account = account or (parsed.account if parsed else OIDC_DEFAULT_ACCOUNT)
    fields: dict[str, object] = {"role": alias}
    if duration is not None:
        fields["duration_seconds"] = duration
    request = validate_request(fields)  # the service's own validation and errors
    service = VendService(policy, OfflineSts(partition=partition, account=home_account), web_identity=OfflineIssuer)
    decision = Decision(request_id=EXPLAIN_REQUEST_ID, principal_arn=principal)
    grant = service.preview(request, principal_arn=principal, token=token, decision=decision)
    assumptions = [*ASSUMPTIONS]
    if token is not None:
        assumptions.append("offline: the claims are taken as those of a token that passed verification")
    if policy.roles[alias].arn is None:
        source = "--account" if account else ("the caller's account" if parsed else "a placeholder")
        assumptions.append(f"offline: created roles are in account {home_account}, {source} (--account to change)")
    return Explanation(grant=grant, decision=decision, assumptions=assumptions)


def oidc_identity(policy: Policy, *, issuer: str, unverified_claims: object) -> OidcIdentity:
    """The OIDC identity ``explain`` matches callers with, from an issuer name of the policy and
    a claims object (as a verified token would carry them; ``sub`` a string)."""
    if issuer not in policy.issuers:
        raise InvalidRequest(f"unknown issuer {issuer[:64]!r}: the policy names {sorted(policy.issuers)}")
    if not isinstance(unverified_claims, dict) or not isinstance(unverified_claims.get("sub"), str):
        raise InvalidRequest("the claims must be a JSON object with a string 'sub'")
    return OidcIdentity(issuer=issuer, subject=unverified_claims["sub"], claims=dict(unverified_claims))
