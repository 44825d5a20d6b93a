"""``credvend revoke``: deny one caller's live sessions on the roles credvend vends (CONTRACT §11).

Runs with the operator's own AWS credentials (the default chain, ``--profile``): it puts,
reads or deletes the inline policy ``credvend-revocations`` on each affected created role
(IAM ``PutRolePolicy``/``GetRolePolicy``/``DeleteRolePolicy``; the stack never declares that
policy, so CloudFormation does not own it and ``cdk deploy`` keeps it). A role credvend does
not own (``arn:`` in the policy file) gets nothing applied: the statement is printed for its
owner. The documents come from ``credvend_policy.revocation``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from credvend_client.errors import CredvendError, UpstreamError, UsageError


@dataclass(frozen=True)
class Target:
    alias: str
    role_name: str | None  # created roles: the name the stack gave it
    role_arn: str | None  # external roles


def targets(policy: Any, *, caller: str, aliases: Sequence[str] | None) -> list[Target]:
    """The roles to act on: ``aliases``, else every role the policy grants ``caller``."""
    from credvend_policy.model import default_role_name

    if aliases:
        unknown = sorted(set(aliases) - set(policy.roles))
        if unknown:
            raise UsageError("UnknownRole", f"not a role in the policy file: {', '.join(unknown)}")
        chosen = list(dict.fromkeys(aliases))
    else:
        spec = policy.callers.get(caller)
        if spec is None:
            raise UsageError(
                "UnknownCaller",
                f"{caller!r} is not a caller in the policy file; name the roles its sessions may hold with --role",
            )
        chosen = [grant.role for grant in spec.grants]
    result = []
    for alias in chosen:
        role = policy.roles[alias]
        if role.arn is None:
            result.append(Target(alias, role.role_name or default_role_name(alias), None))
        else:
            result.append(Target(alias, None, role.arn))
    return result


def _read(iam: Any, role_name: str) -> dict[str, Any] | None:
    try:
        answer = iam.get_role_policy(RoleName=role_name, PolicyName=_policy_name())
    except Exception as exc:
        if _error_code(exc) == "NoSuchEntity":
            iam.get_role(RoleName=role_name)  # the role itself must exist: raises NoSuchEntity if not
            return None
        raise
    document = answer["PolicyDocument"]
    if isinstance(document, str):  # botocore decodes it; a raw client may not
        from urllib.parse import unquote

        document = json.loads(unquote(document))
    return dict(document)


def _policy_name() -> str:
    from credvend_policy.revocation import POLICY_NAME

    return POLICY_NAME


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def _iam_failure(exc: Exception, target: Target) -> CredvendError:
    code = _error_code(exc) or type(exc).__name__
    if code == "NoSuchEntity":
        return UsageError(
            "NoSuchRole", f"role {target.role_name} ({target.alias}) does not exist: is the stack deployed?"
        )
    return UpstreamError(code, f"IAM refused or failed for role {target.role_name} ({target.alias})")


def revoke(iam: Any, policy: Any, *, caller: str, aliases: Sequence[str] | None, before: datetime) -> dict[str, Any]:
    from credvend_policy import source_identity_for
    from credvend_policy.revocation import (
        POLICY_NAME,
        ROLE_INLINE_POLICIES_QUOTA,
        policy_size,
        revocation_statement,
        with_revocation,
    )

    statement = revocation_statement(caller, before)
    answer: dict[str, Any] = {
        "Caller": caller,
        "SourceIdentity": source_identity_for(caller),
        "Before": statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"],
        "Revoked": [],
        "External": [],
    }
    for target in targets(policy, caller=caller, aliases=aliases):
        if target.role_name is None:
            answer["External"].append(_external(target, statement))
            continue
        try:
            document = with_revocation(_read(iam, target.role_name), statement)
            if policy_size(document) > ROLE_INLINE_POLICIES_QUOTA:
                raise UsageError(
                    "PolicyTooLarge",
                    f"{POLICY_NAME} on {target.role_name} would exceed IAM's {ROLE_INLINE_POLICIES_QUOTA}-character "
                    "quota for a role's inline policies: clear old revocations (--clear) first",
                )
            iam.put_role_policy(RoleName=target.role_name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(document))
        except CredvendError:
            raise
        except Exception as exc:
            raise _iam_failure(exc, target) from None
        answer["Revoked"].append({"Role": target.alias, "RoleName": target.role_name, "Policy": POLICY_NAME})
    return answer


def _external(target: Target, statement: dict[str, Any]) -> dict[str, Any]:
    from credvend_policy.revocation import POLICY_NAME

    return {
        "Role": target.alias,
        "RoleArn": target.role_arn,
        "Note": f"credvend does not own this role: its owner must add this statement to an inline policy "
        f"(e.g. {POLICY_NAME}) on the role",
        "Statement": statement,
    }


def clear(iam: Any, policy: Any, *, caller: str, aliases: Sequence[str] | None) -> dict[str, Any]:
    from credvend_policy import source_identity_for
    from credvend_policy.revocation import POLICY_NAME, revoked_identity, without_revocation

    identity = source_identity_for(caller)
    answer: dict[str, Any] = {"Caller": caller, "SourceIdentity": identity, "Cleared": [], "External": []}
    for target in targets(policy, caller=caller, aliases=aliases):
        if target.role_name is None:
            answer["External"].append(
                {
                    "Role": target.alias,
                    "RoleArn": target.role_arn,
                    "Note": f"credvend does not own this role: its owner removes the Deny on "
                    f"aws:SourceIdentity {identity!r}",
                }
            )
            continue
        try:
            document = _read(iam, target.role_name)
            if document is None or not any(revoked_identity(s) == identity for s in document.get("Statement", [])):
                continue
            remaining = without_revocation(document, caller)
            if remaining is None:
                iam.delete_role_policy(RoleName=target.role_name, PolicyName=POLICY_NAME)
            else:
                iam.put_role_policy(
                    RoleName=target.role_name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(remaining)
                )
        except CredvendError:
            raise
        except Exception as exc:
            raise _iam_failure(exc, target) from None
        answer["Cleared"].append({"Role": target.alias, "RoleName": target.role_name})
    return answer


def listing(iam: Any, policy: Any) -> dict[str, Any]:
    from credvend_policy.model import default_role_name
    from credvend_policy.revocation import revocation_time, revocations

    names = {
        alias: role.role_name or default_role_name(alias) for alias, role in policy.roles.items() if role.arn is None
    }
    callers_by_identity = _callers_by_identity(policy.callers)
    found = []
    for alias, role_name in names.items():
        target = Target(alias, role_name, None)
        try:
            document = _read(iam, role_name)
        except Exception as exc:
            if _error_code(exc) == "NoSuchEntity":
                continue  # not deployed (yet): nothing to list
            raise _iam_failure(exc, target) from None
        for revocation in revocations(document):
            found.append(
                {
                    "Role": alias,
                    "RoleName": role_name,
                    "Caller": callers_by_identity.get(revocation.source_identity),
                    "SourceIdentity": revocation.source_identity,
                    "Before": revocation_time(revocation.before),
                }
            )
    return {"Revocations": found}


def _callers_by_identity(callers: Iterable[str]) -> dict[str, str]:
    from credvend_policy import source_identity_for

    return {source_identity_for(name): name for name in callers}
