"""Typed model of ``policy.yaml``. Unknown keys are errors (``extra="forbid"``)."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)

from credvend_policy.claims import algorithm_problem, claims_match, sub_problem, url_problem
from credvend_policy.principals import PrincipalKey, is_role_arn, principal_key, role_arn_of_session
from credvend_policy.sts_names import source_identity_for

# STS's limits, for the whole code base (the function's clamp and request model import them).
STS_MIN_DURATION = 900
STS_MAX_DURATION = 43200
ROLE_CHAINING_LIMIT = 3600  # STS's cap when the source credentials are themselves a role session
SESSION_NAME_PLACEHOLDERS = frozenset({"caller", "role", "request_id"})

# Patterns are whole-string matches, anchored with \A and \z (pydantic's Rust regex syntax):
# never ``$``, which in Python's ``re`` also matches before a trailing newline, the ending
# of every YAML block scalar (``|``).
# Aliases appear in URL paths and default role names: keep them plain.
Alias = Annotated[str, StringConstraints(pattern=r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\z")]
CallerName = Annotated[str, StringConstraints(pattern=r"\A[A-Za-z0-9][A-Za-z0-9_+=,.@-]{0,127}\z")]
RoleName = Annotated[str, StringConstraints(pattern=r"\A[A-Za-z0-9_+=,.@-]{1,64}\z")]
ManagedPolicyArn = Annotated[
    str, StringConstraints(pattern=r"\Aarn:aws[a-z-]*:iam::(aws|\d{12}):policy/[A-Za-z0-9_+=,.@/-]{1,512}\z")
]
ExternalId = Annotated[str, StringConstraints(pattern=r"\A[A-Za-z0-9_+=,.@:/-]{2,1224}\z")]
GrantDuration = Annotated[int, Field(ge=STS_MIN_DURATION, le=STS_MAX_DURATION, strict=True)]
RoleMaxDuration = Annotated[int, Field(ge=ROLE_CHAINING_LIMIT, le=STS_MAX_DURATION, strict=True)]
# How credvend gets a role's credentials (CONTRACT §9): AssumeRole with the function's own
# credentials (role chaining on Lambda: 1 hour at most), or AssumeRoleWithWebIdentity with a
# token credvend signs as its own OIDC issuer (unsigned, so never chaining).
Issuance = Literal["assume_role", "web_identity"]
ASSUME_ROLE: Issuance = "assume_role"
WEB_IDENTITY: Issuance = "web_identity"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Strict):
    duration_seconds: GrantDuration = 3600
    session_name: str = "{caller}"
    issuance: Issuance = ASSUME_ROLE

    @field_validator("session_name")
    @classmethod
    def _known_placeholders(cls, session_name: str) -> str:
        """Only the bare placeholders: ``{caller:d}``, ``{caller!x}``, ``{caller.attr}`` or
        ``{caller[0]}`` name a known field yet would make every vend fail."""
        try:
            parts = list(string.Formatter().parse(session_name))
        except ValueError as exc:
            raise ValueError(f"session_name is not a valid template: {exc}") from None
        allowed = ", ".join(f"{{{name}}}" for name in sorted(SESSION_NAME_PLACEHOLDERS))
        for _, field, spec, conversion in parts:
            if field is not None and (field not in SESSION_NAME_PLACEHOLDERS or spec or conversion):
                shown = field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
                raise ValueError(
                    f"session_name placeholder {{{shown}}} is not allowed: use only {allowed}, "
                    "without conversion, format spec, attribute or index"
                )
        return session_name


def default_role_name(alias: str) -> str:
    """``reports-reader`` -> ``ReportsReader``: the name a ``create: true`` role gets."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_.]", alias) if part)


class RoleSpec(_Strict):
    create: StrictBool = False
    arn: str | None = None
    role_name: RoleName | None = None  # extension: name of a created role (default: alias in PascalCase)
    max_session_duration: RoleMaxDuration = ROLE_CHAINING_LIMIT
    managed_policy_arns: tuple[ManagedPolicyArn, ...] = Field(default=(), max_length=20)
    external_id: ExternalId | None = None
    issuance: Issuance | None = None  # None: defaults.issuance

    @field_validator("arn")
    @classmethod
    def _role_arn(cls, arn: str | None) -> str | None:
        if arn is not None and not is_role_arn(arn):
            raise ValueError(f"{arn!r} is not an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>)")
        return arn

    @model_validator(mode="after")
    def _created_or_referenced(self) -> RoleSpec:
        if self.create == (self.arn is not None):
            raise ValueError("a role needs exactly one of `create: true` or `arn`")
        if not self.create and (self.managed_policy_arns or self.role_name):
            raise ValueError("managed_policy_arns and role_name apply only to roles with `create: true`")
        return self

    def arn_in(self, *, alias: str, partition: str, account: str) -> str:
        """The role's ARN; a created role lives in the deploying account under a fixed name."""
        if self.arn is not None:
            return self.arn
        return f"arn:{partition}:iam::{account}:role/{self.role_name or default_role_name(alias)}"


class Grant(_Strict):
    role: Alias
    max_duration_seconds: GrantDuration = ROLE_CHAINING_LIMIT


