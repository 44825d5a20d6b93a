"""The sidecar cache's refresh schedule, with a fake clock and a fake upstream."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credvend_client.cache import (
    FAILURE_BACKOFF,
    MIN_REFRESH_INTERVAL,
    REFRESH_BEFORE_EXPIRY,
    SERVE_MARGIN,
    CredentialCache,
    CredentialsUnavailable,
    Schedule,
)
from credvend_client.credentials import VendedCredentials
from credvend_client.errors import DeniedError, UpstreamError

START = 1_800_000_000.0
BOTOCORE_ADVISORY_WINDOW = 15 * 60


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeUpstream:
    """Grants ``lifetime`` seconds from the fake clock's now; can be told to fail."""

    def __init__(self, clock: FakeClock, lifetime: float = 3600) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.calls: list[float] = []
        self.failure: Exception | None = None

    def __call__(self, role: str) -> VendedCredentials:
        self.calls.append(self.clock.now)
        if self.failure is not None:
            raise self.failure
        serial = len(self.calls)
        return VendedCredentials(
            access_key_id=f"ASIA{serial:016d}",
            secret_access_key=f"secret-{serial}",
            session_token=f"token-{serial}",
            expiration=datetime.fromtimestamp(self.clock.now + self.lifetime, UTC),
            account_id="123456789012",
        )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def inline(job: Callable[[], None]) -> None:
    """Runs a background refresh at once, in the caller's thread: the schedule tests below see
    each refresh completed when ``get`` returns, as if upstream answered instantly."""
    job()


def test_a_one_hour_grant_is_refreshed_once_when_20_minutes_remain(clock: FakeClock) -> None:
    upstream = FakeUpstream(clock, lifetime=3600)
    cache = CredentialCache(upstream, clock=clock, background=inline)
    served_remaining = []
    for _ in range(3600):  # one request a second for an hour
        credentials = cache.get("reports-reader")
        served_remaining.append(credentials.expires_at - clock.now)
        clock.advance(1)

    assert upstream.calls == [START, START + 3600 - REFRESH_BEFORE_EXPIRY]
    # Every SDK got credentials outside botocore's advisory window (15 min), with margin.
    assert min(served_remaining) > REFRESH_BEFORE_EXPIRY - 1 > BOTOCORE_ADVISORY_WINDOW


def test_the_refresh_happens_at_the_scheduled_second_not_before(clock: FakeClock) -> None:
    upstream = FakeUpstream(clock)
    cache = CredentialCache(upstream, clock=clock, background=inline)
    first = cache.get("r")
    clock.advance(3600 - REFRESH_BEFORE_EXPIRY - 0.5)
    assert cache.get("r") is first
    clock.advance(0.5)
    assert cache.get("r") is not first
    assert len(upstream.calls) == 2


@pytest.mark.parametrize("lifetime", [900, 1200])
def test_a_short_grant_is_not_fetched_on_every_request(clock: FakeClock, lifetime: int) -> None:
    upstream = FakeUpstream(clock, lifetime=lifetime)
    cache = CredentialCache(upstream, clock=clock, background=inline)
    for _ in range(3600):  # botocore asks on every access when credentials are this short
        credentials = cache.get("r")
        assert credentials.expires_at - clock.now > SERVE_MARGIN
        clock.advance(1)
    intervals = [later - earlier for earlier, later in zip(upstream.calls, upstream.calls[1:], strict=False)]
    assert min(intervals) >= min(MIN_REFRESH_INTERVAL, lifetime / 2)
    assert len(upstream.calls) <= 3600 / min(MIN_REFRESH_INTERVAL, lifetime / 2) + 1


def test_roles_are_cached_separately(clock: FakeClock) -> None:
    upstream = FakeUpstream(clock)
    cache = CredentialCache(upstream, clock=clock, background=inline)
    a, b = cache.get("a"), cache.get("b")
    assert a != b
    assert cache.get("a") is a
    assert len(upstream.calls) == 2


