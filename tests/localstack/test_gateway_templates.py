"""Rendering of gateway responses by the credvend LocalStack plugin. Pure: no LocalStack.

(The patched LocalStack itself answers with them in tests/e2e/test_gateway_responses_e2e.py.)
"""

from __future__ import annotations

import json

from credvend_localstack.gateway_templates import render_template, static_headers

CONTRACT_TEMPLATE = (
    '{"Error":{"Code":"Unauthenticated","Message":$context.error.messageString},"RequestId":"$context.requestId"}'
)


def test_the_contract_template_renders_to_json_whatever_the_message() -> None:
    variables = {"requestId": "abc-123", "error": {"message": 'The signature "we calculated" \\ does not\nmatch'}}
    rendered = json.loads(render_template(CONTRACT_TEMPLATE, variables))
    assert rendered == {
        "Error": {"Code": "Unauthenticated", "Message": 'The signature "we calculated" \\ does not\nmatch'},
        "RequestId": "abc-123",
    }


def test_braced_plain_and_unknown_variables() -> None:
    variables = {"requestId": "r1", "error": {"message": "m", "responseType": "THROTTLED"}}
    assert render_template(
        "${context.requestId}|$context.error.responseType|$context.nope|$context.error", variables
    ) == ("r1|THROTTLED||")
    assert render_template('{"message":$context.error.messageString}', {}) == '{"message":""}'


def test_static_header_parameters_only() -> None:
    assert static_headers(
        {
            "gatewayresponse.header.Retry-After": "'1'",
            "gatewayresponse.header.Content-Type": "'application/json'",
            "gatewayresponse.header.X-From-Request": "method.request.header.X",
            "something.else": "'x'",
        }
    ) == {"Retry-After": "1", "Content-Type": "application/json"}
    assert static_headers(None) == {}