def _principal_arn(arn: str) -> str:
    role_arn = role_arn_of_session(arn)
    if role_arn is not None:
        # A session ARN (pasted from get-caller-identity, an SSO permission set's session) would
        # silently stand for every session of its role (CONTRACT §1): make the file say so.
        raise ValueError(
            f"{arn!r} is a role session, not a principal: list the role itself, {role_arn!r} "
            "(every session of that role is then this caller)"
        )
    if principal_key(arn) is None:
        raise ValueError(
            f"{arn!r} is not an IAM role or user ARN (arn:aws:iam::<12 digits>:role/<name> or :user/<name>)"
        )
    return arn


PrincipalArn = Annotated[str, AfterValidator(_principal_arn)]


IssuerName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
# A claim name as it appears in a token (``sub``, ``repository_owner``, ``kubernetes.io``...).
ClaimName = Annotated[str, StringConstraints(pattern=r"^[!-~]{1,128}$")]
ClaimPattern = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
Audience = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
MAX_TOKEN_AGE_CAP = 7 * 24 * 3600


def _issuer_url(url: str) -> str:
    problem = url_problem(url)
    if problem is not None:
        raise ValueError(problem)
    return url


def _algorithm(algorithm: str) -> str:
    problem = algorithm_problem(algorithm)
    if problem is not None:
        raise ValueError(problem)
    return algorithm


IssuerUrl = Annotated[str, StringConstraints(max_length=2048), AfterValidator(_issuer_url)]
Algorithm = Annotated[str, AfterValidator(_algorithm)]


class IssuerSpec(_Strict):
    """An OIDC issuer whose tokens may identify callers (CONTRACT §10)."""

    url: IssuerUrl  # must equal the tokens' ``iss`` exactly
    audiences: tuple[Audience, ...] = Field(min_length=1)  # a token's ``aud`` must contain one
    algorithms: tuple[Algorithm, ...] = Field(default=("RS256",), min_length=1)
    jwks_uri: IssuerUrl | None = None  # default: from {url}/.well-known/openid-configuration
    max_token_age_seconds: Annotated[int, Field(ge=1, le=MAX_TOKEN_AGE_CAP, strict=True)] | None = None


class OidcMatcher(_Strict):
    """Tokens of ``issuer`` whose claims all match ``claims`` are this caller."""

    issuer: IssuerName
    claims: dict[ClaimName, ClaimPattern] = Field(min_length=1)

    @field_validator("claims")
    @classmethod
    def _sub_constrained(cls, claims: dict[str, str]) -> dict[str, str]:
        problem = sub_problem(claims)
        if problem is not None:
            raise ValueError(problem)
        return claims

    def matches(self, verified_claims: Mapping[str, object]) -> bool:
        return claims_match(self.claims, verified_claims)