def test_upstream_failure_keeps_serving_valid_credentials_and_backs_off(clock: FakeClock) -> None:
    upstream = FakeUpstream(clock)
    cache = CredentialCache(upstream, clock=clock, background=inline)
    first = cache.get("r")
    clock.advance(3600 - REFRESH_BEFORE_EXPIRY)
    upstream.failure = UpstreamError("UpstreamUnavailable", "STS timed out", status=503)

    assert cache.get("r") is first  # refresh failed: still 20 min left, so it is served
    assert len(upstream.calls) == 2
    clock.advance(FAILURE_BACKOFF - 1)
    assert cache.get("r") is first  # within the backoff: upstream is left alone
    assert len(upstream.calls) == 2
    clock.advance(1)
    assert cache.get("r") is first
    assert len(upstream.calls) == 3

    upstream.failure = None
    clock.advance(FAILURE_BACKOFF)
    assert cache.get("r") is not first
    assert cache.stats.served_stale_on_failure == 2


def test_expired_credentials_are_never_served(clock: FakeClock) -> None:
    upstream = FakeUpstream(clock)
    cache = CredentialCache(upstream, clock=clock, background=inline)
    cache.get("r")
    upstream.failure = UpstreamError("UpstreamUnavailable", "down", status=503)
    clock.advance(3600 - SERVE_MARGIN - 1)
    assert cache.get("r").expires_at - clock.now > SERVE_MARGIN  # the last good second
    clock.advance(FAILURE_BACKOFF + 1)
    with pytest.raises(CredentialsUnavailable) as raised:
        cache.get("r")
    assert isinstance(raised.value.cause, UpstreamError)
    clock.advance(SERVE_MARGIN + 10)  # now truly expired
    with pytest.raises(CredentialsUnavailable):
        cache.get("r")


def test_nothing_cached_and_upstream_denies(clock: FakeClock) -> None:
    upstream = FakeUpstream(clock)
    upstream.failure = DeniedError("AccessDenied", "not granted", status=403)
    cache = CredentialCache(upstream, clock=clock, background=inline)
    with pytest.raises(CredentialsUnavailable) as raised:
        cache.get("r")
    assert isinstance(raised.value.cause, DeniedError)


def test_credentials_that_expire_within_the_margin_are_refused(clock: FakeClock) -> None:
    cache = CredentialCache(FakeUpstream(clock, lifetime=SERVE_MARGIN), clock=clock, background=inline)
    with pytest.raises(CredentialsUnavailable, match="expire within a minute"):
        cache.get("r")


# The concurrency tests below never sleep and hope: they hold the one upstream call open until
# every other caller is provably queued behind it (or provably not), then let it finish. Every
# wait is bounded by TIMEOUT, so a broken cache fails a test instead of hanging it.
TIMEOUT = 5.0
CALLERS = 20


class BlockingUpstream(FakeUpstream):
    """Holds each call open until ``release`` is set; ``started`` counts calls that began."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.started = 0
        self._started_lock = threading.Lock()

    def __call__(self, role: str) -> VendedCredentials:
        with self._started_lock:
            self.started += 1
        self.entered.set()
        # Only a backstop: each test releases in a ``finally``. Longer than TIMEOUT, so a test's
        # own bounded waits run out first and report what went wrong.
        if not self.release.wait(3 * TIMEOUT):
            raise AssertionError("the test never released the upstream call")
        return super().__call__(role)


class ObservedLock:
    """Wraps a slot's lock and counts the callers blocked in ``acquire()`` behind its holder."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._changed = threading.Condition()
        self.waiting = 0  # callers inside a blocking acquire() that has not returned yet
        self.max_waiting = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not blocking:
            return self._lock.acquire(blocking=False)
        with self._changed:
            self.waiting += 1
            self.max_waiting = max(self.max_waiting, self.waiting)
            self._changed.notify_all()
        try:
            return self._lock.acquire(True, timeout)
        finally:
            with self._changed:
                self.waiting -= 1
                self._changed.notify_all()

    def release(self) -> None:
        self._lock.release()

    def wait_for_waiters(self, count: int) -> bool:
        """True once ``count`` callers are blocked in ``acquire()`` at the same time."""
        with self._changed:
            return self._changed.wait_for(lambda: self.waiting >= count, TIMEOUT)


