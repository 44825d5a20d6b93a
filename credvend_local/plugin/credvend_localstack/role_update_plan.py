"""The IAM calls that update a CloudFormation ``AWS::IAM::Role`` in place, as AWS makes them.
Pure: no LocalStack imports (cfn_role_update.py is the hook), unit-tested on its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

Call = tuple[str, dict[str, Any]]


def _document(value: Any) -> Any:
    """A policy document as a comparable value (CloudFormation passes dicts or JSON text)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def update_plan(previous: Mapping[str, Any], desired: Mapping[str, Any]) -> list[Call] | None:
    """The IAM calls that turn the role ``previous`` into ``desired``, in place; None when a
    create-only property changed and the role must be replaced."""
    name = previous["RoleName"]
    if (desired.get("RoleName") or name) != name or (desired.get("Path") or "/") != (previous.get("Path") or "/"):
        return None
    calls: list[Call] = []
    trust = desired.get("AssumeRolePolicyDocument")
    if _document(trust) != _document(previous.get("AssumeRolePolicyDocument")):
        calls.append(("update_assume_role_policy", {"RoleName": name, "PolicyDocument": _text(trust)}))
    settings: dict[str, Any] = {}
    if desired.get("MaxSessionDuration") != previous.get("MaxSessionDuration"):
        settings["MaxSessionDuration"] = int(desired.get("MaxSessionDuration") or 3600)
    if desired.get("Description") != previous.get("Description"):
        settings["Description"] = desired.get("Description") or ""
    if settings:
        calls.append(("update_role", {"RoleName": name, **settings}))
    old_arns, new_arns = set(previous.get("ManagedPolicyArns") or []), set(desired.get("ManagedPolicyArns") or [])
    calls += [("attach_role_policy", {"RoleName": name, "PolicyArn": arn}) for arn in sorted(new_arns - old_arns)]
    calls += [("detach_role_policy", {"RoleName": name, "PolicyArn": arn}) for arn in sorted(old_arns - new_arns)]
    # inline policies: only those the template declares (before or now) are its to change
    old_inline = {p["PolicyName"]: _document(p["PolicyDocument"]) for p in previous.get("Policies") or []}
    new_inline = {p["PolicyName"]: _document(p["PolicyDocument"]) for p in desired.get("Policies") or []}
    for policy_name, document in new_inline.items():
        if old_inline.get(policy_name) != document:
            calls.append(
                ("put_role_policy", {"RoleName": name, "PolicyName": policy_name, "PolicyDocument": _text(document)})
            )
    calls += [
        ("delete_role_policy", {"RoleName": name, "PolicyName": policy_name})
        for policy_name in old_inline
        if policy_name not in new_inline
    ]
    old_tags = {t["Key"]: t["Value"] for t in previous.get("Tags") or []}
    new_tags = {t["Key"]: t["Value"] for t in desired.get("Tags") or []}
    if removed := sorted(set(old_tags) - set(new_tags)):
        calls.append(("untag_role", {"RoleName": name, "TagKeys": removed}))
    if changed := {k: v for k, v in new_tags.items() if old_tags.get(k) != v}:
        calls.append(("tag_role", {"RoleName": name, "Tags": [{"Key": k, "Value": v} for k, v in changed.items()]}))
    return calls
