"""Domain errors and the ONE table that maps them to HTTP status and error code.

Messages are fixed strings written here, never text from STS: an STS message can name
the service's own role (``User: arn:aws:sts::...:assumed-role/credvend-fn/... is not
authorized``), which callers must not learn.
"""

from __future__ import annotations

from typing import ClassVar


class CredvendError(Exception):
    """Base of every error the service answers with; ``code`` and ``status`` come from ERRORS."""

    code: ClassVar[str] = "InternalError"
    default_message: ClassVar[str] = "The request could not be completed."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    @property
    def status(self) -> int:
        return ERRORS[self.code]


class InvalidRequest(CredvendError):
    code = "InvalidRequest"
    default_message = "The request is not valid."


class InvalidDuration(CredvendError):
    code = "InvalidDuration"
    default_message = "duration_seconds must be an integer from 1 to 43200."


class Unauthenticated(CredvendError):
    """No identity, or a token that failed verification: ONE message for every case, so a
    forger learns nothing about which check failed; ``reason`` goes to the audit log only."""

    code = "Unauthenticated"
    default_message = "The request carries no verified caller identity."

    def __init__(self, *, reason: str | None = None) -> None:
        self.reason = reason
        super().__init__()


class AccessDenied(CredvendError):
    """Unknown caller, role not granted, unknown alias: one code and ONE message for all three."""

    code = "AccessDenied"
    default_message = "The caller is not allowed to get credentials for this role."

    def __init__(self, *, reason: str) -> None:
        # ``reason`` is for the audit log only; the response always says the same thing,
        # so a caller cannot tell an unknown alias from one it is not granted.
        self.reason = reason
        super().__init__()


class PayloadTooLarge(CredvendError):
    code = "PayloadTooLarge"
    default_message = "The request body is larger than 8 KiB."


class Throttled(CredvendError):
    code = "Throttled"
    default_message = "STS is throttling requests; retry later."

    def __init__(self, *, retry_after_seconds: int = 1) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__()


class UpstreamError(CredvendError):
    code = "UpstreamError"
    default_message = "STS refused or failed the request."

    def __init__(self, *, upstream_code: str = "") -> None:
        self.upstream_code = upstream_code  # STS's error code, for logs; never its message
        super().__init__()


class DurationRejected(UpstreamError):
    """STS refused DurationSeconds (a role's real maximum is lower than declared).

    The vend orchestration retries once at 3600; if it escapes, it answers as UpstreamError.
    """

    code = "UpstreamError"


class UpstreamUnavailable(CredvendError):
    code = "UpstreamUnavailable"
    default_message = "STS did not answer in time."

    def __init__(self, *, reason: str | None = None) -> None:
        self.reason = reason  # for the audit log, e.g. "no_time_left": the call was never started
        super().__init__()


class NotFound(CredvendError):
    code = "NotFound"
    default_message = "No such route."


class InternalError(CredvendError):
    code = "InternalError"
    default_message = "An internal error occurred."

    def __init__(self, *, reason: str | None = None) -> None:
        self.reason = reason  # for the audit log, e.g. "web_identity_not_configured"
        super().__init__()


# The one error -> status table (CONTRACT §2).
ERRORS: dict[str, int] = {
    InvalidRequest.code: 400,
    InvalidDuration.code: 400,
    Unauthenticated.code: 401,
    AccessDenied.code: 403,
    NotFound.code: 404,
    PayloadTooLarge.code: 413,
    Throttled.code: 429,
    UpstreamError.code: 502,
    UpstreamUnavailable.code: 503,
    InternalError.code: 500,
}