def _observe_lock(cache: CredentialCache, role: str) -> ObservedLock:
    """Puts an :class:`ObservedLock` around the lock the cache holds for ``role``'s upstream call."""
    slot = cache._slot(role)
    observed = ObservedLock(slot.lock)
    slot.lock = observed  # type: ignore[assignment]
    return observed


def _in_threads(count: int, target: Callable[[], object]) -> tuple[list[object], list[threading.Thread]]:
    """Starts ``count`` threads that call ``target`` together (after a barrier); results or exceptions."""
    results: list[object] = [None] * count
    start_together = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            start_together.wait(TIMEOUT)
            results[index] = target()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(index,), daemon=True) for index in range(count)]
    for thread in threads:
        thread.start()
    return results, threads


def _join(threads: list[threading.Thread]) -> list[threading.Thread]:
    """Joins within one shared TIMEOUT; returns the threads still running."""
    deadline = time.monotonic() + TIMEOUT
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [thread for thread in threads if thread.is_alive()]


def _contend_with_nothing_cached(cache: CredentialCache, upstream: BlockingUpstream) -> list[object]:
    """CALLERS threads ask for role "r" at once; the upstream call is held open until every
    other caller is provably blocked behind it, then released. Returns each caller's result."""
    lock = _observe_lock(cache, "r")
    results, threads = _in_threads(CALLERS, lambda: cache.get("r"))
    try:
        assert upstream.entered.wait(TIMEOUT)
        # Every other caller has nothing valid, so each must be blocked behind the running call.
        assert lock.wait_for_waiters(CALLERS - 1), f"only {lock.waiting} callers queued behind the upstream call"
        assert upstream.started == 1
    finally:
        upstream.release.set()
        stuck = _join(threads)
    assert stuck == []
    return results


def test_one_upstream_call_in_flight_per_role_concurrent_callers_share_it(clock: FakeClock) -> None:
    upstream = BlockingUpstream(clock)
    cache = CredentialCache(upstream, clock=clock)
    results = _contend_with_nothing_cached(cache, upstream)

    assert len(upstream.calls) == 1
    assert cache.stats.upstream_calls == 1
    assert isinstance(results[0], VendedCredentials)
    assert all(result is results[0] for result in results)


def test_waiters_share_a_failure_instead_of_calling_again(clock: FakeClock) -> None:
    upstream = BlockingUpstream(clock)
    failure = UpstreamError("UpstreamUnavailable", "down", status=503)
    upstream.failure = failure
    cache = CredentialCache(upstream, clock=clock)
    results = _contend_with_nothing_cached(cache, upstream)

    assert len(upstream.calls) == 1
    assert cache.stats.upstream_calls == 1
    assert cache.stats.upstream_failures == 1
    # The caller that went upstream and every caller that waited for it get the same failure.
    assert all(isinstance(result, CredentialsUnavailable) for result in results), results
    assert all(result.cause is failure for result in results if isinstance(result, CredentialsUnavailable))


def _cached_then_due(clock: FakeClock, upstream: BlockingUpstream, cache: CredentialCache) -> VendedCredentials:
    """Fills the cache (upstream answering at once), then moves to the moment a refresh is due
    while what is cached still has 20 minutes left. Upstream blocks from now on."""
    upstream.release.set()
    first = cache.get("r")
    upstream.release.clear()
    upstream.entered.clear()
    clock.advance(3600 - REFRESH_BEFORE_EXPIRY)
    return first


