"""Two issuers behind one port (CONTRACT §9): how a vend turns a decision into credentials.

The vend path (``credvend.domain.vend``) authorizes, clamps and names once, then hands an
``IssueRequest`` to the issuer the role's ``issuance`` picks: ``AssumeRoleIssuer`` here, or
``WebIdentityIssuer`` (``credvend.domain.web_identity``, loaded only when a ``web_identity``
role is vended, so the ``assume_role`` cold start never imports it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import SecretStr

from credvend.domain.formats import AssumedRole
from credvend.domain.naming import SessionNaming


class StsPort(Protocol):
    """What the service needs from STS. Implementations raise ``credvend.domain.errors``."""

    @property
    def max_call_seconds(self) -> float:
        """The longest one call can take, retries included (the service's deadline check)."""
        ...

    def assume_role(
        self,
        *,
        role_arn: str,
        session_name: str,
        source_identity: str,
        duration_seconds: int,
        tags: Sequence[tuple[str, str]],
        external_id: str | None,
    ) -> AssumedRole: ...

    def assume_role_with_web_identity(
        self, *, role_arn: str, session_name: str, web_identity_token: SecretStr, duration_seconds: int
    ) -> AssumedRole: ...

    def caller_identity_arn(self) -> str: ...


@dataclass(frozen=True, slots=True)
class IssueRequest:
    """Everything an issuer needs for one vend, decided before it is called."""

    caller: str
    request_id: str
    role_arn: str
    naming: SessionNaming
    duration_seconds: int
    external_id: str | None


# Called before every upstream call (STS, KMS): raises UpstreamUnavailable when the call
# could not finish before the request's deadline.
BeforeCall = Callable[[], None]


class Issuer(Protocol):
    def issue(self, request: IssueRequest, *, before_call: BeforeCall) -> AssumedRole: ...


class AssumeRoleIssuer:
    """``sts:AssumeRole`` with the function's own credentials (role chaining on Lambda)."""

    def __init__(self, sts: StsPort) -> None:
        self._sts = sts

    def issue(self, request: IssueRequest, *, before_call: BeforeCall) -> AssumedRole:
        before_call()
        return self._sts.assume_role(
            role_arn=request.role_arn,
            session_name=request.naming.session_name,
            source_identity=request.naming.source_identity,
            duration_seconds=request.duration_seconds,
            tags=request.naming.tags,
            external_id=request.external_id,
        )
