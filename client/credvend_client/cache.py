"""When the sidecar goes upstream: a per-role cache with an injected clock and fetch function.

The schedule, in one place:

- A fetched credential is served from cache until its *refresh time*; then the next request
  refreshes it upstream. For a grant long enough, the refresh time is
  ``REFRESH_BEFORE_EXPIRY`` before expiry, so every credential an SDK receives has more than
  that left and the SDK comes back about once per lifetime, never hammering us.
- A grant too short for that (``lifetime - REFRESH_BEFORE_EXPIRY`` under
  ``MIN_REFRESH_INTERVAL``) cannot keep SDKs out of their refresh windows: botocore then asks
  on every credential access. The cache answers those and goes upstream at most once per
  ``MIN_REFRESH_INTERVAL`` (or half the lifetime, if shorter).
- Nothing with ``SERVE_MARGIN`` or less left is ever served; when nothing better exists the
  caller gets :class:`CredentialsUnavailable` (the sidecar answers 503).
- Refreshes run in the background whenever what the cache holds can still be served: the
  request that finds a refresh due starts it and is answered from cache at once, like every
  request while it runs (a slow or hung upstream costs no caller any time). Only a cold cache,
  or one holding nothing servable, makes the request wait for upstream.
- One upstream call in flight per role. A request with nothing valid to fall back on waits
  for the running call and shares its result (or its failure) instead of starting another.
- An upstream failure while valid credentials remain is absorbed: they keep being served,
  and the next attempt waits ``FAILURE_BACKOFF``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from credvend_client.credentials import VendedCredentials
from credvend_client.errors import CredvendError, UpstreamError

# botocore refreshes from 15 min before expiry (advisory) and blocks from 10 min (mandatory);
# the Go, JS and Java SDKs start 5 min before. Handing out nothing with less than 20 min left
# keeps every SDK outside its window, with 5 min to spare for clock skew between hosts.
REFRESH_BEFORE_EXPIRY = 20 * 60
# For grants too short for the rule above (botocore refetches on every credential access),
# this bounds upstream calls to 12 an hour per role.
MIN_REFRESH_INTERVAL = 5 * 60
# A credential is only useful if the caller has time to use it; clocks also drift.
SERVE_MARGIN = 60
# After a failed refresh, still-valid credentials are served and upstream rests this long.
FAILURE_BACKOFF = 10

Clock = Callable[[], float]
Fetch = Callable[[str], VendedCredentials]
Background = Callable[[Callable[[], None]], None]


def in_a_thread(job: Callable[[], None]) -> None:
    """The default way to run a background refresh: a daemon thread, so a hung upstream call
    never keeps the process from exiting."""
    threading.Thread(target=job, name="credvend-refresh", daemon=True).start()


class CredentialsUnavailable(Exception):
    """No credentials with more than ``SERVE_MARGIN`` left, and upstream did not provide any."""

    def __init__(self, role: str, cause: CredvendError | None) -> None:
        self.role = role
        self.cause = cause
        super().__init__(f"no valid credentials for {role}: {cause.line() if cause else 'upstream gave none'}")


@dataclass(frozen=True)
class Schedule:
    """When a cached credential is refreshed, and until when it may still be served."""

    refresh_at: float
    usable_until: float

    @classmethod
    def for_credentials(cls, credentials: VendedCredentials, *, fetched_at: float) -> Schedule:
        expires_at = credentials.expires_at
        lifetime = expires_at - fetched_at
        interval = max(lifetime - REFRESH_BEFORE_EXPIRY, min(MIN_REFRESH_INTERVAL, lifetime / 2))
        usable_until = expires_at - SERVE_MARGIN
        return cls(refresh_at=min(fetched_at + interval, usable_until), usable_until=usable_until)


@dataclass(frozen=True)
class _Entry:
    credentials: VendedCredentials
    schedule: Schedule


class _Slot:
    """Per-role state. ``entry`` is replaced whole, so readers never need the lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # held for the duration of the one upstream call
        self.entry: _Entry | None = None
        self.attempts = 0  # completed upstream calls, to spot one that ended while we waited
        self.last_error: CredvendError | None = None
        self.retry_not_before = float("-inf")


@dataclass
class CacheStats:
    hits: int = 0
    upstream_calls: int = 0
    upstream_failures: int = 0
    served_stale_on_failure: int = 0


