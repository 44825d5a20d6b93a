"""Talk to a credvend endpoint: SigV4 for ``execute-api`` with the caller's own credentials,
or, for workloads without AWS credentials, an OIDC token (``--token-file``) on the OIDC
routes (CONTRACT §10): ``Authorization: Bearer <token>``, never signed, never both.

The credentials that sign are always the process's own (botocore's default chain, or the
profile named with ``--profile``), never credentials the service vended: ``serve`` keeps
vended credentials in its cache only, and ``credential-process`` refuses to run inside
itself (see :func:`guard_credential_process_recursion`).
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

# botocore ships no type information; "unused-ignore" keeps strict mypy quiet once stubs are installed.
import botocore.session  # type: ignore[import-untyped, unused-ignore]
from botocore.auth import SigV4Auth  # type: ignore[import-untyped, unused-ignore]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped, unused-ignore]
from botocore.credentials import ReadOnlyCredentials  # type: ignore[import-untyped, unused-ignore]
from botocore.exceptions import (  # type: ignore[import-untyped, unused-ignore]
    BotoCoreError,
    HTTPClientError,
    SSLError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError  # type: ignore[import-untyped, unused-ignore]
from botocore.httpsession import URLLib3Session  # type: ignore[import-untyped, unused-ignore]
from botocore.utils import get_environ_proxies  # type: ignore[import-untyped, unused-ignore]

from credvend_client.errors import CredvendError, UpstreamError, UsageError, error_for_status

SERVICE = "execute-api"
ENDPOINT_ENV = "CREDVEND_ENDPOINT"
PROFILE_ENV = "CREDVEND_PROFILE"
INSECURE_HTTP_ENV = "CREDVEND_ALLOW_INSECURE_HTTP"
RECURSION_ENV = "CREDVEND_CREDENTIAL_PROCESS_ACTIVE"
TOKEN_FILE_ENV = "CREDVEND_TOKEN_FILE"  # noqa: S105 - the name of a variable, not a secret
MAX_TOKEN_BYTES = 16 * 1024
FORMATS = ("json", "credential_process", "container")
# Mirrors the policy file's alias rule: aliases travel in URL paths.
# Used with fullmatch: ``$`` would also accept a trailing newline.
ALIAS_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# {api-id}.execute-api.{region}.amazonaws.com[.cn], also the private-API (vpce) form.
_EXECUTE_API_HOST = re.compile(
    r"\.execute-api(?:-fips)?\.([a-z]{2}(?:-[a-z]+)+-\d+)\.(?:vpce\.)?amazonaws\.com(?:\.cn)?\Z"
)
_REQUEST_ID_HEADERS = ("x-amzn-requestid", "x-amz-apigw-id", "x-amz-request-id")


# --- configuration ---------------------------------------------------------------------------


def resolve_endpoint(explicit: str | None, environ: Mapping[str, str]) -> str:
    """The API stage URL from ``--endpoint`` or ``CREDVEND_ENDPOINT``, checked."""
    endpoint = (explicit or environ.get(ENDPOINT_ENV) or "").strip()
    if not endpoint:
        raise UsageError("NoEndpoint", f"no endpoint: pass --endpoint URL or set {ENDPOINT_ENV} (the API stage URL)")
    parts = urlsplit(endpoint)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UsageError("InvalidEndpoint", f"endpoint must be an http(s) URL, got {endpoint!r}")
    if parts.query or parts.fragment:
        raise UsageError("InvalidEndpoint", "endpoint must not have a query or fragment")
    if parts.scheme == "http" and not _is_loopback(parts.hostname) and environ.get(INSECURE_HTTP_ENV) != "1":
        # The answer carries credentials: plain http only where nobody can listen in.
        raise UsageError(
            "InsecureEndpoint",
            "plain http is allowed only to loopback addresses; use https "
            f"(or set {INSECURE_HTTP_ENV}=1 for a test rig)",
        )
    return endpoint.rstrip("/")


def proxies_for(endpoint: str) -> dict[str, str]:
    """The proxies to reach ``endpoint`` through: none for plain http or a loopback host.

    Through a proxy, an http request (signature, session token, and the credentials in the
    answer) is readable by the proxy, and a loopback address means this machine anyway; only
    https to another host may use ``HTTPS_PROXY`` (a CONNECT tunnel the proxy cannot read).
    """
    parts = urlsplit(endpoint)
    if parts.scheme != "https" or _is_loopback(parts.hostname or ""):
        return {}
    return dict(get_environ_proxies(endpoint))


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def region_from_endpoint(endpoint: str) -> str | None:
    """``eu-west-1`` from ``https://abc.execute-api.eu-west-1.amazonaws.com/prod``; None for other hosts."""
    match = _EXECUTE_API_HOST.search(urlsplit(endpoint).hostname or "")
    return match.group(1) if match else None


