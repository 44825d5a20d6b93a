"""The STS adapter: client configuration, error translation, and log redaction."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

from credvend.adapters import sts as sts_module
from credvend.adapters.sts import BotoSts, translate_client_error
from credvend.domain.errors import DurationRejected, Throttled, UpstreamError, UpstreamUnavailable


def _error(code: str, message: str = "", status: int = 400) -> dict[str, Any]:
    return {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (_error("Throttling", "Rate exceeded"), Throttled),
        (
            _error(
                "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
            ),
            DurationRejected,
        ),
        (
            _error(
                "ValidationError",
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
            ),
            DurationRejected,
        ),
        (_error("ValidationError", "Value at 'durationSeconds' failed to satisfy constraint"), DurationRejected),
        (_error("ValidationError", "Value at 'roleSessionName' failed to satisfy constraint"), UpstreamError),
        (_error("AccessDenied", "User: arn:aws:sts::1:assumed-role/fn/x is not authorized", 403), UpstreamError),
        (_error("ServiceUnavailable", "", 503), UpstreamUnavailable),
        (_error("InternalFailure", "", 500), UpstreamError),
        ({}, UpstreamError),
    ],
)
def test_translate_client_error(response: dict[str, Any], expected: type[Exception]) -> None:
    error = translate_client_error(response)
    assert type(error) is expected
    assert "not authorized" not in error.message
    if isinstance(error, Throttled):
        assert error.status == 429 and error.retry_after_seconds >= 1


def test_client_has_short_timeouts_and_the_regional_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_STS_REGIONAL_ENDPOINTS"):
        monkeypatch.delenv(name, raising=False)
    client = BotoSts().client
    config = client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (1, 2)
    assert config.retries == {"mode": "standard", "total_max_attempts": 2}
    # What the service's deadline check assumes one call may take at worst (backoff < 1 s).
    assert BotoSts.max_call_seconds == 2 * (1 + 2) + 1
    assert client.meta.endpoint_url == "https://sts.eu-central-1.amazonaws.com"  # regional, not global


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T16:35:57Z", datetime(2026, 11, 23, 16, 35, 57, tzinfo=UTC)),  # what STS sends
        ("2026-11-23T16:35:57.413000Z", datetime(2026, 11, 23, 16, 35, 57, 413000, tzinfo=UTC)),
        ("2026-11-23T17:35:57+01:00", datetime(2026, 11, 23, 16, 35, 57, tzinfo=UTC)),
        ("Mon, 23 Nov 2026 16:35:57 GMT", datetime(2026, 11, 23, 16, 35, 57, tzinfo=UTC)),  # botocore's way
        (1795451757, datetime(2026, 11, 23, 16, 35, 57, tzinfo=UTC)),
    ],
)
def test_timestamps_parse_as_botocore_would(text: Any, expected: datetime) -> None:
    from botocore.utils import parse_timestamp as botocore_parse_timestamp

    parsed = sts_module.parse_timestamp(text)
    assert parsed == expected == botocore_parse_timestamp(text)
    assert parsed.utcoffset() is not None


def test_client_reads_expiration_as_an_aware_datetime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        assumed = BotoSts().assume_role(
            role_arn="arn:aws:iam::123456789012:role/ReportsReader",
            session_name="billing-api",
            source_identity="billing-api",
            duration_seconds=900,
            tags=[("credvend:caller", "billing-api")],
            external_id=None,
        )
    assert assumed.credentials.expiration.utcoffset() is not None


def test_session_loads_sts_without_listing_every_service(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    loader = sts_module._sts_session().get_component("data_loader")
    assert loader.list_available_services("service-2") == ["sts"]
    assert str(tmp_path) in loader.search_paths  # AWS_DATA_PATH still applies, as in botocore's own loader
    assert loader.load_service_model("sts", "service-2")["metadata"]["serviceId"] == "STS"


def test_endpoint_override_is_botocore_s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:4566")
    assert BotoSts().client.meta.endpoint_url == "http://127.0.0.1:4566"


def test_client_is_created_once() -> None:
    adapter = BotoSts(client=object())
    assert adapter.client is adapter.client


class _Raising:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def get_caller_identity(self) -> Any:
        raise self.error


def test_connection_errors_are_unavailable() -> None:
    adapter = BotoSts(client=_Raising(EndpointConnectionError(endpoint_url="https://sts")))
    with pytest.raises(UpstreamUnavailable):
        adapter.caller_identity_arn()


@pytest.mark.parametrize(
    ("message", "args", "expected"),
    [
        ("Response body:\n%r", (b"<SecretAccessKey>abc</SecretAccessKey>",), None),
        ("CanonicalRequest:\n%s", ("host:sts\nx-amz-security-token:TOKEN123\n",), "x-amz-security-token:**********"),
        ("Sending http request: %s", ("headers={'X-Amz-Security-Token': b'TOKEN123'}",), "X-Amz-Security-Token': b'*"),
        ("plain %s", ("nothing secret",), "plain nothing secret"),
    ],
)
def test_botocore_debug_records_are_redacted(message: str, args: tuple[Any, ...], expected: str | None) -> None:
    sts_module.silence_secret_logging()
    record = logging.LogRecord("botocore.auth", logging.DEBUG, __file__, 1, message, args, None)
    kept = sts_module._REDACT.filter(record)
    if expected is None:
        assert not kept
    else:
        assert kept and expected in record.getMessage() and "TOKEN123" not in record.getMessage()
    assert sts_module._REDACT in logging.getLogger("botocore.parsers").filters
