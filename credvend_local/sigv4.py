"""SigV4-signed HTTP for the tests, bench and demo: how any AWS client signs for ``execute-api``."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from unittest import mock

import botocore.auth
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
    region: str = REGION,
    body: bytes | str | dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    at: dt.datetime | None = None,
    timeout: float = 30,
) -> requests.Response:
    """Send ``method url`` signed with ``credentials`` (unsigned when None).

    ``body``: a dict is sent as JSON. ``at``: sign as if the clock said so (stale signatures).
    """
    if isinstance(body, dict):
        body = json.dumps(body)
    headers = dict(headers or {})
    if body is not None:
        headers.setdefault("Content-Type", "application/json")
    full_url = requests.Request(method, url, params=params).prepare().url or url
    if credentials is not None:
        aws_request = AWSRequest(method=method, url=full_url, data=body, headers=headers)
        signer = SigV4Auth(credentials, "execute-api", region)
        if at is None:
            signer.add_auth(aws_request)
        else:
            with mock.patch.object(botocore.auth, "get_current_datetime", return_value=at):
                signer.add_auth(aws_request)
        headers = dict(aws_request.headers.items())
    return requests.request(method, full_url, data=body, headers=headers, timeout=timeout)


def describe(response: requests.Response) -> object:
    """What a failed assertion may show of a response: its error, never credentials."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    if isinstance(body, dict):
        return f"HTTP {response.status_code}: {body.get('Error') or body.get('message') or sorted(body)}"
    return f"HTTP {response.status_code}"
