"""Exit codes and the errors that map to them: one table, one place.

Scripts rely on these codes, so they are part of the interface (docs/client.md):

=====  ==========  ==========================================================================
code   name        when
=====  ==========  ==========================================================================
0      OK          success
1      INTERNAL    a bug in credvend itself (unexpected exception)
2      USAGE       bad arguments or configuration, an invalid policy file, a 400/404/413 from
                   the service, no AWS credentials to sign with
3      DENIED      the service said 401 or 403 (not granted, unknown alias, bad signature)
4      UPSTREAM    429 after retries, 5xx, timeouts, network errors, an unreadable answer
=====  ==========  ==========================================================================
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    INTERNAL = 1
    USAGE = 2
    DENIED = 3
    UPSTREAM = 4


MAX_MESSAGE_CHARS = 300


def one_line(text: str, *, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Collapse whitespace (a message must stay on one stderr line) and cut long text."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class CredvendError(Exception):
    """An error the command reports on one stderr line and turns into an exit code.

    ``message`` must never contain a secret: it is built from error codes, the service's
    ``Error.Message`` and request ids, never from credentials or request headers.
    """

    exit_code = ExitCode.INTERNAL

    def __init__(self, code: str, message: str, *, status: int | None = None, request_id: str | None = None) -> None:
        self.code = code
        self.message = one_line(message)
        self.status = status
        self.request_id = request_id
        super().__init__(self.line())

    def line(self) -> str:
        """``Code: message (HTTP 403, request id abc)``, one line."""
        details = []
        if self.status is not None:
            details.append(f"HTTP {self.status}")
        if self.request_id:
            details.append(f"request id {one_line(self.request_id, limit=80)}")
        suffix = f" ({', '.join(details)})" if details else ""
        return f"{self.code}: {self.message}{suffix}"


class UsageError(CredvendError):
    exit_code = ExitCode.USAGE


class DeniedError(CredvendError):
    exit_code = ExitCode.DENIED


class UpstreamError(CredvendError):
    exit_code = ExitCode.UPSTREAM


def error_for_status(status: int, code: str, message: str, request_id: str | None) -> CredvendError:
    """The one mapping from an HTTP error status of the service to an error class."""
    if status in (401, 403):
        return DeniedError(code, message, status=status, request_id=request_id)
    if status == 429 or status >= 500:
        return UpstreamError(code, message, status=status, request_id=request_id)
    return UsageError(code, message, status=status, request_id=request_id)