def resolve_region(
    explicit: str | None, endpoint: str, environ: Mapping[str, str], session: botocore.session.Session
) -> str:
    """``--region``, else the region in an AWS endpoint URL (the signature must match it),
    else ``AWS_REGION``, else botocore's own (``AWS_DEFAULT_REGION``, the profile's ``region``)."""
    region = (
        explicit or region_from_endpoint(endpoint) or environ.get("AWS_REGION") or session.get_config_variable("region")
    )
    if not region:
        raise UsageError(
            "NoRegion", "no region to sign for: pass --region or set AWS_REGION (the endpoint URL names none)"
        )
    return str(region)


def guard_credential_process_recursion(environ: os._Environ[str] | dict[str, str]) -> None:
    """Refuse to run ``credential-process`` inside itself.

    If the profile credvend signs with is the profile whose ``credential_process`` runs
    credvend (``AWS_PROFILE=that-profile aws ...``), botocore would start credvend again,
    forever. The marker variable is inherited by the nested process, which stops here.
    """
    if environ.get(RECURSION_ENV):
        raise UsageError(
            "CredentialProcessLoop",
            "the AWS profile credvend signs with runs `credvend credential-process` itself; "
            f"sign with another identity: --profile NAME or {PROFILE_ENV}, or unset AWS_PROFILE",
        )
    environ[RECURSION_ENV] = "1"


# --- retries ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with capped exponential backoff and full jitter, honouring Retry-After."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    # A Retry-After longer than this is not waited out: the command fails (exit 4) and says so.
    max_retry_after: float = 20.0

    def delay(self, attempt: int, retry_after: float | None, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        backoff: float = rand() * min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return max(backoff, retry_after) if retry_after is not None else backoff


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now)


# --- the client ------------------------------------------------------------------------------


class HttpResponse(Protocol):
    status_code: int
    headers: Mapping[str, str]
    content: bytes


class HttpSender(Protocol):
    def send(self, request: Any) -> HttpResponse: ...


CredentialSource = Callable[[], ReadOnlyCredentials]
TokenSource = Callable[[], str]


def token_file_source(path: str) -> TokenSource:
    """The OIDC token in ``path``, read again for every request (issuers rotate these files:
    a Kubernetes projected token, a CI job's token); surrounding whitespace is dropped."""

    def source() -> str:
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_TOKEN_BYTES + 1)
        except OSError as exc:
            raise UsageError("TokenFile", f"cannot read the token file {path}: {exc.strerror or exc}") from None
        if len(data) > MAX_TOKEN_BYTES:
            raise UsageError("TokenFile", f"the token file {path} is larger than {MAX_TOKEN_BYTES} bytes")
        try:
            token = data.decode("ascii").strip()
        except UnicodeDecodeError:
            raise UsageError("TokenFile", f"the token file {path} is not a JWT (not ASCII)") from None
        if not token or any(char.isspace() for char in token):
            raise UsageError("TokenFile", f"the token file {path} does not hold one JWT")
        return token

    return source


