"""Explicit Deny statements of a role's inline policies, for a request signed by a session of
that role. Pure: no LocalStack imports (revocation.py is the hook), unit-tested on its own.

What AWS does: an explicit Deny in any identity-based policy of the role wins over every
Allow, for every service. Community LocalStack enforces no identity policy at all, so a
credvend revocation (CONTRACT §11: Deny * on * for one caller's SourceIdentity, sessions
issued before a time) would change nothing there. This evaluates exactly the part that
revocations need, with the condition operators of ``iam_policy_eval`` (the trust-policy
evaluator): ``aws:SourceIdentity``, ``aws:TokenIssueTime``, ``aws:PrincipalArn``,
``aws:PrincipalAccount``, ``aws:PrincipalType`` and ``aws:userid`` are in the context.

Scope, on purpose: Deny statements only (LocalStack allows everything else anyway), whose
Resource is ``*`` (a request's resource ARN is not known at this layer, so a statement naming
resources is skipped rather than guessed), and statements this evaluator can read: one it
cannot (an operator it does not implement) is skipped and reported, never turned into a
denial of everything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from .iam_policy_eval import PolicyError, conditions_match, parse_policy, wildcard_match

# AWS answers GetCallerIdentity whatever policies say ("no permissions are required").
ALWAYS_ALLOWED = frozenset({"sts:getcalleridentity"})


@dataclass(frozen=True)
class Session:
    """A session LocalStack issued, as IAM's condition keys see it."""

    arn: str  # arn:aws:sts::ACCT:assumed-role/ROLE/SESSION
    account: str
    role_arn: str  # aws:PrincipalArn
    user_id: str | None = None
    source_identity: str | None = None
    issued_at: datetime | None = None  # aws:TokenIssueTime (absent when unknown)


@dataclass(frozen=True)
class Denial:
    policy_name: str
    sid: str | None
    message: str


def iso_time(moment: datetime) -> str:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def session_context(session: Session) -> dict[str, list[str]]:
    context = {
        "aws:principalarn": [session.role_arn],
        "aws:principalaccount": [session.account],
        "aws:principaltype": ["AssumedRole"],
    }
    if session.user_id:
        context["aws:userid"] = [session.user_id]
    if session.source_identity is not None:
        context["aws:sourceidentity"] = [session.source_identity]
    if session.issued_at is not None:
        context["aws:tokenissuetime"] = [iso_time(session.issued_at)]
    return context


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _action_matches(statement: Mapping[str, Any], action: str) -> bool:
    if "Action" in statement:
        return any(wildcard_match(str(p), action, ignore_case=True) for p in _as_list(statement["Action"]))
    if "NotAction" in statement:
        return not any(wildcard_match(str(p), action, ignore_case=True) for p in _as_list(statement["NotAction"]))
    return False


def _on_every_resource(statement: Mapping[str, Any]) -> bool:
    return "NotResource" not in statement and "*" in [str(r) for r in _as_list(statement.get("Resource"))]


@lru_cache(maxsize=256)
def _parsed_text(document: str) -> Mapping[str, Any]:
    """Role policies are read on every request and change rarely: parse each text once."""
    return parse_policy(document)


def _parsed(document: str | Mapping[str, Any]) -> Mapping[str, Any]:
    return _parsed_text(document) if isinstance(document, str) else parse_policy(document)


def explicit_deny(
    policies: Mapping[str, str | Mapping[str, Any]],
    action: str,
    session: Session,
    *,
    on_unreadable: Callable[[str, str], None] = lambda _name, _why: None,
) -> Denial | None:
    """The first Deny among ``policies`` (name -> document) that applies to ``action`` by
    ``session``, or None."""
    if action.lower() in ALWAYS_ALLOWED:
        return None
    context: Mapping[str, Sequence[str]] = session_context(session)
    for name, document in policies.items():
        try:
            statements = _as_list(_parsed(document).get("Statement"))
        except PolicyError as exc:
            on_unreadable(name, str(exc))
            continue
        for statement in statements:
            if not isinstance(statement, Mapping) or statement.get("Effect") != "Deny":
                continue
            if not _on_every_resource(statement) or not _action_matches(statement, action):
                continue
            try:
                applies = conditions_match(statement.get("Condition") or {}, context)
            except PolicyError as exc:
                on_unreadable(name, str(exc))
                continue
            if applies:
                message = (
                    f"User: {session.arn} is not authorized to perform: {action} "
                    "with an explicit deny in an identity-based policy"
                )
                return Denial(name, statement.get("Sid"), message)
    return None


def access_denied_code(protocol: str | None) -> str:
    """AWS's error code for an authorization failure: JSON protocols use the
    ``...Exception`` form, query and REST-XML services (S3, STS, IAM, SQS) ``AccessDenied``."""
    return "AccessDeniedException" if protocol in ("json", "rest-json", "smithy-rpc-v2-cbor") else "AccessDenied"
