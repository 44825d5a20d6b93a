"""Unit tests for CloudFormation's template quotas (cfn_quotas.py). Pure: no LocalStack."""

from __future__ import annotations

import json

import pytest
from credvend_localstack import cfn_quotas as cfn


def template(resources: int, outputs: int = 0) -> str:
    return json.dumps(
        {
            "Resources": {f"Topic{i}": {"Type": "AWS::SNS::Topic"} for i in range(resources)},
            "Outputs": {f"Out{i}": {"Value": "x"} for i in range(outputs)},
        }
    )


def test_within_quotas() -> None:
    assert cfn.check_template(template(500, 200), via_url=True) is None


def test_more_than_500_resources() -> None:
    refusal = cfn.check_template(template(501), via_url=True)
    assert refusal is not None and (refusal.code, refusal.status) == ("ValidationError", 400)
    assert refusal.message == "Template format error: Number of resources, 501, is greater than maximum allowed, 500"


def test_more_than_200_outputs() -> None:
    refusal = cfn.check_template(template(1, 203), via_url=True)
    assert refusal is not None
    assert refusal.message == "Template format error: Number of outputs, 203, is greater than maximum allowed, 200"


@pytest.mark.parametrize(("via_url", "limit"), [(False, 51_200), (True, 1_048_576)])
def test_template_size(via_url: bool, limit: int) -> None:
    padded = json.dumps({"Description": "", "Resources": {}})
    fits = padded.replace('""', '"' + "x" * (limit - len(padded)) + '"')
    assert len(fits) == limit
    assert cfn.check_template(fits, via_url=via_url) is None
    refusal = cfn.check_template(fits.replace('"x', '"xx'), via_url=via_url)
    assert refusal is not None and refusal.code == "ValidationError"


def test_yaml_is_left_to_cloudformation() -> None:
    assert cfn.check_template("Resources:\n  T: {Type: AWS::SNS::Topic}\n", via_url=False) is None