class CallerSpec(_Strict):
    # A caller is SigV4 principals, OIDC token matchers, or both (at least one of them).
    iam_principals: tuple[PrincipalArn, ...] = ()
    oidc: tuple[OidcMatcher, ...] = ()
    grants: tuple[Grant, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _some_identity(self) -> CallerSpec:
        if not self.iam_principals and not self.oidc:
            raise ValueError("a caller needs `iam_principals`, `oidc` matchers, or both")
        return self

    @field_validator("grants")
    @classmethod
    def _each_role_once(cls, grants: tuple[Grant, ...]) -> tuple[Grant, ...]:
        aliases = [grant.role for grant in grants]
        duplicates = sorted({alias for alias in aliases if aliases.count(alias) > 1})
        if duplicates:
            raise ValueError(f"role(s) {duplicates} granted more than once")
        return grants

    def grant_for(self, alias: str) -> Grant | None:
        return next((grant for grant in self.grants if grant.role == alias), None)


class Policy(_Strict):
    version: Literal[1]
    defaults: Defaults = Defaults()
    roles: dict[Alias, RoleSpec] = Field(min_length=1)
    issuers: dict[IssuerName, IssuerSpec] = Field(default_factory=dict)
    callers: dict[CallerName, CallerSpec] = Field(default_factory=dict)

    def issuance_of(self, alias: str) -> Issuance:
        """The role's own ``issuance``, else ``defaults.issuance``."""
        return self.roles[alias].issuance or self.defaults.issuance

    def callers_granted(self, alias: str) -> list[str]:
        """Names of the callers granted ``alias``, in file order."""
        return [name for name, spec in self.callers.items() if spec.grant_for(alias) is not None]

    def callers_by_principal(self) -> dict[PrincipalKey, str]:
        """Index from principal key to caller name (principals are unique across callers)."""
        return {
            key: name
            for name, spec in self.callers.items()
            for key in map(principal_key, spec.iam_principals)
            if key is not None
        }

    def oidc_matchers(self) -> dict[str, list[tuple[str, OidcMatcher]]]:
        """Index from issuer name to (caller name, matcher), in file order."""
        index: dict[str, list[tuple[str, OidcMatcher]]] = {}
        for name, spec in self.callers.items():
            for matcher in spec.oidc:
                index.setdefault(matcher.issuer, []).append((name, matcher))
        return index


def consistency_problems(policy: Policy) -> list[tuple[str, str]]:
    """Rules that span the file, as (path, message) pairs; empty when the policy is sound.

    Principals are compared as IAM identifies them (names unique ignoring case), so two
    spellings of one role cannot belong to two callers; run-time matching stays exact.
    """
    problems: list[tuple[str, str]] = []
    owner_of: dict[PrincipalKey, str] = {}
    owner_of_identity: dict[str, str] = {}  # SourceIdentity, lower-cased -> caller
    vended_arns, vended_names = _vended_roles(policy)
    for caller, spec in policy.callers.items():
        for index, grant in enumerate(spec.grants):
            if grant.role not in policy.roles:
                problems.append((f"callers.{caller}.grants.{index}.role", f"unknown role alias {grant.role!r}"))
        for index, arn in enumerate(spec.iam_principals):
            key = principal_key(arn)
            if key is None:
                continue
            path = f"callers.{caller}.iam_principals.{index}"
            entity = key.as_iam_sees_it()
            if owner_of.setdefault(entity, caller) != caller:
                problems.append((path, f"{arn} already belongs to caller {owner_of[entity]!r}"))
            alias = vended_arns.get(entity) or (vended_names.get(entity.name) if entity.kind == "role" else None)
            if alias is not None:
                problems.append(
                    (path, f"{arn} is vended by this policy (roles.{alias}): whoever gets it would act as {caller!r}")
                )
        problems.extend(_matcher_problems(policy, caller, spec))
        # Compared ignoring case: `Billing` and `billing` would be two SourceIdentities that a
        # reader of CloudTrail (or a case-insensitive condition) cannot tell apart.
        identity = source_identity_for(caller)
        other = owner_of_identity.setdefault(identity.lower(), caller)
        if other != caller:
            same = "same" if source_identity_for(other) == identity else "a case-insensitively equal"
            problems.append((f"callers.{caller}", f"{same} session identity {identity!r} as caller {other!r}"))
    problems.extend(_duplicate_matchers(policy))
    problems.extend(_duplicate_issuer_urls(policy))
    role_names: dict[str, str] = {}
    for alias, role in policy.roles.items():
        if role.external_id is not None and policy.issuance_of(alias) == WEB_IDENTITY:
            where = "issuance" if role.issuance is not None else "external_id"
            problems.append(
                (
                    f"roles.{alias}.{where}",
                    "a role with external_id cannot use web_identity issuance "
                    "(AssumeRoleWithWebIdentity has no ExternalId); set `issuance: assume_role` or drop external_id",
                )
            )
        if role.create:
            name = (role.role_name or default_role_name(alias)).lower()  # IAM role names ignore case
            if role_names.setdefault(name, alias) != alias:
                problems.append((f"roles.{alias}.role_name", f"role name clashes with roles.{role_names[name]}"))
    return problems


def _matcher_problems(policy: Policy, caller: str, spec: CallerSpec) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for index, matcher in enumerate(spec.oidc):
        if matcher.issuer not in policy.issuers:
            known = ", ".join(sorted(policy.issuers)) or "none defined under `issuers`"
            problems.append(
                (f"callers.{caller}.oidc.{index}.issuer", f"unknown issuer {matcher.issuer!r} (issuers: {known})")
            )
    return problems


def _duplicate_issuer_urls(policy: Policy) -> list[tuple[str, str]]:
    """A token names its issuer by ``iss`` alone: two issuers with one URL would leave the
    matchers of one of them unreachable."""
    first_with: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    for name, issuer in policy.issuers.items():
        first = first_with.setdefault(issuer.url, name)
        if first != name:
            problems.append((f"issuers.{name}.url", f"the same URL as issuers.{first}: a token's iss names one issuer"))
    return problems


def _duplicate_matchers(policy: Policy) -> list[tuple[str, str]]:
    """The same matcher under two callers would make every matching token ambiguous (403)."""
    problems: list[tuple[str, str]] = []
    seen: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
    for caller, spec in policy.callers.items():
        for index, matcher in enumerate(spec.oidc):
            key = (matcher.issuer, tuple(sorted(matcher.claims.items())))
            path = f"callers.{caller}.oidc.{index}"
            first = seen.setdefault(key, path)
            if first != path and not first.startswith(f"callers.{caller}.oidc."):
                problems.append((path, f"the same matcher as {first}: a matching token would be two callers"))
    return problems


def _vended_roles(policy: Policy) -> tuple[dict[PrincipalKey, str], dict[str, str]]:
    """The roles the policy vends, as IAM sees them: ``arn:`` roles by key, created roles by
    lower-cased name alone (their account is the deploying one, unknown until deploy)."""
    by_key: dict[PrincipalKey, str] = {}
    by_name: dict[str, str] = {}
    for alias, role in policy.roles.items():
        if role.arn is not None:
            key = principal_key(role.arn)
            if key is not None:
                by_key.setdefault(key.as_iam_sees_it(), alias)
        else:
            by_name.setdefault((role.role_name or default_role_name(alias)).lower(), alias)
    return by_key, by_name
