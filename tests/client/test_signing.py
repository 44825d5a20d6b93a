"""Requests are SigV4 for execute-api, in the right region, with the caller's own credentials."""

from __future__ import annotations

from datetime import datetime

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from credvend_client.api import (
    CredvendClient,
    UsageError,
    build_client,
    region_from_endpoint,
    resolve_endpoint,
)
from tests.client.client_fakes import REGION, SOURCE_KEY, SOURCE_SECRET, SOURCE_TOKEN, FakeCredvend, error


def recomputed_signature(fake: FakeCredvend, recorded, *, secret: str, token: str | None, region: str) -> str:  # type: ignore[no-untyped-def]
    """Recompute the signature over exactly the headers the client said it signed."""
    authorization = recorded.headers["authorization"]
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    request = AWSRequest(method="GET", url=f"http://127.0.0.1:{fake.port}{recorded.path}")
    request.context["timestamp"] = recorded.headers["x-amz-date"]
    auth = SigV4Auth(Credentials(SOURCE_KEY, secret, token), "execute-api", region)
    headers = HTTPHeaders()
    for name in signed:
        headers[name] = recorded.headers[name]
    auth.headers_to_sign = lambda _request: headers  # type: ignore[method-assign]
    canonical = auth.canonical_request(request)
    return str(auth.signature(auth.string_to_sign(request, canonical), request))


def test_the_request_is_sigv4_for_execute_api_in_the_endpoint_region(fake: FakeCredvend, endpoint: str) -> None:
    client = build_client(endpoint=None, region=None, profile=None)
    client.vend("reports-reader", duration=1800, fmt="container")

    (recorded,) = fake.requests
    authorization = recorded.headers["authorization"]
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={SOURCE_KEY}/")
    date = recorded.headers["x-amz-date"]
    datetime.strptime(date, "%Y%m%dT%H%M%SZ")
    assert f"/{date[:8]}/{REGION}/execute-api/aws4_request" in authorization
    signed_headers = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "x-amz-date", "x-amz-security-token"} <= set(signed_headers)
    assert recorded.headers["x-amz-security-token"] == SOURCE_TOKEN
    signature = authorization.split("Signature=")[1]
    assert signature == recomputed_signature(fake, recorded, secret=SOURCE_SECRET, token=SOURCE_TOKEN, region=REGION)
    assert signature != recomputed_signature(fake, recorded, secret="another-secret", token=SOURCE_TOKEN, region=REGION)
    assert recorded.path == "/prod/credentials/reports-reader?duration_seconds=1800&format=container"


def test_long_term_keys_sign_without_a_security_token(
    fake: FakeCredvend, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    build_client(endpoint=None, region=None, profile=None).vend("reports-reader")
    (recorded,) = fake.requests
    assert "x-amz-security-token" not in recorded.headers
    signature = recorded.headers["authorization"].split("Signature=")[1]
    assert signature == recomputed_signature(fake, recorded, secret=SOURCE_SECRET, token=None, region=REGION)


def test_each_attempt_is_signed_again(fake: FakeCredvend, endpoint: str) -> None:
    fake.script(error(503, "UpstreamUnavailable", "STS timed out"))
    client = build_client(endpoint=None, region=None, profile=None)
    client._sleep = lambda _seconds: None
    client.vend("reports-reader")
    assert len(fake.requests) == 2
    for recorded in fake.requests:
        signature = recorded.headers["authorization"].split("Signature=")[1]
        assert signature == recomputed_signature(
            fake, recorded, secret=SOURCE_SECRET, token=SOURCE_TOKEN, region=REGION
        )


@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("https://abc123.execute-api.eu-west-1.amazonaws.com/prod", "eu-west-1"),
        ("https://abc123.execute-api.us-gov-west-1.amazonaws.com/prod/", "us-gov-west-1"),
        ("https://abc123.execute-api.cn-north-1.amazonaws.com.cn/prod", "cn-north-1"),
        ("https://abc123-vpce-0123.execute-api.ap-southeast-2.vpce.amazonaws.com/v1", "ap-southeast-2"),
        ("https://credvend.example.com/prod", None),
        ("http://127.0.0.1:4566/_aws/execute-api/abc123/prod", None),
    ],
)
def test_region_from_endpoint(url: str, region: str | None) -> None:
    assert region_from_endpoint(url) == region


def test_region_order_flag_then_url_then_aws_region_then_default_region(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    aws_url = "https://abc.execute-api.ap-south-1.amazonaws.com/prod"
    local_url = "http://127.0.0.1:4566/_aws/execute-api/abc/prod"
    assert build_client(endpoint=aws_url, region="us-east-2", profile=None).region == "us-east-2"
    assert build_client(endpoint=aws_url, region=None, profile=None).region == "ap-south-1"
    assert build_client(endpoint=local_url, region=None, profile=None).region == REGION
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "sa-east-1")
    assert build_client(endpoint=local_url, region=None, profile=None).region == "sa-east-1"
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(UsageError, match="no region"):
        build_client(endpoint=local_url, region=None, profile=None)


@pytest.mark.parametrize(
    "url",
    ["", "ftp://example.com/prod", "https://x.example.com/prod?stage=1", "http://credvend.example.com/prod"],
)
def test_bad_endpoints_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError):
        resolve_endpoint(url, {})


def test_plain_http_only_to_loopback_unless_allowed() -> None:
    assert resolve_endpoint("http://127.0.0.1:4566/_aws/execute-api/a/prod/", {}) == (
        "http://127.0.0.1:4566/_aws/execute-api/a/prod"
    )
    assert resolve_endpoint("http://localhost:4566/x", {}) == "http://localhost:4566/x"
    assert resolve_endpoint("http://localstack:4566/x", {"CREDVEND_ALLOW_INSECURE_HTTP": "1"})


def test_a_malformed_alias_never_reaches_the_network() -> None:
    client = CredvendClient("https://example.com/prod", region="eu-west-1", credentials=lambda: None)
    with pytest.raises(UsageError):
        client.credentials_url("../admin", duration=None, fmt="json")
