"""The vend orchestration: authorize, clamp, name, assume, remember.

``VendService`` holds the state of one container (cold start to shutdown): the policy,
the caller index, what the function learned about its own identity (account, partition,
role chaining) and the lower caps STS taught it. STS is an injected port, so tests pass
fakes or stubs. Nothing here calls STS for a request that is denied or invalid, nor
starts an STS call that could not finish before the request's deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from credvend.domain.authorize import (
    Authorization,
    OidcIdentity,
    authorize_caller,
    caller_for_principal,
    caller_for_token,
)
from credvend.domain.clamp import STS_REJECTED_RETRY, Clamp, clamp_duration
from credvend.domain.errors import (
    DurationRejected,
    InternalError,
    Unauthenticated,
    UpstreamError,
    UpstreamUnavailable,
)
from credvend.domain.formats import AssumedRole, GrantRecord, Vended
from credvend.domain.issuers import AssumeRoleIssuer, Issuer, IssueRequest, StsPort
from credvend.domain.naming import SessionNaming, name_session
from credvend.domain.requests import VendRequest
from credvend_policy import ROLE_CHAINING_LIMIT, Issuance, Policy, is_long_term_identity, parse_arn

__all__ = ["Decision", "Home", "StsPort", "VendService"]


@dataclass(frozen=True, slots=True)
class Home:
    """Where the function runs: created roles live in this partition and account."""

    partition: str
    account: str

    @classmethod
    def from_arn(cls, arn: str | None) -> Home | None:
        parsed = parse_arn(arn or "")
        return cls(parsed.partition, parsed.account) if parsed else None


@dataclass(slots=True)
class Decision:
    """One audit record per request, filled in as the decision is made. Never holds secrets."""

    request_id: str
    principal_arn: str | None = None
    issuer: str | None = None  # OIDC callers: the issuer's name in the policy...
    subject: str | None = None  # ...and the token's ``sub`` (never the token itself)
    role: str | None = None
    caller: str | None = None
    role_arn: str | None = None
    session_name: str | None = None
    source_identity: str | None = None
    requested_duration: int | None = None
    granted_duration: int | None = None
    limited_by: list[str] = field(default_factory=list)
    role_chaining: bool | None = None
    issuance: str | None = None
    sts_attempts: int = 0
    sts_latency_ms: float | None = None
    sts_request_id: str | None = None  # STS's RequestId for the call that issued the credentials
    outcome: str = "pending"
    error_code: str | None = None
    reason: str | None = None

    def log_fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class Plan:
    """What a request would get, decided before anything is issued (a dry run stops here)."""

    auth: Authorization
    role_arn: str
    naming: SessionNaming
    requested: int
    chaining: bool
    clamp: Clamp
    issuance: Issuance
    issuer: Issuer  # resolved (so a dry run fails as a vend would), never called by a dry run

    def grant(self) -> GrantRecord:
        return GrantRecord(
            caller=self.auth.caller,
            role=self.auth.alias,
            role_arn=self.role_arn,
            session_name=self.naming.session_name,
            source_identity=self.naming.source_identity,
            requested=self.requested,
            granted=self.clamp.granted,
            limited_by=self.clamp.limited_by,
            issuance=self.issuance,
        )


class VendService:
    """``web_identity``: a factory for the web identity issuer (built on the first such vend),
    or None when the function is not configured as an issuer: those vends then fail with
    InternalError, never falling back to ``assume_role``."""

    def __init__(
        self,
        policy: Policy,
        sts: StsPort,
        *,
        web_identity: Callable[[], Issuer] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.policy = policy
        self._sts = sts
        self._assume_role_issuer = AssumeRoleIssuer(sts)
        self._web_identity = web_identity
        self._clock = clock
        self._callers = policy.callers_by_principal()
        self._matchers = policy.oidc_matchers()
        self._home: Home | None = None
        self._role_chaining: bool | None = None
        self._rejected_caps: dict[str, int] = {}  # alias -> cap STS enforced below the declared one
        self._role_arns: dict[str, str] = {}  # alias -> ARN, once known (the home never changes)

    # -- what the container learns about itself --------------------------------------
    def learn_home(self, function_arn: str | None) -> None:
        """Take account and partition from the invoked function's ARN (free, no STS call)."""
        if self._home is None:
            self._home = Home.from_arn(function_arn)

    def _probe_own_identity(self, deadline: float | None) -> None:
        """One GetCallerIdentity per container: who are we, and is AssumeRole role chaining?

        Long-term keys (an IAM user, or the account root) are the only source of credentials
        whose AssumeRole is not role chaining; anything else (assumed-role...) is capped.
        """
        self._before_sts_call(deadline)
        arn = self._sts.caller_identity_arn()
        self._role_chaining = not is_long_term_identity(arn)
        if self._home is None:
            self._home = Home.from_arn(arn)

    def _before_sts_call(self, deadline: float | None) -> None:
        """Start an STS call only if it can finish before ``deadline``: past it, Lambda would
        cut the request off (a timeout, no answer); before it, the caller gets a 503."""
        if deadline is not None and deadline - self._clock() < self._sts.max_call_seconds:
            raise UpstreamUnavailable(reason="no_time_left")

    def _home_for(self, deadline: float | None) -> Home:
        if self._home is None:
            self._probe_own_identity(deadline)
        if self._home is None:  # pragma: no cover - STS always answers with an ARN
            raise UpstreamError(upstream_code="UnparsableCallerIdentity")
        return self._home

    def _role_chaining_for(
        self, *, requested: int, auth: Authorization, remembered: int | None, deadline: float | None
    ) -> bool:
        # The chaining cap (3600) changes the answer only when the request is above 3600
        # and nothing else already holds it below 3600; otherwise skip the STS round trip.
        bound = min(requested, auth.grant.max_duration_seconds, auth.role.max_session_duration)
        if remembered is not None:
            bound = min(bound, remembered)
        if self._role_chaining is None and requested > ROLE_CHAINING_LIMIT and bound >= ROLE_CHAINING_LIMIT:
            self._probe_own_identity(deadline)
        return bool(self._role_chaining)

    def role_arn(self, alias: str, *, deadline: float | None = None) -> str:
        known = self._role_arns.get(alias)
        if known is not None:
            return known
        role = self.policy.roles[alias]
        if role.arn is not None:
            return role.arn
        home = self._home_for(deadline)
        arn = self._role_arns[alias] = role.arn_in(alias=alias, partition=home.partition, account=home.account)
        return arn

    def _issuer(self, issuance: Issuance) -> Issuer:
        if issuance == "assume_role":
            return self._assume_role_issuer
        if self._web_identity is None:
            raise InternalError(reason="web_identity_not_configured")
        return self._web_identity()

    # -- the request --------------------------------------------------------------------
    def identify(self, *, principal_arn: str | None, token: OidcIdentity | None, decision: Decision) -> str:
        """The caller name of a verified SigV4 principal or a verified OIDC token (exactly one)."""
        if token is not None and principal_arn is None:
            decision.issuer, decision.subject = token.issuer, token.subject
            return caller_for_token(self._matchers, token)
        if principal_arn is not None and token is None:
            decision.principal_arn = principal_arn
            return caller_for_principal(self._callers, principal_arn)
        raise Unauthenticated()

    def plan(
        self,
        request: VendRequest,
        *,
        principal_arn: str | None = None,
        token: OidcIdentity | None = None,
        decision: Decision,
        deadline: float | None = None,
    ) -> Plan:
        """Everything up to issuing: identify (SigV4 principal or OIDC token), authorize, name,
        pick the issuer, clamp. A dry run stops here, so it makes at most the one
        GetCallerIdentity a cold container needs and never calls an issuer (no AssumeRole,
        AssumeRoleWithWebIdentity or KMS Sign)."""
        decision.role = request.role
        caller = self.identify(principal_arn=principal_arn, token=token, decision=decision)
        auth = authorize_caller(self.policy, caller, alias=request.role, principal_arn=principal_arn)
        decision.caller = auth.caller
        requested = request.duration_seconds or self.policy.defaults.duration_seconds
        decision.requested_duration = requested
        role_arn = decision.role_arn = self.role_arn(auth.alias, deadline=deadline)
        naming = name_session(
            self.policy.defaults.session_name,
            caller=auth.caller,
            role=auth.alias,
            request_id=decision.request_id,
            subject=token.subject if token is not None else None,
        )
        decision.session_name = naming.session_name
        decision.source_identity = naming.source_identity

        issuance = decision.issuance = self.policy.issuance_of(auth.alias)
        issuer = self._issuer(issuance)
        remembered = self._rejected_caps.get(auth.alias)
        # Only AssumeRole is role chaining; AssumeRoleWithWebIdentity is unsigned (§3, §9).
        chaining = issuance == "assume_role" and self._role_chaining_for(
            requested=requested, auth=auth, remembered=remembered, deadline=deadline
        )
        decision.role_chaining = self._role_chaining
        clamp = self._clamp(auth, requested, chaining=chaining, remembered=remembered, decision=decision)
        return Plan(
            auth=auth,
            role_arn=role_arn,
            naming=naming,
            requested=requested,
            chaining=chaining,
            clamp=clamp,
            issuance=issuance,
            issuer=issuer,
        )

    def preview(
        self,
        request: VendRequest,
        *,
        principal_arn: str | None = None,
        token: OidcIdentity | None = None,
        decision: Decision,
        time_left: float | None = None,
    ) -> GrantRecord:
        """Dry run (CONTRACT §11): the grant ``vend`` would issue now, and nothing issued."""
        deadline = None if time_left is None else self._clock() + time_left
        return self.plan(
            request, principal_arn=principal_arn, token=token, decision=decision, deadline=deadline
        ).grant()

    def vend(
        self,
        request: VendRequest,
        *,
        principal_arn: str | None = None,
        token: OidcIdentity | None = None,
        decision: Decision,
        time_left: float | None = None,
    ) -> Vended:
        """Identify, authorize, clamp, name and issue. ``time_left``: seconds by which every
        STS call must have finished (None: no deadline)."""
        deadline = None if time_left is None else self._clock() + time_left
        plan = self.plan(request, principal_arn=principal_arn, token=token, decision=decision, deadline=deadline)
        auth, naming = plan.auth, plan.naming

        def assume(duration: int) -> AssumedRole:
            self._before_sts_call(deadline)
            decision.sts_attempts += 1
            started = self._clock()
            request = IssueRequest(
                caller=auth.caller,
                request_id=decision.request_id,
                role_arn=plan.role_arn,
                naming=naming,
                duration_seconds=duration,
                external_id=auth.role.external_id,
            )
            try:
                assumed = plan.issuer.issue(request, before_call=lambda: self._before_sts_call(deadline))
            finally:
                decision.sts_latency_ms = round((self._clock() - started) * 1000, 3)
            # the CloudTrail join (CONTRACT §11): the requestID of the event that issued these
            decision.sts_request_id = assumed.request_id
            return assumed

        try:
            assumed = assume(plan.clamp.granted)
        except DurationRejected as rejected:
            if plan.clamp.granted <= STS_REJECTED_RETRY:
                raise UpstreamError(upstream_code=rejected.upstream_code) from None
            clamp = self._clamp(
                auth, plan.requested, chaining=plan.chaining, remembered=STS_REJECTED_RETRY, decision=decision
            )
            plan = replace(plan, clamp=clamp)
            try:
                assumed = assume(clamp.granted)
            except DurationRejected as again:
                raise UpstreamError(upstream_code=again.upstream_code) from None
            self._rejected_caps[auth.alias] = STS_REJECTED_RETRY

        return Vended(grant=plan.grant(), assumed=assumed)

    @staticmethod
    def _clamp(
        auth: Authorization, requested: int, *, chaining: bool, remembered: int | None, decision: Decision
    ) -> Clamp:
        clamp = clamp_duration(
            requested=requested,
            caller_grant=auth.grant.max_duration_seconds,
            role_max_session_duration=auth.role.max_session_duration,
            role_chaining=chaining,
            sts_rejected=remembered,
        )
        decision.granted_duration = clamp.granted
        decision.limited_by = [str(reason) for reason in clamp.limited_by]
        return clamp
