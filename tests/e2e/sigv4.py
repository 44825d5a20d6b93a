"""SigV4-signed HTTP for the tests, the way any AWS client signs for ``execute-api``."""

from __future__ import annotations

import json
from typing import Any

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REGION = "us-east-1"


def signed_request(
    method: str,
    url: str,
    credentials: Credentials | None,
    *,
    body: bytes | str | dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
    timeout: float = 30,
) -> requests.Response:
    """Send ``method url`` signed with ``credentials`` (unsigned when None)."""
    if isinstance(body, dict):
        body = json.dumps(body)
    prepared = requests.Request(method, url, params=params, data=body).prepare()
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if credentials is not None:
        aws_request = AWSRequest(method=method, url=prepared.url, data=body, headers=headers)
        SigV4Auth(credentials, "execute-api", REGION).add_auth(aws_request)
        headers = dict(aws_request.headers.items())
    return requests.request(method, prepared.url or url, data=body, headers=headers, timeout=timeout)
