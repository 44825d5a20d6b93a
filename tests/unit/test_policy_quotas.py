"""The pure size rules shared by the CDK app and `credvend policy check`."""

from __future__ import annotations

import pytest

from credvend_policy.api_policy import api_resource_policy, caller_accounts, route_resource
from credvend_policy.quotas import TEMPLATE_QUOTA, TRUST_POLICY, Limits, QuotaFinding, iam_size


def test_iam_size_counts_json_without_whitespace() -> None:
    assert iam_size({"a": [1, 2], "b": "c d"}) == len('{"a":[1,2],"b":"c d"}')
    assert iam_size('{\n  "a": [1, 2],\n  "b": "c d"\n}') == len('{"a":[1,2],"b":"c d"}')


@pytest.mark.parametrize(
    ("route", "resource"),
    [
        (("POST", "/credentials"), "execute-api:/*/POST/credentials"),
        (("GET", "/credentials/{role}"), "execute-api:/*/GET/credentials/*"),
        (("get", "/oidc/credentials/*"), "execute-api:/*/GET/oidc/credentials/*"),
        (("ANY", "/"), "execute-api:/*/*/"),
    ],
)
def test_routes_become_execute_api_resources(route: tuple[str, str], resource: str) -> None:
    assert route_resource(route) == resource


def test_caller_accounts_are_distinct_and_sorted() -> None:
    arns = [
        "arn:aws:iam::222222222222:role/b",
        "arn:aws:iam::111111111111:role/a",
        "arn:aws:iam::222222222222:user/c",
    ]
    assert caller_accounts(arns) == [("aws", "111111111111"), ("aws", "222222222222")]


def test_an_organization_id_is_checked() -> None:
    with pytest.raises(ValueError, match="Organizations"):
        api_resource_policy(["arn:aws:iam::111111111111:role/a"], organization_id="o-x")
    # a whole-string match: a trailing newline (a YAML block scalar) is not an organization id
    with pytest.raises(ValueError, match="Organizations"):
        api_resource_policy(["arn:aws:iam::111111111111:role/a"], organization_id="o-a1b2c3d4e5\n")
    assert api_resource_policy(["arn:aws:iam::111111111111:role/a"], organization_id="o-a1b2c3d4e5") is not None


def test_no_caller_and_no_public_route_means_no_resource_policy() -> None:
    assert api_resource_policy([]) is None


def test_limits_refuse_values_aws_does_not_have() -> None:
    assert Limits(trust_policy=4096).trust_policy_quota.limit == 4096
    with pytest.raises(ValueError, match="trust policy quota"):
        Limits(trust_policy=TRUST_POLICY - 1)
    with pytest.raises(ValueError, match="managed policies per role"):
        Limits(managed_policies_per_role=21)


def test_a_finding_says_document_size_and_quota() -> None:
    over = QuotaFinding("stack template", TEMPLATE_QUOTA, 2_000_000)
    assert over.exceeded
    assert str(over) == (
        "stack template: 2,000,000 bytes exceeds CloudFormation template size (uploaded to S3) quota of 1,048,576"
    )
    trust = QuotaFinding("trust policy of role 'x'", Limits().trust_policy_quota, 3000)
    assert "set context `trust_policy_quota`" in str(trust)
