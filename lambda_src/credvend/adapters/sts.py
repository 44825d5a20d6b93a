"""STS through botocore: the one place that knows botocore's exceptions.

The client comes from a botocore session of its own, so the standard variables apply
(``AWS_REGION``, ``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_STS``, credentials) and botocore
picks the regional STS endpoint; nothing here names an endpoint. It is created on first
use and reused for the life of the container.

Not ``boto3.client``: boto3 adds only resources and S3 transfers on top of botocore, and
importing it costs a cold start ~15 ms (s3transfer, multiprocessing) for nothing. A
session of our own also lets the response parser read STS's timestamps with
``datetime.fromisoformat`` (C, ~0.1 µs) instead of dateutil (~30 µs per vend, pure Python),
without touching any other session in the process.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
)
from pydantic import SecretStr

from credvend.coldstart import gc_paused
from credvend.domain.errors import DurationRejected, Throttled, UpstreamError, UpstreamUnavailable
from credvend.domain.formats import AssumedRole, Credentials

STSClient = Any  # botocore's clients are generated at run time; no stubs are installed

# A healthy STS call takes tens of milliseconds. One call lasts at most MAX_CALL_SECONDS:
# 2 attempts x (1 s connect + 2 s read) + one standard-mode backoff (under 1 s). A request
# makes up to three calls, more than the function's timeout allows in the worst case, so
# the service starts a call only while MAX_CALL_SECONDS remain before its deadline
# (credvend.domain.vend; budget in infra/components/vending_function.py).
CONNECT_TIMEOUT_SECONDS = 1
READ_TIMEOUT_SECONDS = 2
MAX_ATTEMPTS = 2
MAX_BACKOFF_SECONDS = 1
MAX_CALL_SECONDS = MAX_ATTEMPTS * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS) + MAX_BACKOFF_SECONDS
RETRY_AFTER_SECONDS = 1

_THROTTLING_CODES = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"})
_UNAVAILABLE_CODES = frozenset({"ServiceUnavailable", "ServiceUnavailableException", "RequestTimeout"})


_SECRET_VALUES = re.compile(
    r"(?i)((?:x-amz-security-token|WebIdentityToken)['\"]?\s*[:=]\s*b?['\"]?|<(?:SecretAccessKey|SessionToken)>|"
    r"['\"](?:SecretAccessKey|SessionToken|Token)['\"]\s*:\s*['\"])[^'\"<\s,}]+"
)


class _RedactSecrets(logging.Filter):
    """botocore's DEBUG logs carry secrets: every response body (an AssumeRole body holds the
    vended secret key and session token), in the canonical request and the request headers
    the function's own session token, and in AssumeRoleWithWebIdentity's parameters the
    token credvend signed. Drop the bodies, redact the rest, so no log
    level ever shows a secret, whoever turns DEBUG on."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.msg, str) or record.levelno > logging.DEBUG:
            return True
        if record.msg.startswith("Response body"):
            return False
        message = record.getMessage()
        redacted = _SECRET_VALUES.sub(r"\1**********", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_REDACT = _RedactSecrets()
# Filters on a logger apply only to records it creates itself, so each botocore module
# logger gets one; these are the ones that log requests, responses and signing.
_BOTOCORE_LOGGERS = ("botocore.parsers", "botocore.auth", "botocore.endpoint", "botocore.httpsession", "botocore.hooks")


def silence_secret_logging() -> None:
    names = set(_BOTOCORE_LOGGERS) | {
        name for name in logging.root.manager.loggerDict if name.startswith(("botocore", "urllib3", "boto3"))
    }
    for name in names:
        logger = logging.getLogger(name)
        if _REDACT not in logger.filters:
            logger.addFilter(_REDACT)


def parse_timestamp(value: Any) -> datetime:
    """A timestamp in an STS response (``Expiration``): ISO 8601 with a zone, as STS sends
    it, through the C parser; anything else as botocore would parse it."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is not None:
                return parsed
    from botocore.utils import parse_timestamp as botocore_parse_timestamp  # type: ignore[import-untyped]

    result: datetime = botocore_parse_timestamp(value)
    return result


def _sts_session() -> Any:
    """A botocore session for the one STS client: STS's timestamps through ``parse_timestamp``,
    and a data loader that does not list every service botocore knows (~400 directories,
    ~15 ms of a cold start) just to check that "sts" is one of them before loading its model."""
    from botocore.loaders import Loader  # type: ignore[import-untyped]
    from botocore.session import get_session  # type: ignore[import-untyped]

    class StsDataLoader(Loader):  # type: ignore[misc]
        def list_available_services(self, type_name: str) -> list[str]:
            return ["sts"]

    session = get_session()
    # The search path botocore's own loader would use (AWS_DATA_PATH, botocore.loaders.create_loader).
    data_path = session.get_config_variable("data_path")
    extra_paths = (
        None if data_path is None else [os.path.expanduser(os.path.expandvars(p)) for p in data_path.split(os.pathsep)]
    )
    session.register_component("data_loader", StsDataLoader(extra_search_paths=extra_paths))
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=parse_timestamp)
    return session


def _default_client(*, unsigned: bool = False) -> STSClient:
    from botocore import UNSIGNED  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    config = Config(
        signature_version=UNSIGNED if unsigned else None,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        user_agent_extra="credvend",
        # Client-side parameter validation stays on (~15 µs a vend): a value the domain got
        # wrong fails here, clearly, instead of as an STS ValidationError after a round trip.
    )
    # botocore reads AWS_DEFAULT_REGION; Lambda sets both, but a runtime that sets only
    # AWS_REGION (the contract's variable) must work too. None lets botocore decide.
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or None
    client = _sts_session().create_client("sts", config=config, region_name=region)
    silence_secret_logging()  # again, now that botocore has created all its module loggers
    return client


class BotoSts:
    """The ``StsPort`` on botocore. ``client`` may be given (tests pass a stubbed one)."""

    max_call_seconds: float = MAX_CALL_SECONDS

    def __init__(self, client: STSClient | None = None, *, unsigned_client: STSClient | None = None) -> None:
        silence_secret_logging()
        self._client_instance = client
        self._unsigned_client_instance = unsigned_client

    @property
    def client(self) -> STSClient:
        if self._client_instance is None:
            with gc_paused(freeze=True):  # botocore and the STS model live as long as the container
                self._client_instance = _default_client()
        return self._client_instance

    def assume_role(
        self,
        *,
        role_arn: str,
        session_name: str,
        source_identity: str,
        duration_seconds: int,
        tags: Sequence[tuple[str, str]],
        external_id: str | None,
    ) -> AssumedRole:
        params: dict[str, Any] = {
            "RoleArn": role_arn,
            "RoleSessionName": session_name,
            "SourceIdentity": source_identity,
            "DurationSeconds": duration_seconds,
            "Tags": [{"Key": key, "Value": value} for key, value in tags],
        }
        if external_id is not None:
            params["ExternalId"] = external_id
        return _assumed_role(self._call("assume_role", params))

    @property
    def unsigned_client(self) -> STSClient:
        """A client that signs nothing: AssumeRoleWithWebIdentity is authenticated by its token
        alone, and a request without the function's credentials is never role chaining."""
        if self._unsigned_client_instance is None:
            with gc_paused(freeze=True):
                self._unsigned_client_instance = _default_client(unsigned=True)
        return self._unsigned_client_instance

    def assume_role_with_web_identity(
        self, *, role_arn: str, session_name: str, web_identity_token: SecretStr, duration_seconds: int
    ) -> AssumedRole:
        params: dict[str, Any] = {
            "RoleArn": role_arn,
            "RoleSessionName": session_name,
            "WebIdentityToken": web_identity_token.get_secret_value(),
            "DurationSeconds": duration_seconds,
        }
        return _assumed_role(self._call("assume_role_with_web_identity", params, client=self.unsigned_client))

    def caller_identity_arn(self) -> str:
        return str(self._call("get_caller_identity", {})["Arn"])

    def _call(self, operation: str, params: dict[str, Any], *, client: STSClient | None = None) -> dict[str, Any]:
        try:
            response: dict[str, Any] = getattr(client or self.client, operation)(**params)
        except ClientError as exc:
            raise translate_client_error(exc.response) from None
        except (ConnectionError, HTTPClientError):
            raise UpstreamUnavailable() from None
        except BotoCoreError as exc:
            raise UpstreamError(upstream_code=type(exc).__name__) from None
        return response


def request_id_of(response: Any) -> str | None:
    """STS's RequestId for a call (``x-amzn-RequestId``): CloudTrail records it as the event's
    ``requestID``, so the decision line and the CloudTrail event join on it."""
    metadata = response.get("ResponseMetadata") if isinstance(response, dict) else None
    request_id = metadata.get("RequestId") if isinstance(metadata, dict) else None
    return request_id if isinstance(request_id, str) and request_id else None


def _assumed_role(response: dict[str, Any]) -> AssumedRole:
    creds = response["Credentials"]
    user = response["AssumedRoleUser"]
    return AssumedRole(
        credentials=Credentials(
            access_key_id=creds["AccessKeyId"],
            secret_access_key=SecretStr(creds["SecretAccessKey"]),
            session_token=SecretStr(creds["SessionToken"]),
            expiration=creds["Expiration"],
        ),
        assumed_role_arn=user["Arn"],
        assumed_role_id=user["AssumedRoleId"],
        request_id=request_id_of(response),
    )


def translate_client_error(response: Any) -> UpstreamError | Throttled | UpstreamUnavailable:
    """STS's error -> the domain's. Keeps STS's code for logs, never its message."""
    error = response.get("Error", {}) if isinstance(response, dict) else {}
    code = str(error.get("Code", ""))
    message = str(error.get("Message", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) if isinstance(response, dict) else 0
    if code in _THROTTLING_CODES:
        return Throttled(retry_after_seconds=RETRY_AFTER_SECONDS)
    if code == "ValidationError" and "durationseconds" in message.lower():
        return DurationRejected(upstream_code=code)
    if code in _UNAVAILABLE_CODES or status == 503:
        return UpstreamUnavailable()
    return UpstreamError(upstream_code=code or "Unknown")
