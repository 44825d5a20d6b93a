"""API Gateway's own answers in the function's error shape (CONTRACT §12 table, §2 shape)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.synthesis import Synth

# CONTRACT §12, as written there (None: the status API Gateway chose is kept)
TABLE = {
    "MISSING_AUTHENTICATION_TOKEN": ("401", "Unauthenticated"),
    "INVALID_SIGNATURE": ("401", "Unauthenticated"),
    "EXPIRED_TOKEN": ("401", "Unauthenticated"),
    "UNAUTHORIZED": ("401", "Unauthenticated"),
    "ACCESS_DENIED": ("403", "AccessDenied"),
    "THROTTLED": ("429", "Throttled"),
    "QUOTA_EXCEEDED": ("429", "Throttled"),
    "BAD_REQUEST_BODY": ("400", "InvalidRequest"),
    "BAD_REQUEST_PARAMETERS": ("400", "InvalidRequest"),
    "REQUEST_TOO_LARGE": ("413", "PayloadTooLarge"),
    "DEFAULT_4XX": (None, "InvalidRequest"),
    "DEFAULT_5XX": (None, "InternalError"),
}


def _responses(synth: Synth) -> dict[str, dict[str, Any]]:
    api_id = synth.logical_id(synth.stack.api.api)
    found: dict[str, dict[str, Any]] = {}
    for resource in synth.of_type("AWS::ApiGateway::GatewayResponse").values():
        props = resource["Properties"]
        assert props["RestApiId"] == {"Ref": api_id}
        assert props["ResponseType"] not in found, "one gateway response per type"
        found[props["ResponseType"]] = props
    return found


def test_every_gateway_response_of_the_contract_is_defined(agnostic: Synth) -> None:
    assert set(_responses(agnostic)) == set(TABLE)


@pytest.mark.parametrize("response_type", sorted(TABLE))
def test_gateway_response_status_code_and_shape(agnostic: Synth, response_type: str) -> None:
    props = _responses(agnostic)[response_type]
    status, code = TABLE[response_type]
    assert props.get("StatusCode") == status
    assert props["ResponseParameters"]["gatewayresponse.header.Content-Type"] == "'application/json'"
    template = props["ResponseTemplates"]["application/json"]
    # what API Gateway renders: $context.error.messageString is a quoted JSON string
    rendered = template.replace("$context.error.messageString", json.dumps('Say "why"\\n')).replace(
        "$context.requestId", "4f1c-req"
    )
    assert json.loads(rendered) == {"Error": {"Code": code, "Message": 'Say "why"\\n'}, "RequestId": "4f1c-req"}


@pytest.mark.parametrize("response_type", sorted(TABLE))
def test_throttling_answers_say_when_to_retry(agnostic: Synth, response_type: str) -> None:
    headers = _responses(agnostic)[response_type]["ResponseParameters"]
    if TABLE[response_type][1] == "Throttled":
        assert headers["gatewayresponse.header.Retry-After"] == "'1'"
    else:
        assert "gatewayresponse.header.Retry-After" not in headers


def test_gateway_error_codes_are_the_functions_codes(agnostic: Synth) -> None:
    """A client maps codes to exit codes in one table: the gateway may use only codes the
    function's own error table has."""
    from credvend.domain.errors import ERRORS

    for response_type, (status, code) in TABLE.items():
        assert code in ERRORS, response_type
        if status is not None:
            assert int(status) == ERRORS[code], response_type


def test_dry_run_is_a_declared_query_parameter(agnostic: Synth) -> None:
    for method in agnostic.of_type("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        if props["HttpMethod"] == "GET":
            assert props["RequestParameters"]["method.request.querystring.dry_run"] is False
