"""Unit tests for the Lambda environment bound's gate. Pure: no LocalStack."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

# the plugin package (credvend_local/plugin, on pytest's pythonpath) is installed only into LocalStack's venv
from credvend_localstack.gate import InvocationGate


def _peak_holders(gate: InvocationGate, key: str, workers: int) -> int:
    lock = threading.Lock()
    holders = peak = 0

    def hold(_: int) -> None:
        nonlocal holders, peak
        gate.enter(key)
        try:
            with lock:
                holders += 1
                peak = max(peak, holders)
            time.sleep(0.01)  # hold it long enough for others to pile up behind
            with lock:
                holders -= 1
        finally:
            gate.leave(key)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(hold, range(workers * 3)))
    return peak


def test_no_more_than_the_limit_hold_the_gate_at_once() -> None:
    gate = InvocationGate(limit=3)
    assert _peak_holders(gate, "fn", workers=12) <= 3
    assert gate.snapshot()["active"] == {}
    assert gate.snapshot()["waited"] > 0


def test_keys_are_bounded_separately_and_none_means_no_bound() -> None:
    gate = InvocationGate(limit=1)
    gate.enter("a")
    gate.enter("b")  # another function: not blocked by "a"
    gate.leave("a")
    gate.leave("b")
    gate.set_limit(None)
    for _ in range(50):
        gate.enter("a")
    assert gate.snapshot()["active"] == {"a": 50}


def test_lifting_the_limit_releases_waiters() -> None:
    gate = InvocationGate(limit=1)
    gate.enter("fn")
    entered = threading.Event()

    def wait_then_enter() -> None:
        gate.enter("fn")
        entered.set()

    thread = threading.Thread(target=wait_then_enter, daemon=True)
    thread.start()
    assert not entered.wait(0.2)  # blocked behind the holder
    gate.set_limit(None)
    assert entered.wait(5)
    thread.join(5)


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_is_refused(limit: int) -> None:
    with pytest.raises(ValueError):
        InvocationGate().set_limit(limit)
