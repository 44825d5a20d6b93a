"""The issuer's signing key in KMS: the one place that knows KMS and its errors.

Imported only on the ``web_identity`` path (a vend of such a role, or a discovery route),
so the ``assume_role`` cold start never loads KMS's service model. The private key never
leaves KMS: the function sends a SHA-256 digest (``MessageType=DIGEST``: 32 bytes instead
of the whole JWS signing input) and gets the RSASSA-PKCS1-v1_5 signature back. The key's
policy lets only the function's execution role call ``kms:Sign`` (infra/components/issuer.py).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
)

from credvend.adapters.sts import (
    CONNECT_TIMEOUT_SECONDS,
    MAX_ATTEMPTS,
    MAX_CALL_SECONDS,
    READ_TIMEOUT_SECONDS,
    RETRY_AFTER_SECONDS,
    silence_secret_logging,
)
from credvend.coldstart import gc_paused
from credvend.domain.errors import Throttled, UpstreamError, UpstreamUnavailable

KMSClient = Any
SIGNING_ALGORITHM = "RSASSA_PKCS1_V1_5_SHA_256"  # JWS RS256
_THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "RequestLimitExceeded", "LimitExceededException"})
_UNAVAILABLE_CODES = frozenset({"KMSInternalException", "DependencyTimeoutException", "ServiceUnavailable"})


def _default_client() -> KMSClient:
    from botocore.config import Config  # type: ignore[import-untyped]
    from botocore.session import get_session  # type: ignore[import-untyped]

    config = Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        user_agent_extra="credvend",
    )
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or None
    client = get_session().create_client("kms", config=config, region_name=region)
    silence_secret_logging()
    return client


class KmsSigningKey:
    """The ``SigningKeyPort`` on KMS. ``client`` may be given (tests pass a stubbed one)."""

    max_call_seconds: float = MAX_CALL_SECONDS

    def __init__(self, key_id: str, client: KMSClient | None = None) -> None:
        self.key_id = key_id
        self._client_instance = client

    @property
    def client(self) -> KMSClient:
        if self._client_instance is None:
            with gc_paused(freeze=True):
                self._client_instance = _default_client()
        return self._client_instance

    def public_key_der(self) -> bytes:
        response = self._call("get_public_key", {"KeyId": self.key_id})
        if response.get("KeySpec") not in (None, "RSA_2048", "RSA_3072", "RSA_4096"):
            raise UpstreamError(upstream_code="NotAnRsaKey")
        return bytes(response["PublicKey"])

    def sign_rs256(self, message: bytes) -> bytes:
        response = self._call(
            "sign",
            {
                "KeyId": self.key_id,
                "Message": hashlib.sha256(message).digest(),
                "MessageType": "DIGEST",
                "SigningAlgorithm": SIGNING_ALGORITHM,
            },
        )
        return bytes(response["Signature"])

    def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            response: dict[str, Any] = getattr(self.client, operation)(**params)
        except ClientError as exc:
            raise translate_kms_error(exc.response) from None
        except (ConnectionError, HTTPClientError):
            raise UpstreamUnavailable() from None
        except BotoCoreError as exc:
            raise UpstreamError(upstream_code=type(exc).__name__) from None
        return response


def translate_kms_error(response: Any) -> UpstreamError | Throttled | UpstreamUnavailable:
    """KMS's error -> the domain's; KMS's code goes to the log, prefixed so it is told from STS's."""
    error = response.get("Error", {}) if isinstance(response, dict) else {}
    code = str(error.get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) if isinstance(response, dict) else 0
    if code in _THROTTLING_CODES:
        return Throttled(retry_after_seconds=RETRY_AFTER_SECONDS)
    if code in _UNAVAILABLE_CODES or status == 503:
        return UpstreamUnavailable(reason=f"kms:{code or status}")
    return UpstreamError(upstream_code=f"kms:{code or 'Unknown'}")