class CredentialCache:
    """Per-role credential cache for the sidecar. Thread-safe; the clock is POSIX seconds."""

    def __init__(
        self,
        fetch: Fetch,
        *,
        clock: Clock = time.time,
        on_event: Callable[[str], None] | None = None,
        background: Background = in_a_thread,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._background = background
        self._on_event = on_event or (lambda _message: None)
        self._slots: dict[str, _Slot] = {}
        self._slots_lock = threading.Lock()
        self.stats = CacheStats()

    def _slot(self, role: str) -> _Slot:
        slot = self._slots.get(role)
        if slot is None:
            with self._slots_lock:
                slot = self._slots.setdefault(role, _Slot())
        return slot

    def get(self, role: str) -> VendedCredentials:
        """Credentials for ``role`` with more than ``SERVE_MARGIN`` left, fetching when due."""
        slot = self._slot(role)
        now = self._clock()
        entry = slot.entry
        if entry is not None and now < entry.schedule.refresh_at:
            self.stats.hits += 1
            return entry.credentials
        fallback = entry if entry is not None and now < entry.schedule.usable_until else None
        if fallback is not None:
            # Refresh due, but what we hold is still good: this caller never waits, neither
            # behind a running refresh nor for the one it starts, and a failing upstream is
            # left alone until the backoff ends.
            self.stats.hits += 1
            if now >= slot.retry_not_before and slot.lock.acquire(blocking=False):
                self._refresh_in_background(role, slot)
            # Normally still the fallback; the fresh credentials if the refresh already ended.
            return (slot.entry or fallback).credentials
        else:
            attempts_seen = slot.attempts
            slot.lock.acquire()
            if slot.attempts != attempts_seen and slot.last_error is not None and slot.entry is entry:
                # The call we waited for failed: share its failure rather than call again.
                slot.lock.release()
                raise CredentialsUnavailable(role, slot.last_error)
        try:
            return self._refresh_locked(role, slot)
        finally:
            slot.lock.release()

    def _refresh_in_background(self, role: str, slot: _Slot) -> None:
        """Run the refresh (the caller holds ``slot.lock``; the job releases it when done)."""

        def job() -> None:
            try:
                self._refresh_locked(role, slot)
            except CredentialsUnavailable:
                pass  # already counted and logged; the next request finds nothing valid and waits
            except Exception as exc:  # a bug: keep the sidecar serving, say what broke
                self._on_event(f"refresh of {role} failed unexpectedly ({type(exc).__name__})")
            finally:
                slot.lock.release()

        try:
            self._background(job)
        except BaseException:  # the job never started (no thread left): do not hold the lock forever
            slot.lock.release()
            raise

    def _refresh_locked(self, role: str, slot: _Slot) -> VendedCredentials:
        now = self._clock()
        entry = slot.entry
        if entry is not None and now < entry.schedule.refresh_at:  # refreshed while we waited
            self.stats.hits += 1
            return entry.credentials
        self.stats.upstream_calls += 1
        try:
            fresh = self._fetch(role)
            fetched_at = self._clock()
            schedule = Schedule.for_credentials(fresh, fetched_at=fetched_at)
            if fetched_at >= schedule.usable_until:
                raise UpstreamError("ExpiredCredentials", "upstream returned credentials that expire within a minute")
        except CredvendError as exc:
            slot.attempts += 1
            return self._failed_locked(role, slot, exc)
        slot.attempts += 1
        slot.entry = _Entry(fresh, schedule)
        slot.last_error = None
        slot.retry_not_before = float("-inf")
        self._on_event(
            f"refreshed {role}: expires {fresh.expiration:%Y-%m-%dT%H:%M:%SZ}, "
            f"next refresh in {schedule.refresh_at - fetched_at:.0f} s"
        )
        return fresh

    def _failed_locked(self, role: str, slot: _Slot, error: CredvendError) -> VendedCredentials:
        now = self._clock()
        slot.last_error = error
        slot.retry_not_before = now + FAILURE_BACKOFF
        self.stats.upstream_failures += 1
        entry = slot.entry
        if entry is not None and now < entry.schedule.usable_until:
            self.stats.served_stale_on_failure += 1
            left = entry.credentials.expires_at - now
            self._on_event(f"refresh of {role} failed ({error.line()}); serving cached credentials, {left:.0f} s left")
            return entry.credentials
        self._on_event(f"refresh of {role} failed ({error.line()}); nothing valid to serve")
        raise CredentialsUnavailable(role, error)
