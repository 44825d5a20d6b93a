"""API Gateway's evaluation of a REST API's resource policy, for one invocation.

Pure: the gateway handler (apigw_policy_auth.py) builds an `InvokeRequest` and asks
`authorize_invoke`; statements are read with the IAM evaluator's own pieces
(iam_policy_eval: principals, wildcards, condition operators).

AWS's rules for a REST API (the "API Gateway resource policy and authorization" tables):
- an explicit Deny in the resource policy refuses the call, whoever makes it;
- an Allow that matches admits it;
- otherwise a SigV4 caller of the API's own account is admitted (its identity policies
  decide on AWS; LocalStack has none, so they are assumed to allow), a caller from another
  account is refused, and an anonymous caller (a method without authorization) is refused
  when the API has a resource policy;
- without a resource policy, anonymous and same-account callers pass, other accounts do not.

Action `execute-api:Invoke`, resource `arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/PATH`
(the path as requested, without its leading slash); a policy may write `execute-api:/...` for
`arn:...:API/...`. Condition keys: aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalType,
aws:PrincipalOrgID (only when the account's organization is configured), aws:SourceIp,
aws:userid. An anonymous caller has none of the principal keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .iam_policy_eval import (
    Caller,
    Decision,
    PolicyError,
    Refusal,
    conditions_match,
    parse_policy,
    principal_matches,
    wildcard_match,
)

INVOKE = "execute-api:Invoke"
SHORTHAND = "execute-api:/"


@dataclass(frozen=True)
class InvokeRequest:
    api_id: str
    stage: str
    http_method: str
    path: str  # as requested, e.g. "/credentials/reports-reader"
    region: str
    api_account: str
    caller: Caller | None  # None: anonymous (a method without AWS_IAM authorization)
    source_ip: str | None = None
    principal_org_id: str | None = None
    user_id: str | None = None
    partition: str = "aws"

    @property
    def api_arn_prefix(self) -> str:
        return f"arn:{self.partition}:execute-api:{self.region}:{self.api_account}:{self.api_id}/"

    @property
    def resource_arn(self) -> str:
        return f"{self.api_arn_prefix}{self.stage}/{self.http_method}/{self.path.lstrip('/')}"


def request_context(request: InvokeRequest) -> dict[str, list[str]]:
    """The condition keys API Gateway provides, lower-cased; absent when unknown."""
    context: dict[str, list[str]] = {}
    if request.source_ip:
        context["aws:sourceip"] = [request.source_ip]
    caller = request.caller
    if caller is not None:
        context["aws:principalarn"] = [caller.principal_arn]
        context["aws:principalaccount"] = [caller.account]
        context["aws:principaltype"] = [caller.principal_type]
        if request.principal_org_id:
            context["aws:principalorgid"] = [request.principal_org_id]
        if request.user_id:
            context["aws:userid"] = [request.user_id]
    return context


# ---------------------------------------------------------------------------- statements


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _names_anyone(principal: Any) -> bool:
    """Whether a Principal element names everyone, anonymous callers included."""
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return "*" in [str(p) for p in _as_list(principal.get("AWS"))]
    raise PolicyError(f"Principal must be '*' or an object, not {principal!r}")


def _principal_clause_matches(statement: Mapping[str, Any], caller: Caller | None) -> bool:
    if "Principal" in statement:
        principal = statement["Principal"]
        return _names_anyone(principal) if caller is None else principal_matches(principal, caller)
    if "NotPrincipal" in statement:
        principal = statement["NotPrincipal"]
        return not (_names_anyone(principal) if caller is None else principal_matches(principal, caller))
    raise PolicyError("a resource policy statement needs Principal or NotPrincipal")


def _action_clause_matches(statement: Mapping[str, Any]) -> bool:
    if "Action" in statement:
        return any(wildcard_match(str(p), INVOKE, ignore_case=True) for p in _as_list(statement["Action"]))
    if "NotAction" in statement:
        return not any(wildcard_match(str(p), INVOKE, ignore_case=True) for p in _as_list(statement["NotAction"]))
    raise PolicyError("statement has neither Action nor NotAction")


def expand_resource(pattern: str, request: InvokeRequest) -> str:
    """`execute-api:/STAGE/METHOD/PATH` is shorthand for this API's full ARN."""
    if pattern.startswith(SHORTHAND):
        return request.api_arn_prefix + pattern[len(SHORTHAND) :]
    return pattern


