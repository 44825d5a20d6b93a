"""Rendering of API Gateway gateway responses (templates, header parameters), pure: no
LocalStack imports, so it is unit-tested on its own (gateway_responses.py is the hook).

AWS renders gateway response templates by plain variable substitution, not with the
Velocity engine; ``$context.error.messageString`` is the message as a quoted JSON string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

HEADER_PREFIX = "gatewayresponse.header."
# $context.a.b or ${context.a.b}
_VARIABLE = re.compile(r"\$\{context\.([A-Za-z0-9_.]+)\}|\$context\.([A-Za-z0-9_.]+)")


def _lookup(variables: Mapping[str, Any], path: str) -> Any:
    value: Any = variables
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def render_template(template: str, variables: Mapping[str, Any]) -> str:
    """Substitute ``$context.*`` variables; unknown ones become empty, as on AWS.
    ``error.messageString`` is the quoted form of ``error.message``."""

    def value_of(match: re.Match[str]) -> str:
        path = match.group(1) or match.group(2)
        if path == "error.messageString":
            return json.dumps(str(_lookup(variables, "error.message") or ""))
        value = _lookup(variables, path)
        return "" if value is None or isinstance(value, Mapping) else str(value)

    return _VARIABLE.sub(value_of, template)


def static_headers(parameters: Mapping[str, str] | None) -> dict[str, str]:
    """``gatewayresponse.header.X: "'value'"`` -> ``X: value`` (static values only; mappings
    from the request are not used by credvend and are left out)."""
    headers = {}
    for key, value in (parameters or {}).items():
        if key.startswith(HEADER_PREFIX) and len(value) >= 2 and value[0] == value[-1] == "'":
            headers[key[len(HEADER_PREFIX) :]] = value[1:-1]
    return headers