def default_credential_source(session: botocore.session.Session) -> CredentialSource:
    """Frozen credentials from the default chain, re-read per request (they may refresh)."""

    def source() -> ReadOnlyCredentials:
        try:
            credentials = session.get_credentials()
        except BotoCoreError as exc:  # e.g. a profile that does not exist, an SSO token expired
            raise UsageError("NoCredentials", f"cannot load AWS credentials to sign with: {exc}") from None
        if credentials is None:
            raise UsageError(
                "NoCredentials",
                "no AWS credentials found to sign with (env, profile, SSO, container, instance role)",
            )
        return credentials.get_frozen_credentials()

    return source


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    read: float = 15.0  # API Gateway gives up at 29 s; a cold start plus STS is well under this


class CredvendClient:
    """Signed, retried requests to one credvend stage."""

    def __init__(
        self,
        endpoint: str,
        *,
        region: str,
        credentials: CredentialSource | None,
        token: TokenSource | None = None,
        retry: RetryPolicy = RetryPolicy(),
        timeouts: Timeouts = Timeouts(),
        http: HttpSender | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        user_agent: str = "credvend-cli",
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.region = region
        if (credentials is None) == (token is None):
            raise ValueError("a client authenticates with SigV4 credentials or an OIDC token, exactly one")
        self._credentials = credentials
        self._token = token
        self._retry = retry
        self._http: HttpSender = http or URLLib3Session(
            timeout=(timeouts.connect, timeouts.read), proxies=proxies_for(self.endpoint)
        )
        self._sleep = sleep
        self._rand = rand
        self._user_agent = user_agent

    def credentials_url(self, role: str, *, duration: int | None, fmt: str, dry_run: bool = False) -> str:
        if not ALIAS_PATTERN.fullmatch(role):
            raise UsageError("InvalidRole", f"{role!r} is not a role alias (letters, digits, '_', '.', '-')")
        if fmt not in FORMATS:
            raise UsageError("InvalidFormat", f"format must be one of {', '.join(FORMATS)}")
        query: dict[str, str] = {"format": fmt}
        if duration is not None:
            query["duration_seconds"] = str(duration)
        if dry_run:
            query["dry_run"] = "true"
        route = "oidc/credentials" if self._token is not None else "credentials"
        return f"{self.endpoint}/{route}/{quote(role, safe='')}?{urlencode(sorted(query.items()))}"

    def signed_request(self, url: str) -> AWSRequest:
        """A GET for ``url``: signed with SigV4 for ``execute-api`` in ``self.region``, or, with
        a token source, carrying the token as a bearer token (and no signature)."""
        request = AWSRequest(
            method="GET", url=url, headers={"Accept": "application/json", "User-Agent": self._user_agent}
        )
        if self._token is not None:
            request.headers["Authorization"] = f"Bearer {self._token()}"
            return request
        if self._credentials is not None:  # always, when there is no token (__init__)
            SigV4Auth(self._credentials(), SERVICE, self.region).add_auth(request)
        return request

    def vend(
        self, role: str, *, duration: int | None = None, fmt: str = "json", dry_run: bool = False
    ) -> dict[str, Any]:
        """``GET /credentials/{role}``: the parsed JSON answer, or a :class:`CredvendError`.
        With ``dry_run``, the grant the service would give now, and no credentials."""
        url = self.credentials_url(role, duration=duration, fmt=fmt, dry_run=dry_run)
        attempt = 0
        while True:
            attempt += 1
            outcome = self._attempt(url)
            if outcome.error is None:
                return outcome.body
            if not outcome.retryable or attempt >= self._retry.max_attempts:
                raise outcome.error
            if outcome.retry_after is not None and outcome.retry_after > self._retry.max_retry_after:
                raise UpstreamError(
                    outcome.error.code,
                    f"{outcome.error.message} - the service asks to retry after {outcome.retry_after:.0f} s",
                    status=outcome.error.status,
                    request_id=outcome.error.request_id,
                )
            self._sleep(self._retry.delay(attempt, outcome.retry_after, self._rand))

    def _attempt(self, url: str) -> _Outcome:
        request = self.signed_request(url)  # re-signed per attempt: fresh X-Amz-Date
        try:
            response = self._http.send(request.prepare())
        except SSLError as exc:  # a certificate problem does not heal by retrying
            return _Outcome.failed(UpstreamError("TLSError", f"TLS to {_host(url)} failed: {exc}"), retryable=False)
        except (BotoConnectionError, HTTPClientError) as exc:  # refused, DNS, connect/read timeouts, resets
            return _Outcome.failed(UpstreamError("NetworkError", f"{type(exc).__name__} talking to {_host(url)}"))
        request_id = _request_id(response)
        body = _json_or_none(response.content)
        if isinstance(body, dict) and isinstance(body.get("RequestId"), str):
            request_id = body["RequestId"]
        if 200 <= response.status_code < 300:
            if not isinstance(body, dict):
                invalid = UpstreamError("InvalidResponse", "the answer is not a JSON object", request_id=request_id)
                return _Outcome.failed(invalid, retryable=False)
            return _Outcome(body=body)
        code, message = _error_fields(response, body)
        error = error_for_status(response.status_code, code, message, request_id)
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=time.time())
        return _Outcome.failed(error, retryable=isinstance(error, UpstreamError), retry_after=retry_after)


