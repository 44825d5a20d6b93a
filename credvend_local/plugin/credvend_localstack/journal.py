"""A journal of the AssumeRole (and AssumeRoleWithWebIdentity) decisions the STS rules made,
for tests to read.

Why: end-to-end tests must show what the vending function *sends* to STS (its durations,
its source identities) and that STS never refused it — things the API response alone
cannot prove. The function runs inside LocalStack, so the tests read this journal over
HTTP (see sts_rules.py for the route).

Pure (no LocalStack imports) so it is unit-tested on its own. Entries hold identifiers
and outcomes only, never a secret: no secret keys, session tokens, external ids or web
identity tokens.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

ALLOWED = "allowed"
REFUSED = "refused"


@dataclass(frozen=True)
class JournalEntry:
    seq: int  # 1, 2, 3... in decision order; survives reset, so marks stay meaningful
    time: str  # ISO 8601, UTC
    caller_arn: str  # who signed: user, assumed-role session, or account root ARN
    role_arn: str
    role_session_name: str
    duration_seconds: int | None  # as sent; None when omitted (STS then uses 3600)
    source_identity: str | None  # the new session's: sent, or inherited from the caller
    outcome: str  # ALLOWED or REFUSED
    error_code: str | None = None  # STS's error code when refused (ValidationError, AccessDenied...)
    error_message: str | None = None
    # AssumeRole, or AssumeRoleWithWebIdentity: then caller_arn is the IAM OIDC provider's ARN
    # (the token's issuer when no provider matched) and subject the token's sub claim
    operation: str = "AssumeRole"
    subject: str | None = None
    request_id: str | None = None  # STS's RequestId in the answer (CloudTrail's requestID)
    # The issued session's key id (allowed only; not a secret, CloudTrail shows it too): ties
    # credentials a test received to the one AssumeRole that issued them.
    access_key_id: str | None = None


class AssumeRoleJournal:
    """Thread-safe, bounded, in-memory list of decisions. LocalStack serves requests on
    many threads, and a long test session must not grow it without bound: the oldest
    entries go first, and `dropped` says how many went, so a reader can tell."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: deque[JournalEntry] = deque(maxlen=max_entries)
        self._lock = threading.Lock()
        self._last_seq = 0
        self._dropped = 0

    def record(
        self,
        *,
        caller_arn: str,
        role_arn: str,
        role_session_name: str,
        duration_seconds: int | None,
        source_identity: str | None,
        error_code: str | None = None,
        error_message: str | None = None,
        operation: str = "AssumeRole",
        subject: str | None = None,
        request_id: str | None = None,
        access_key_id: str | None = None,
    ) -> JournalEntry:
        with self._lock:
            self._last_seq += 1
            entry = JournalEntry(
                seq=self._last_seq,
                time=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                caller_arn=caller_arn,
                role_arn=role_arn,
                role_session_name=role_session_name,
                duration_seconds=duration_seconds,
                source_identity=source_identity,
                outcome=REFUSED if error_code else ALLOWED,
                error_code=error_code,
                error_message=error_message,
                operation=operation,
                subject=subject,
                request_id=request_id,
                access_key_id=access_key_id,
            )
            if len(self._entries) == self._entries.maxlen:
                self._dropped += 1
            self._entries.append(entry)
            return entry

    def snapshot(self, after: int = 0) -> dict[str, Any]:
        """The entries with seq > `after`, as JSON-ready dicts. `last_seq` is the mark to
        pass as `after` next time to see only newer decisions."""
        with self._lock:
            entries = [asdict(e) for e in self._entries if e.seq > after]
            return {"entries": entries, "last_seq": self._last_seq, "dropped": self._dropped}

    def reset(self) -> None:
        """Forget the entries (seq keeps counting, so old marks never see reused numbers)."""
        with self._lock:
            self._entries.clear()
            self._dropped = 0


def after_param(query: Mapping[str, str]) -> int:
    """The `after` query parameter of a GET: a non-negative integer, 0 when absent."""
    raw = query.get("after", "0")
    try:
        after = int(raw)
    except ValueError:
        raise ValueError(f"after must be an integer, not {raw!r}") from None
    if after < 0:
        raise ValueError("after must not be negative")
    return after
