"""Unit tests for the policy-size quotas the LocalStack plugin enforces (iam_quotas.py).

Pure and fast: no LocalStack. Messages and codes are AWS's (IAM answers 409 LimitExceeded).
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from credvend_localstack import iam_quotas as q

QUOTAS = q.Quotas()


def document_of_size(size: int) -> str:
    """A policy whose size, as IAM counts it (no whitespace), is exactly ``size``."""
    skeleton = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Sid": ""}]}
    base = len(json.dumps(skeleton, separators=(",", ":")))
    skeleton["Statement"][0]["Sid"] = "x" * (size - base)
    text = json.dumps(skeleton, indent=4)  # whitespace does not count
    assert q.policy_size(text) == size
    return text


def test_size_ignores_whitespace_and_url_quoting() -> None:
    compact = '{"Version":"2012-10-17","Statement":[]}'
    spaced = '{\n  "Version": "2012-10-17",\n  "Statement": [ ]\n}'
    assert q.policy_size(spaced) == q.policy_size(compact) == len(compact)
    # LocalStack keeps CreateRole's document URL-quoted
    assert q.policy_size(quote(spaced)) == len(compact)


@pytest.mark.parametrize(("size", "refused"), [(2048, False), (2049, True)])
def test_trust_policy_quota(size: int, refused: bool) -> None:
    refusal = q.check_trust_policy(document_of_size(size), QUOTAS)
    if not refused:
        assert refusal is None
        return
    assert refusal is not None
    assert (refusal.code, refusal.status) == ("LimitExceeded", 409)
    assert refusal.message == "Cannot exceed quota for ACLSizePerRole: 2048"


def test_raised_trust_policy_quota_admits_up_to_4096() -> None:
    raised = q.quotas_from_environment({q.TRUST_POLICY_SETTING: "4096"})
    assert q.check_trust_policy(document_of_size(4096), raised) is None
    refusal = q.check_trust_policy(document_of_size(4097), raised)
    assert refusal is not None and refusal.message == "Cannot exceed quota for ACLSizePerRole: 4096"


@pytest.mark.parametrize("value", ["1024", "4097", "8192", "lots"])
def test_trust_policy_quota_setting_stays_within_what_aws_grants(value: str) -> None:
    with pytest.raises(q.SettingError, match=q.TRUST_POLICY_SETTING):
        q.quotas_from_environment({q.TRUST_POLICY_SETTING: value})


def test_defaults_are_aws_defaults() -> None:
    assert q.quotas_from_environment({}) == q.Quotas(2048, 10240, 6144, 8192)


def test_role_inline_quota_is_on_the_sum_of_the_roles_policies() -> None:
    existing = {"first": document_of_size(6000)}
    assert q.check_role_inline_policy("app", "second", document_of_size(4240), existing, QUOTAS) is None
    refusal = q.check_role_inline_policy("app", "second", document_of_size(4241), existing, QUOTAS)
    assert refusal is not None
    assert (refusal.code, refusal.status) == ("LimitExceeded", 409)
    assert refusal.message == "Maximum policy size of 10240 bytes exceeded for role app"


def test_putting_a_policy_under_its_own_name_replaces_it() -> None:
    existing = {"only": document_of_size(9000)}
    assert q.check_role_inline_policy("app", "only", document_of_size(10240), existing, QUOTAS) is None


@pytest.mark.parametrize(("size", "refused"), [(6144, False), (6145, True)])
def test_managed_policy_quota(size: int, refused: bool) -> None:
    refusal = q.check_managed_policy(document_of_size(size), QUOTAS)
    assert (refusal is not None) is refused
    if refusal is not None:
        assert (refusal.code, refusal.status, refusal.message) == (
            "LimitExceeded",
            409,
            "Cannot exceed quota for PolicySize: 6144",
        )


@pytest.mark.parametrize(("size", "refused"), [(8192, False), (8193, True)])
def test_api_resource_policy_quota(size: int, refused: bool) -> None:
    refusal = q.check_api_resource_policy(document_of_size(size), QUOTAS)
    assert (refusal is not None) is refused
    if refusal is not None:
        assert (refusal.code, refusal.status) == ("BadRequestException", 400)
        assert "8192" in refusal.message and "8193" in refusal.message


def test_api_resource_policy_quota_is_adjustable_upwards_only() -> None:
    raised = q.quotas_from_environment({q.API_POLICY_SETTING: "20480"})
    assert q.check_api_resource_policy(document_of_size(20000), raised) is None
    with pytest.raises(q.SettingError):
        q.quotas_from_environment({q.API_POLICY_SETTING: "4096"})


def test_update_rest_api_policy_is_found_in_the_patch() -> None:
    assert q.api_policy_from_patch([{"op": "replace", "path": "/policy", "value": "{}"}]) == "{}"
    assert q.api_policy_from_patch([{"op": "replace", "path": "/name", "value": "x"}]) is None
    assert q.api_policy_from_patch(None) is None


@pytest.mark.parametrize(("value", "enabled"), [(None, True), ("1", True), ("0", False), ("off", False)])
def test_switch(value: str | None, enabled: bool) -> None:
    assert q.quotas_enabled({} if value is None else {q.SWITCH: value}) is enabled
