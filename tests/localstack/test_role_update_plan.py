"""In-place CloudFormation updates of IAM roles (the LocalStack plugin's plan). Pure: no LocalStack."""

from __future__ import annotations

import json

from credvend_localstack.role_update_plan import update_plan

TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "a"}, "Action": "sts:AssumeRole"}],
}
ROLE = {
    "RoleName": "ReportsReader",
    "Arn": "arn:aws:iam::000000000000:role/ReportsReader",
    "RoleId": "AROA1",
    "AssumeRolePolicyDocument": TRUST,
    "MaxSessionDuration": 14400,
    "ManagedPolicyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
    "Policies": [{"PolicyName": "template-owned", "PolicyDocument": {"Statement": []}}],
    "Tags": [{"Key": "credvend:role", "Value": "reports-reader"}],
}


def test_nothing_changed_needs_no_call_even_if_the_trust_policy_arrives_as_text() -> None:
    assert update_plan(ROLE, ROLE | {"AssumeRolePolicyDocument": json.dumps(TRUST)}) == []


def test_a_trust_policy_change_is_an_in_place_update_not_a_replacement() -> None:
    trust = {**TRUST, "Statement": [{**TRUST["Statement"][0], "Principal": {"AWS": "b"}}]}
    assert update_plan(ROLE, ROLE | {"AssumeRolePolicyDocument": trust}) == [
        ("update_assume_role_policy", {"RoleName": "ReportsReader", "PolicyDocument": json.dumps(trust)})
    ]


def test_settings_managed_policies_inline_policies_and_tags() -> None:
    desired = ROLE | {
        "MaxSessionDuration": 43200,
        "ManagedPolicyArns": ["arn:aws:iam::aws:policy/SecurityAudit"],
        "Policies": [{"PolicyName": "new", "PolicyDocument": {"Statement": [1]}}],
        "Tags": [{"Key": "team", "Value": "x"}],
    }
    assert update_plan(ROLE, desired) == [
        ("update_role", {"RoleName": "ReportsReader", "MaxSessionDuration": 43200}),
        ("attach_role_policy", {"RoleName": "ReportsReader", "PolicyArn": "arn:aws:iam::aws:policy/SecurityAudit"}),
        ("detach_role_policy", {"RoleName": "ReportsReader", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
        ("put_role_policy", {"RoleName": "ReportsReader", "PolicyName": "new", "PolicyDocument": '{"Statement": [1]}'}),
        ("delete_role_policy", {"RoleName": "ReportsReader", "PolicyName": "template-owned"}),
        ("untag_role", {"RoleName": "ReportsReader", "TagKeys": ["credvend:role"]}),
        ("tag_role", {"RoleName": "ReportsReader", "Tags": [{"Key": "team", "Value": "x"}]}),
    ]


def test_an_out_of_band_inline_policy_is_never_touched() -> None:
    """credvend-revocations is not in the template, before or after: no call names it."""
    trust = {**TRUST, "Statement": [{**TRUST["Statement"][0], "Principal": {"AWS": "c"}}]}
    for call in update_plan(ROLE, ROLE | {"AssumeRolePolicyDocument": trust, "Policies": []}) or []:
        assert call[1].get("PolicyName") != "credvend-revocations"


def test_create_only_changes_mean_replacement() -> None:
    assert update_plan(ROLE, ROLE | {"RoleName": "Other"}) is None
    assert update_plan(ROLE, ROLE | {"Path": "/svc/"}) is None
