"""Evaluate an IAM role trust policy for one sts:AssumeRole request, the way IAM does.

Pure: no LocalStack or AWS imports, so it is unit-tested on its own and the LocalStack
hook (sts_rules.py) only has to translate a request into `AssumeRoleRequest`.

Scope is what a trust policy can contain and what credvend's stacks use: AWS principals,
Allow/Deny, Action/NotAction, and the String/Numeric/Date/Bool/Null/Arn condition operators with
the ForAnyValue:/ForAllValues: qualifiers and the IfExists suffix. Identity policies of the
caller, permission boundaries, SCPs and policy variables are out of scope.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import unquote

ASSUME_ROLE = "sts:AssumeRole"
TAG_SESSION = "sts:TagSession"
SET_SOURCE_IDENTITY = "sts:SetSourceIdentity"

# WebIdentityUser: an AssumeRoleWithWebIdentity caller, named by its IAM OIDC provider's ARN
PrincipalType = Literal["Account", "User", "AssumedRole", "FederatedUser", "WebIdentityUser"]


class PolicyError(ValueError):
    """The policy cannot be evaluated (malformed, or uses an operator we do not implement).

    Callers must fail closed on it: a fidelity layer that silently allowed what it could not
    read would let tests pass that AWS would fail.
    """


@dataclass(frozen=True)
class Caller:
    """Who signed the AssumeRole request."""

    arn: str  # as STS names it in errors: user ARN, assumed-role session ARN, account root
    account: str
    principal_type: PrincipalType
    # aws:PrincipalArn — for a role session this is the role's ARN, not the session's
    principal_arn: str
    # the source identity already set on the caller's session (role chaining)
    source_identity: str | None = None

    @property
    def role_name(self) -> str | None:
        """Role name of an assumed-role session (its ARN is .../assumed-role/ROLE/SESSION)."""
        if self.principal_type != "AssumedRole":
            return None
        resource = self.arn.split(":", 5)[-1]
        parts = resource.split("/")
        return parts[1] if len(parts) >= 3 else None


@dataclass(frozen=True)
class AssumeRoleRequest:
    caller: Caller
    role_arn: str
    role_session_name: str
    duration_seconds: int | None = None
    external_id: str | None = None
    source_identity: str | None = None  # as sent; see effective_source_identity
    tags: Mapping[str, str] = field(default_factory=dict)


class Decision(Enum):
    ALLOW = "Allow"
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"


# ---------------------------------------------------------------------------- request


def required_actions(request: AssumeRoleRequest) -> tuple[str, ...]:
    """Every action the trust policy must allow for this request to succeed."""
    actions = [ASSUME_ROLE]
    if request.tags:
        actions.append(TAG_SESSION)
    # an inherited source identity is set on the new session too, so it needs the same
    # permission as one sent explicitly
    if effective_source_identity(request) is not None:
        actions.append(SET_SOURCE_IDENTITY)
    return tuple(actions)


def request_context(request: AssumeRoleRequest) -> dict[str, list[str]]:
    """The condition keys IAM provides for AssumeRole, lower-cased (key names are
    case-insensitive). A key is absent, not empty, when the request does not carry it.

    sts:DurationSeconds is deliberately absent: IAM documents it only for bearer-token
    and GetWebIdentityToken requests, so an AssumeRole never carries it.
    """
    caller = request.caller
    context: dict[str, list[str]] = {
        "sts:rolesessionname": [request.role_session_name],
        "aws:principalarn": [caller.principal_arn],
        "aws:principalaccount": [caller.account],
        "aws:principaltype": [caller.principal_type],
    }
    if request.external_id is not None:
        context["sts:externalid"] = [request.external_id]
    if (source_identity := effective_source_identity(request)) is not None:
        context["sts:sourceidentity"] = [source_identity]
    if caller.source_identity is not None:
        context["aws:sourceidentity"] = [caller.source_identity]
    if request.tags:
        context["aws:tagkeys"] = list(request.tags)
        for key, value in request.tags.items():
            context[f"aws:requesttag/{key.lower()}"] = [value]
    return context


# ---------------------------------------------------------------------------- policy


def parse_policy(document: str | Mapping[str, Any]) -> dict[str, Any]:
    """Accept a dict, JSON, or URL-quoted JSON (how LocalStack stores CreateRole's)."""
    if isinstance(document, Mapping):
        return dict(document)
    text = document.strip()
    if not text.startswith("{"):
        text = unquote(text)
    try:
        policy = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"policy is not JSON: {exc}") from exc
    if not isinstance(policy, dict):
        raise PolicyError("policy is not a JSON object")
    return policy


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _statements(policy: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statements = _as_list(policy.get("Statement"))
    if not all(isinstance(s, Mapping) for s in statements):
        raise PolicyError("Statement must be an object or a list of objects")
    return statements


def evaluate(
    document: str | Mapping[str, Any],
    action: str,
    caller: Caller,
    context: Mapping[str, Sequence[str]],
) -> Decision:
    """IAM's evaluation of one policy for one action: an explicit Deny wins, then any
    Allow, otherwise the default (implicit) deny."""
    allowed = False
    for statement in _statements(parse_policy(document)):
        if not _statement_applies(statement, action, caller, context):
            continue
        effect = statement.get("Effect")
        if effect == "Deny":
            return Decision.EXPLICIT_DENY
        if effect == "Allow":
            allowed = True
        else:
            raise PolicyError(f"Effect must be Allow or Deny, not {effect!r}")
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def first_denied_action(document: str | Mapping[str, Any], request: AssumeRoleRequest) -> str | None:
    """The first required action the trust policy does not allow, or None if all are."""
    context = request_context(request)
    for action in required_actions(request):
        if evaluate(document, action, request.caller, context) is not Decision.ALLOW:
            return action
    return None


def _statement_applies(
    statement: Mapping[str, Any],
    action: str,
    caller: Caller,
    context: Mapping[str, Sequence[str]],
) -> bool:
    return (
        _principal_clause_matches(statement, caller)
        and _action_clause_matches(statement, action)
        and conditions_match(statement.get("Condition") or {}, context)
    )


# ---------------------------------------------------------------------------- principal


def _principal_clause_matches(statement: Mapping[str, Any], caller: Caller) -> bool:
    if "Principal" in statement:
        return principal_matches(statement["Principal"], caller)
    if "NotPrincipal" in statement:
        return not principal_matches(statement["NotPrincipal"], caller)
    # a trust policy statement without a principal names nobody
    return False


def principal_matches(principal: Any, caller: Caller) -> bool:
    """Whether a Principal element names the caller. Only the AWS key can name an IAM
    caller, only the Federated key a web identity caller (by its OIDC provider's ARN);
    Service/CanonicalUser principals never match either."""
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        raise PolicyError(f"Principal must be '*' or an object, not {principal!r}")
    if caller.principal_type == "WebIdentityUser":
        return any(str(p) == caller.principal_arn for p in _as_list(principal.get("Federated")))
    return any(_aws_principal_matches(str(p), caller) for p in _as_list(principal.get("AWS")))


_IAM_ARN = re.compile(r"^arn:[^:]+:iam::(\d{12}):(root|role/.+|user/.+)$")
_STS_SESSION_ARN = re.compile(r"^arn:[^:]+:sts::(\d{12}):assumed-role/[^/]+/.+$")


def _aws_principal_matches(principal: str, caller: Caller) -> bool:
    if principal == "*":
        return True
    # the account itself (root or bare id) delegates to every identity in that account
    if re.fullmatch(r"\d{12}", principal):
        return principal == caller.account
    if _STS_SESSION_ARN.match(principal):
        return principal == caller.arn
    match = _IAM_ARN.match(principal)
    if not match:
        return False
    account, resource = match.groups()
    if account != caller.account:
        return False
    if resource == "root":
        return True
    kind, name = resource.split("/", 1)[0], resource.rsplit("/", 1)[-1]
    if kind == "role":
        # a role principal is matched by any session of that role; the session ARN drops
        # the role's path, so compare by name
        return caller.principal_type == "AssumedRole" and caller.role_name == name
    return caller.principal_type == "User" and caller.principal_arn.rsplit("/", 1)[-1] == name


# ---------------------------------------------------------------------------- action


def _action_clause_matches(statement: Mapping[str, Any], action: str) -> bool:
    if "Action" in statement:
        return any(wildcard_match(p, action, ignore_case=True) for p in _as_list(statement["Action"]))
    if "NotAction" in statement:
        return not any(wildcard_match(p, action, ignore_case=True) for p in _as_list(statement["NotAction"]))
    raise PolicyError("statement has neither Action nor NotAction")


@lru_cache(maxsize=1024)
def _wildcard_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # IAM's wildcards: * any run of characters, ? exactly one; everything else literal
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _wildcard_regex(str(pattern), ignore_case).fullmatch(value) is not None


# ---------------------------------------------------------------------------- conditions


def _to_number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def matches(actual: str, expected: str) -> bool:
        a, e = _to_number(actual), _to_number(expected)
        # a non-numeric value never satisfies a numeric operator
        return a is not None and e is not None and compare(a, e)

    return matches


def _to_time(value: Any) -> float | None:
    """IAM's date values: ISO 8601 (``2026-12-03T08:00:00Z``, fractions allowed) or epoch seconds."""
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _date(compare: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def matches(actual: str, expected: str) -> bool:
        a, e = _to_time(actual), _to_time(expected)
        return a is not None and e is not None and compare(a, e)

    return matches


def _bool_match(actual: str, expected: str) -> bool:
    return str(actual).lower() == str(expected).lower()


def _ip_match(actual: str, expected: str) -> bool:
    # aws:SourceIp against an address or CIDR block; anything unparsable never matches
    try:
        return ipaddress.ip_address(actual) in ipaddress.ip_network(expected, strict=False)
    except ValueError:
        return False


# Each base operator is a positive per-value test, plus whether the operator negates it
# (StringNotEquals x [a, b] means "equals neither a nor b").
_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "stringequals": (lambda a, e: a == e, False),
    "stringnotequals": (lambda a, e: a == e, True),
    "stringequalsignorecase": (lambda a, e: a.casefold() == e.casefold(), False),
    "stringnotequalsignorecase": (lambda a, e: a.casefold() == e.casefold(), True),
    "stringlike": (lambda a, e: wildcard_match(e, a), False),
    "stringnotlike": (lambda a, e: wildcard_match(e, a), True),
    # ARN operators compared as whole strings: close enough for trust policies, whose
    # ARN keys (aws:PrincipalArn) are full ARNs
    "arnequals": (lambda a, e: wildcard_match(e, a), False),
    "arnlike": (lambda a, e: wildcard_match(e, a), False),
    "arnnotequals": (lambda a, e: wildcard_match(e, a), True),
    "arnnotlike": (lambda a, e: wildcard_match(e, a), True),
    "numericequals": (_numeric(lambda a, e: a == e), False),
    "numericnotequals": (_numeric(lambda a, e: a == e), True),
    "numericlessthan": (_numeric(lambda a, e: a < e), False),
    "numericlessthanequals": (_numeric(lambda a, e: a <= e), False),
    "numericgreaterthan": (_numeric(lambda a, e: a > e), False),
    "numericgreaterthanequals": (_numeric(lambda a, e: a >= e), False),
    "bool": (_bool_match, False),
    "dateequals": (_date(lambda a, e: a == e), False),
    "datenotequals": (_date(lambda a, e: a == e), True),
    "datelessthan": (_date(lambda a, e: a < e), False),
    "datelessthanequals": (_date(lambda a, e: a <= e), False),
    "dategreaterthan": (_date(lambda a, e: a > e), False),
    "dategreaterthanequals": (_date(lambda a, e: a >= e), False),
    "ipaddress": (_ip_match, False),
    "notipaddress": (_ip_match, True),
}


@dataclass(frozen=True)
class _Operator:
    name: str  # lower-cased base name, e.g. "stringequals" or "null"
    qualifier: Literal["", "foranyvalue", "forallvalues"]
    if_exists: bool


def parse_operator(raw: str) -> _Operator:
    qualifier, _, base = raw.rpartition(":")
    qualifier = qualifier.lower()
    if qualifier not in ("", "foranyvalue", "forallvalues"):
        raise PolicyError(f"unknown condition set qualifier {qualifier!r}")
    name = base.lower()
    if_exists = name.endswith("ifexists") and name != "ifexists"
    if if_exists:
        name = name.removesuffix("ifexists")
    if name != "null" and name not in _OPERATORS:
        raise PolicyError(f"unsupported condition operator {raw!r}")
    return _Operator(name, qualifier, if_exists)  # type: ignore[arg-type]


def conditions_match(condition: Mapping[str, Any], context: Mapping[str, Sequence[str]]) -> bool:
    """All operators, and all keys under each, must hold (AND); the values listed under
    one key are alternatives (OR)."""
    if not isinstance(condition, Mapping):
        raise PolicyError("Condition must be an object")
    lowered = {k.lower(): list(v) for k, v in context.items()}
    for raw_operator, block in condition.items():
        operator = parse_operator(raw_operator)
        if not isinstance(block, Mapping):
            raise PolicyError(f"condition block of {raw_operator} must be an object")
        for key, expected in block.items():
            actual = lowered.get(key.lower())
            expected_values = [_policy_value(v) for v in _as_list(expected)]
            if not condition_holds(operator, actual, expected_values):
                return False
    return True


def _policy_value(value: Any) -> str:
    # JSON booleans and numbers are compared as IAM does: by their string form
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def condition_holds(operator: _Operator, actual: Sequence[str] | None, expected: Sequence[str]) -> bool:
    """One operator on one key. `actual` is None when the request lacks the key."""
    if operator.name == "null":
        # Null tests presence itself: "true" means the key must be absent
        is_absent = not actual
        return any(is_absent == (e.lower() == "true") for e in expected)
    test, negated = _OPERATORS[operator.name]
    if not actual:
        # an absent key fails the test, except where IAM says otherwise: IfExists,
        # ForAllValues (vacuously true over the empty set), and a plain negated operator
        # ("if the policy condition requires that the key is not matched, such as
        # StringNotLike, and the key is not present, the condition is true" — IAM's
        # condition-operator reference)
        return operator.if_exists or operator.qualifier == "forallvalues" or (negated and not operator.qualifier)

    def value_passes(value: str) -> bool:
        hit = any(test(value, e) for e in expected)
        return not hit if negated else hit

    if operator.qualifier == "forallvalues":
        return all(value_passes(v) for v in actual)
    if operator.qualifier == "foranyvalue":
        return any(value_passes(v) for v in actual)
    # single-valued use: a negated operator must hold for every value, a positive one
    # for any (the same thing for the usual one-value key)
    return all(map(value_passes, actual)) if negated else any(map(value_passes, actual))


def denial_message(caller: Caller, action: str, role_arn: str) -> str:
    """AWS's wording for a trust-policy denial."""
    return f"User: {caller.arn} is not authorized to perform: {action} on resource: {role_arn}"


# ---------------------------------------------------------------------------- STS's decision

MIN_DURATION = 900
MAX_DURATION = 43200
DEFAULT_DURATION = 3600
# AWS caps a session assumed from another role session at one hour, whatever the role allows
ROLE_CHAINING_LIMIT = 3600

CHAINING_MESSAGE = "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
MAX_SESSION_MESSAGE = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."


@dataclass(frozen=True)
class TargetRole:
    arn: str
    trust_policy: str | Mapping[str, Any]
    max_session_duration: int = DEFAULT_DURATION


@dataclass(frozen=True)
class Refusal:
    """An STS error response: code, message, HTTP status."""

    code: str
    message: str
    status: int


def _validation(message: str) -> Refusal:
    return Refusal("ValidationError", message, 400)


def _access_denied(caller: Caller, action: str, role_arn: str) -> Refusal:
    return Refusal("AccessDenied", denial_message(caller, action, role_arn), 403)


def effective_source_identity(request: AssumeRoleRequest) -> str | None:
    """The source identity the new session carries. Once set it persists into every
    chained session: a chained request that omits it inherits the caller's."""
    if request.source_identity is not None:
        return request.source_identity
    return request.caller.source_identity


def changes_source_identity(request: AssumeRoleRequest) -> bool:
    """A chained request may repeat its session's source identity, never replace it."""
    inherited, sent = request.caller.source_identity, request.source_identity
    return inherited is not None and sent is not None and sent != inherited


def decide_assume_role(request: AssumeRoleRequest, role: TargetRole | None) -> Refusal | None:
    """STS's verdict on an AssumeRole, in the order this layer applies the rules:

    1. parameter validation (DurationSeconds 900..43200) — a malformed request is rejected
       before anything is looked up;
    2. authorization by the trust policy (a missing role is denied the same way, so the
       caller cannot probe which roles exist);
    3. the role-chaining cap, then the role's MaxSessionDuration — so only a caller the
       role trusts learns about its session limits.

    Changing an inherited source identity is an authorization failure on
    sts:SetSourceIdentity.
    """
    duration = request.duration_seconds
    if duration is not None and not MIN_DURATION <= duration <= MAX_DURATION:
        bound = (
            f"greater than or equal to {MIN_DURATION}"
            if duration < MIN_DURATION
            else f"less than or equal to {MAX_DURATION}"
        )
        return _validation(
            f"1 validation error detected: Value '{duration}' at 'durationSeconds' "
            f"failed to satisfy constraint: Member must have value {bound}"
        )
    if role is None:
        return _access_denied(request.caller, ASSUME_ROLE, request.role_arn)
    if changes_source_identity(request):
        return _access_denied(request.caller, SET_SOURCE_IDENTITY, role.arn)
    try:
        denied = first_denied_action(role.trust_policy, request)
    except PolicyError:
        # fail closed: an unreadable policy must not let a test pass that AWS would fail
        denied = ASSUME_ROLE
    if denied is not None:
        return _access_denied(request.caller, denied, role.arn)
    duration = duration or DEFAULT_DURATION
    if request.caller.principal_type == "AssumedRole" and duration > ROLE_CHAINING_LIMIT:
        return _validation(CHAINING_MESSAGE)
    if duration > role.max_session_duration:
        return _validation(MAX_SESSION_MESSAGE)
    return None
