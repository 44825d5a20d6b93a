"""Unit tests for the STS faults plugin's state. Pure: no LocalStack.

(The faults' effect on credvend, through a running LocalStack, is tested in
tests/e2e/test_faults_e2e.py.)
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

# the plugin package (credvend_local/plugin, on pytest's pythonpath) is installed only into LocalStack's venv
from credvend_localstack.faults import MAX_COUNT, StsFaults


def test_throttle_next_is_consumed_one_call_at_a_time_then_calls_pass() -> None:
    faults = StsFaults()
    faults.arm({"throttle_next": 2})
    assert [faults.take("AssumeRole") for _ in range(3)] == [("throttle", 0.0), ("throttle", 0.0), None]
    assert faults.snapshot()["throttled"] == 2


def test_delays_apply_after_throttling_and_only_to_the_named_operations() -> None:
    faults = StsFaults()
    faults.arm({"throttle_next": 1, "delay_seconds": 2.5, "count": 1, "operations": ["AssumeRole"]})
    assert faults.take("GetCallerIdentity") is None  # not armed for it, and consumes nothing
    assert faults.take("AssumeRole") == ("throttle", 0.0)
    assert faults.take("AssumeRole") == ("delay", 2.5)
    assert faults.take("AssumeRole") is None


def test_sleep_counts_calls_in_delay() -> None:
    faults = StsFaults()
    seen: list[int] = []
    faults.sleep(1.0, sleeper=lambda _: seen.append(faults.snapshot()["in_delay"]))
    assert seen == [1]
    assert faults.snapshot()["in_delay"] == 0


def test_reset_disarms_and_zeroes_the_counters() -> None:
    faults = StsFaults()
    faults.arm({"throttle_next": 5, "delay_seconds": 1, "count": 5})
    faults.take("AssumeRole")
    faults.reset()
    state = faults.snapshot()
    assert (state["throttle_next"], state["delay_next"], state["throttled"], state["delayed"]) == (0, 0, 0, 0)
    assert faults.take("AssumeRole") is None


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {},
        {"unknown": 1},
        {"throttle_next": -1},
        {"throttle_next": MAX_COUNT + 1},
        {"throttle_next": True},
        {"throttle_next": "3"},
        {"delay_seconds": 0, "count": 1},
        {"delay_seconds": 121, "count": 1},
        {"delay_seconds": 1},
        {"count": 1},
        {"delay_seconds": False, "count": 1},
        {"throttle_next": 1, "operations": []},
        {"throttle_next": 1, "operations": "AssumeRole"},
        {"operations": ["AssumeRole"]},
    ],
)
def test_malformed_settings_are_refused_and_change_nothing(body: object) -> None:
    faults = StsFaults()
    faults.arm({"throttle_next": 1})
    with pytest.raises(ValueError):
        faults.arm(body)
    assert faults.snapshot()["throttle_next"] == 1


def test_concurrent_calls_take_exactly_the_armed_number() -> None:
    faults = StsFaults()
    faults.arm({"throttle_next": 100})
    with ThreadPoolExecutor(8) as pool:
        taken = list(pool.map(lambda _: faults.take("AssumeRole"), range(400)))
    assert sum(1 for fault in taken if fault is not None) == 100