def _resource_clause_matches(statement: Mapping[str, Any], request: InvokeRequest) -> bool:
    arn = request.resource_arn

    def hit(patterns: Any) -> bool:
        return any(wildcard_match(expand_resource(str(p), request), arn) for p in _as_list(patterns))

    if "Resource" in statement:
        return hit(statement["Resource"])
    if "NotResource" in statement:
        return not hit(statement["NotResource"])
    raise PolicyError("a resource policy statement needs Resource or NotResource")


def evaluate(document: str | Mapping[str, Any], request: InvokeRequest) -> Decision:
    """The resource policy's own verdict: explicit deny, allow, or no match (implicit deny)."""
    context: Mapping[str, Sequence[str]] = request_context(request)
    allowed = False
    for statement in _as_list(parse_policy(document).get("Statement")):
        if not isinstance(statement, Mapping):
            raise PolicyError("Statement must be an object or a list of objects")
        if not (
            _principal_clause_matches(statement, request.caller)
            and _action_clause_matches(statement)
            and _resource_clause_matches(statement, request)
            and conditions_match(statement.get("Condition") or {}, context)
        ):
            continue
        effect = statement.get("Effect")
        if effect == "Deny":
            return Decision.EXPLICIT_DENY
        if effect != "Allow":
            raise PolicyError(f"Effect must be Allow or Deny, not {effect!r}")
        allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


# ---------------------------------------------------------------------------- the gateway's decision


def masked_resource_arn(request: InvokeRequest) -> str:
    """The resource ARN as API Gateway prints it in a denial: the account masked but for
    its last four digits (`arn:aws:execute-api:us-east-1:********6200:abc123/prod/GET/pets`)."""
    account = request.api_account
    masked = "*" * 8 + account[-4:]
    return request.resource_arn.replace(f":{account}:", f":{masked}:", 1)


def denial_message(request: InvokeRequest, *, explicit: bool) -> str:
    who = "anonymous" if request.caller is None else request.caller.arn
    message = f"User: {who} is not authorized to perform: {INVOKE} on resource: {masked_resource_arn(request)}"
    return f"{message} with an explicit deny" if explicit else message


def _denied(request: InvokeRequest, *, explicit: bool) -> Refusal:
    return Refusal("AccessDeniedException", denial_message(request, explicit=explicit), 403)


def authorize_invoke(document: str | Mapping[str, Any] | None, request: InvokeRequest) -> Refusal | None:
    """None when API Gateway lets the call through to the integration, else its 403."""
    same_account = request.caller is not None and request.caller.account == request.api_account
    if not document:
        # no resource policy: IAM alone decides (assumed to allow in the caller's own
        # account); nothing grants another account, and anonymous methods are open
        if request.caller is None or same_account:
            return None
        return _denied(request, explicit=False)
    try:
        decision = evaluate(document, request)
    except PolicyError:
        # fail closed: a policy we cannot read must not let a test pass that AWS would fail
        return _denied(request, explicit=False)
    if decision is Decision.EXPLICIT_DENY:
        return _denied(request, explicit=True)
    if decision is Decision.ALLOW or same_account:
        return None
    return _denied(request, explicit=False)


def organization_of(account: str, setting: str) -> str | None:
    """The organization an account belongs to, from a setting like
    `o-abc123=111111111111,222222222222;o-def456=333333333333` (LocalStack knows none)."""
    for entry in setting.split(";"):
        org, _, accounts = entry.partition("=")
        if account in {a.strip() for a in accounts.split(",")} and org.strip():
            return org.strip()
    return None
