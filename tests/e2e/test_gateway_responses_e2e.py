"""API Gateway's own answers in the contract's error shape (CONTRACT §12), on LocalStack.

LocalStack produces MISSING_AUTHENTICATION_TOKEN (unsigned, or an unknown path) and, with the
credvend plugin's SigV4 check, INVALID_SIGNATURE and EXPIRED_TOKEN (test_gateway_auth.py);
the credvend plugin applies the API's gateway responses to them as AWS does
(credvend_local/plugin/credvend_localstack/gateway_responses.py). The other types
(throttling, quotas, body size, validation, 5XX) LocalStack never raises for this API:
tests/infra/test_gateway_responses.py checks their definitions in the template.
"""

from __future__ import annotations

import pytest

from credvend_local.sigv4 import describe, signed_request

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
@pytest.mark.parametrize("path", ["/nowhere", "/credentials/reports-reader/extra", "/"])
def test_an_unknown_path_is_unauthenticated_in_the_contract_shape(api_url, callers, path, signed) -> None:
    response = signed_request("GET", f"{api_url}{path}", callers.user if signed else None)
    assert response.status_code == 401, describe(response)
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["Error"] == {"Code": "Unauthenticated", "Message": "Missing Authentication Token"}
    assert isinstance(body["RequestId"], str) and body["RequestId"]


def test_the_functions_own_errors_are_untouched(api_url, callers) -> None:
    response = signed_request("POST", f"{api_url}/credentials", callers.stranger, body={"role": "reports-reader"})
    assert response.status_code == 403, describe(response)
    assert response.json()["Error"] == {
        "Code": "AccessDenied",
        "Message": "The caller is not allowed to get credentials for this role.",
    }