def test_the_request_that_finds_a_refresh_due_is_answered_from_cache_while_upstream_hangs(clock: FakeClock) -> None:
    upstream = BlockingUpstream(clock)
    refreshed = threading.Event()
    cache = CredentialCache(
        upstream, clock=clock, on_event=lambda line: refreshed.set() if "refreshed" in line else None
    )
    first = _cached_then_due(clock, upstream, cache)
    refreshed.clear()
    try:
        # In this thread: if get() waited for upstream, it would block until the backstop.
        assert cache.get("r") is first
        assert upstream.entered.wait(TIMEOUT), "no refresh was started"
        assert not upstream.release.is_set()  # answered while the upstream call is still held open
        assert cache.get("r") is first  # and again, without a second upstream call
        assert upstream.started == 2
    finally:
        upstream.release.set()
    assert refreshed.wait(TIMEOUT)
    fresh = cache.get("r")
    assert fresh is not first
    assert len(upstream.calls) == 2
    assert fresh.expires_at - clock.now == 3600


def test_a_running_refresh_does_not_hold_up_callers_while_cached_credentials_are_valid(clock: FakeClock) -> None:
    upstream = BlockingUpstream(clock)
    cache = CredentialCache(upstream, clock=clock)
    first = _cached_then_due(clock, upstream, cache)
    lock = _observe_lock(cache, "r")
    try:
        readers, reader_threads = _in_threads(CALLERS, lambda: cache.get("r"))
        # Every reader finishes while the one refresh is still held open upstream: nobody waited.
        assert _join(reader_threads) == [], "readers waited behind the running refresh"
        assert upstream.entered.is_set() and not upstream.release.is_set()
        assert upstream.started == 2
        assert lock.max_waiting == 0
        assert all(reader is first for reader in readers), readers
    finally:
        upstream.release.set()
    assert _wait_for(lambda: cache.get("r") is not first)
    assert len(upstream.calls) == 2


def test_a_failed_background_refresh_keeps_serving_then_backs_off(clock: FakeClock) -> None:
    upstream = BlockingUpstream(clock)
    failed = threading.Event()
    cache = CredentialCache(upstream, clock=clock, on_event=lambda line: failed.set() if "failed" in line else None)
    first = _cached_then_due(clock, upstream, cache)
    upstream.failure = UpstreamError("UpstreamUnavailable", "down", status=503)
    upstream.release.set()
    assert cache.get("r") is first
    assert failed.wait(TIMEOUT)
    assert cache.get("r") is first  # within the backoff: served, upstream left alone
    assert upstream.started == 2
    assert cache.stats.served_stale_on_failure == 1


def test_expired_credentials_wait_for_upstream_instead_of_being_served(clock: FakeClock) -> None:
    upstream = BlockingUpstream(clock)
    cache = CredentialCache(upstream, clock=clock)
    first = _cached_then_due(clock, upstream, cache)
    clock.advance(REFRESH_BEFORE_EXPIRY - SERVE_MARGIN)  # nothing servable left
    results, threads = _in_threads(1, lambda: cache.get("r"))
    try:
        assert upstream.entered.wait(TIMEOUT)
        assert threads[0].is_alive()  # the request waits for upstream: no stale answer
    finally:
        upstream.release.set()
    assert _join(threads) == []
    assert isinstance(results[0], VendedCredentials) and results[0] is not first
    assert results[0].expires_at - clock.now > SERVE_MARGIN


def _wait_for(condition: Callable[[], bool]) -> bool:
    """Polls ``condition`` until true or TIMEOUT (for the end of a background refresh)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


@given(lifetime=st.integers(min_value=120, max_value=43200))
def test_schedule_invariants(lifetime: int) -> None:
    credentials = VendedCredentials("A", "s", "t", datetime.fromtimestamp(START + lifetime, UTC))
    schedule = Schedule.for_credentials(credentials, fetched_at=START)
    expires = START + lifetime
    assert START < schedule.refresh_at <= schedule.usable_until == expires - SERVE_MARGIN
    interval = schedule.refresh_at - START
    assert interval >= min(MIN_REFRESH_INTERVAL, lifetime / 2, lifetime - SERVE_MARGIN)
    if lifetime >= REFRESH_BEFORE_EXPIRY + MIN_REFRESH_INTERVAL:
        # long enough: nothing served ever sits inside botocore's (or any SDK's) refresh window
        assert expires - schedule.refresh_at == REFRESH_BEFORE_EXPIRY