@dataclass(frozen=True)
class _Outcome:
    """One attempt: the JSON answer, or an error and whether another attempt may help."""

    body: dict[str, Any] = field(default_factory=dict)
    error: CredvendError | None = None
    retryable: bool = False
    retry_after: float | None = None

    @classmethod
    def failed(cls, error: CredvendError, *, retryable: bool = True, retry_after: float | None = None) -> _Outcome:
        return cls(error=error, retryable=retryable, retry_after=retry_after)


def _host(url: str) -> str:
    return urlsplit(url).netloc


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None


def _request_id(response: HttpResponse) -> str | None:
    for name in _REQUEST_ID_HEADERS:
        value = response.headers.get(name)
        if value:
            return value
    return None


def _error_fields(response: HttpResponse, body: Any) -> tuple[str, str]:
    """(code, message) from credvend's error JSON or API Gateway's own ``{"message": ...}``."""
    if isinstance(body, dict):
        error = body.get("Error")
        if isinstance(error, dict):
            return str(error.get("Code") or f"HTTP{response.status_code}"), str(error.get("Message") or "")
        if isinstance(body.get("message"), str) or isinstance(body.get("Message"), str):
            # API Gateway: x-amzn-ErrorType is e.g. "IncompleteSignatureException:http://internal..."
            error_type = response.headers.get("x-amzn-ErrorType", "").split(":", 1)[0]
            return error_type or f"HTTP{response.status_code}", str(body.get("message") or body.get("Message"))
    return f"HTTP{response.status_code}", "the service answered without an error document"


def build_client(
    *,
    endpoint: str | None,
    region: str | None,
    profile: str | None,
    timeouts: Timeouts = Timeouts(),
    retry: RetryPolicy = RetryPolicy(),
    environ: Mapping[str, str] = os.environ,
    token_file: str | None = None,
) -> CredvendClient:
    """A client configured the way the command line documents it."""
    url = resolve_endpoint(endpoint, environ)
    token_file = token_file or environ.get(TOKEN_FILE_ENV) or None
    if token_file is not None:
        # An OIDC caller: no AWS credentials, no region, no signature (CONTRACT §10).
        return CredvendClient(
            url, region="", credentials=None, token=token_file_source(token_file), retry=retry, timeouts=timeouts
        )
    profile = profile or environ.get(PROFILE_ENV) or None
    try:
        session = botocore.session.Session(profile=profile)
        resolved_region = resolve_region(region, url, environ, session)
    except BotoCoreError as exc:  # ProfileNotFound and friends
        raise UsageError("InvalidConfig", str(exc)) from None
    return CredvendClient(
        url,
        region=resolved_region,
        credentials=default_credential_source(session),
        retry=retry,
        timeouts=timeouts,
    )


__all__ = [
    "CredentialSource",
    "CredvendClient",
    "CredvendError",
    "RetryPolicy",
    "Timeouts",
    "TokenSource",
    "build_client",
    "parse_retry_after",
    "proxies_for",
    "region_from_endpoint",
    "resolve_endpoint",
    "resolve_region",
]
