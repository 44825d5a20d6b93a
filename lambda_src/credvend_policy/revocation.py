"""Per-caller revocation (CONTRACT §11): the inline policy ``credvend-revocations``.

Every session credvend issues carries the caller as its SourceIdentity, so one statement
per caller on a vended role denies everything to that caller's sessions issued before a
moment, and to nobody else's:

    {"Sid": "...", "Effect": "Deny", "Action": "*", "Resource": "*",
     "Condition": {"StringEquals": {"aws:SourceIdentity": "<caller's SourceIdentity>"},
                   "DateLessThan": {"aws:TokenIssueTime": "<TIME>"}}}

The caller's next vend is a session issued after TIME: it works. SourceIdentity persists
through role chaining, so sessions chained from a revoked one are denied on this role too.
The policy is never declared in the stack's template, so CloudFormation does not own it
and a later ``cdk deploy`` leaves it alone.

Pure: documents in, documents out. ``credvend revoke`` (client) applies them with the
operator's own credentials; the same statement is printed for an external role's owner.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from credvend_policy.sts_names import source_identity_for

POLICY_NAME = "credvend-revocations"
SID_PREFIX = "CredvendRevoke"
SOURCE_IDENTITY_KEY = "aws:SourceIdentity"
ISSUE_TIME_KEY = "aws:TokenIssueTime"
# IAM's quota on a role's inline policies, all of them together (non-whitespace characters).
ROLE_INLINE_POLICIES_QUOTA = 10_240
_SID_UNSAFE = re.compile(r"[^A-Za-z0-9]")


@dataclass(frozen=True, slots=True)
class Revocation:
    """One caller's sessions issued before ``before`` are denied."""

    source_identity: str
    before: datetime


def revocation_time(moment: datetime) -> str:
    """``2026-12-03T08:00:01Z``. IAM compares ``aws:TokenIssueTime`` at sub-second precision;
    written in whole seconds, the moment is rounded *up*, so a session issued in the same
    second just before the revocation is revoked too (never the other way round)."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """ISO 8601 with a zone (``Z`` or an offset); naive times are refused (ambiguous)."""
    parsed = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone: write it as 2026-12-03T08:00:00Z")
    return parsed.astimezone(UTC)


def statement_id(source_identity: str) -> str:
    """A Sid unique per caller (Sids are alphanumeric): readable prefix plus a hash."""
    digest = hashlib.sha256(source_identity.encode()).hexdigest()[:8]
    return f"{SID_PREFIX}{_SID_UNSAFE.sub('', source_identity)[:48]}{digest}"


def revocation_statement(caller: str, before: datetime) -> dict[str, Any]:
    """The Deny for ``caller`` (its name in the policy file), sessions issued before ``before``."""
    source_identity = source_identity_for(caller)
    return {
        "Sid": statement_id(source_identity),
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {
            "StringEquals": {SOURCE_IDENTITY_KEY: source_identity},
            "DateLessThan": {ISSUE_TIME_KEY: revocation_time(before)},
        },
    }


def _statements(document: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not document:
        return []
    statements = document.get("Statement") or []
    return [dict(s) for s in (statements if isinstance(statements, list) else [statements])]


def revoked_identity(statement: Mapping[str, Any]) -> str | None:
    """The SourceIdentity a revocation statement names (None for any other statement)."""
    condition = statement.get("Condition")
    if statement.get("Effect") != "Deny" or not isinstance(condition, Mapping):
        return None
    equals = condition.get("StringEquals")
    value = equals.get(SOURCE_IDENTITY_KEY) if isinstance(equals, Mapping) else None
    return value if isinstance(value, str) else None


def revocations(document: Mapping[str, Any] | None) -> list[Revocation]:
    found = []
    for statement in _statements(document):
        identity = revoked_identity(statement)
        condition = statement.get("Condition") or {}
        before = (condition.get("DateLessThan") or {}).get(ISSUE_TIME_KEY)
        if identity is not None and isinstance(before, str):
            found.append(Revocation(identity, parse_time(before)))
    return found


def with_revocation(document: Mapping[str, Any] | None, statement: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` with ``statement`` in it: one statement per caller, so a caller's earlier
    revocation is replaced; every other statement is kept as it was."""
    identity = revoked_identity(statement)
    kept = [s for s in _statements(document) if revoked_identity(s) != identity]
    return {"Version": "2012-10-17", "Statement": [*kept, dict(statement)]}


def without_revocation(document: Mapping[str, Any] | None, caller: str) -> dict[str, Any] | None:
    """``document`` without ``caller``'s revocation; None when nothing is left (delete it)."""
    identity = source_identity_for(caller)
    kept = [s for s in _statements(document) if revoked_identity(s) != identity]
    return {"Version": "2012-10-17", "Statement": kept} if kept else None


def policy_size(document: Mapping[str, Any]) -> int:
    """Characters IAM counts against the inline-policy quota (whitespace is not counted)."""
    import json

    return len(re.sub(r"\s", "", json.dumps(document)))
