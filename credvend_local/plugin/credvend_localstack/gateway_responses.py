"""Answer API Gateway's own errors with the REST API's gateway responses, as AWS does.

A REST API's gateway responses (``AWS::ApiGateway::GatewayResponse``) set the status, the
headers and the body API Gateway answers its own errors with (a bad signature, an unknown
path, throttling...). LocalStack 2026.3.0 applies the status code only: its body is always
``{"message": ...}`` and its headers fixed (``handlers/gateway_exception.py``: "TODO apply
responseTemplates"). credvend answers those errors in its own error shape (CONTRACT §12),
so its tests need the templates and headers applied.

How: an on_infra_start hook patches ``GatewayExceptionHandler.create_exception_response``;
after LocalStack built its answer, a response type the API configured (itself, or through
DEFAULT_4XX/DEFAULT_5XX) gets that response's ``application/json`` template and its static
``gatewayresponse.header.*`` values. The rendering is pure (gateway_templates.py) and unit-tested.

Switch: CREDVEND_GATEWAY_RESPONSES=0 (or false/off/no) leaves LocalStack's answers untouched.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from localstack.runtime import hooks

from .gateway_templates import render_template, static_headers

LOG = logging.getLogger(__name__)

SWITCH = "CREDVEND_GATEWAY_RESPONSES"
JSON = "application/json"


def enabled(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(SWITCH, "1").strip().lower() not in {"0", "false", "off", "no"}


@hooks.on_infra_start()
def credvend_gateway_responses() -> None:
    if not enabled():
        LOG.warning("credvend gateway responses are OFF (%s=%s)", SWITCH, os.environ.get(SWITCH))
        return
    from localstack.services.apigateway.next_gen.execute_api.gateway_response import (
        DEFAULT_GATEWAY_RESPONSES,
        get_gateway_response_or_default,
    )
    from localstack.services.apigateway.next_gen.execute_api.handlers.gateway_exception import (
        GatewayExceptionHandler,
    )
    from localstack.utils.patch import patch

    @patch(GatewayExceptionHandler.create_exception_response)
    def create_exception_response(fn: Any, self: Any, exception: Any, context: Any) -> Any:
        response = fn(self, exception, context)
        if response is None:
            return response
        configured = get_gateway_response_or_default(exception.type, context.deployment.rest_api.gateway_responses)
        if configured is None or configured is DEFAULT_GATEWAY_RESPONSES.get(exception.type):
            return response  # the API configured nothing for this error: LocalStack's own answer
        template = (configured.get("responseTemplates") or {}).get(JSON)
        if template is not None:
            response.set_data(render_template(template, context.context_variables or {}))
            response.headers["Content-Type"] = JSON
        for name, value in static_headers(configured.get("responseParameters")).items():
            response.headers[name] = value
        return response

    LOG.info("credvend gateway responses on: templates and headers of a REST API's gateway responses")
