"""Unit tests for the AssumeRole journal of the STS rules plugin. Pure: no LocalStack.

(Its HTTP route inside a running LocalStack is tested in test_sts_rules.py.)
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

# the plugin package (credvend_local/plugin, on pytest's pythonpath) is installed only into LocalStack's venv
from credvend_localstack.journal import ALLOWED, REFUSED, AssumeRoleJournal, after_param

ROLE = "arn:aws:iam::000000000000:role/ReportsReader"
FUNCTION_SESSION = "arn:aws:sts::000000000000:assumed-role/credvend-fn/credvend-fn"


def _record(journal: AssumeRoleJournal, **overrides: object) -> None:
    fields: dict[str, object] = {
        "caller_arn": FUNCTION_SESSION,
        "role_arn": ROLE,
        "role_session_name": "e2e-user",
        "duration_seconds": 3600,
        "source_identity": "e2e-user",
    }
    journal.record(**(fields | overrides))  # type: ignore[arg-type]


def test_entries_keep_the_decision_in_order_with_the_outcome() -> None:
    journal = AssumeRoleJournal()
    _record(journal)
    _record(journal, duration_seconds=43200, error_code="ValidationError", error_message="too long")

    snapshot = journal.snapshot()
    allowed, refused = snapshot["entries"]
    assert (allowed["seq"], refused["seq"], snapshot["last_seq"]) == (1, 2, 2)
    assert allowed["outcome"] == ALLOWED and allowed["error_code"] is None
    assert refused["outcome"] == REFUSED
    assert (refused["error_code"], refused["error_message"], refused["duration_seconds"]) == (
        "ValidationError",
        "too long",
        43200,
    )
    assert allowed["caller_arn"] == FUNCTION_SESSION
    assert allowed["source_identity"] == "e2e-user"
    assert allowed["time"].endswith("+00:00")


def test_after_returns_only_newer_entries() -> None:
    journal = AssumeRoleJournal()
    _record(journal)
    mark = journal.snapshot()["last_seq"]
    _record(journal, role_session_name="later")
    newer = journal.snapshot(after=mark)["entries"]
    assert [e["role_session_name"] for e in newer] == ["later"]
    assert journal.snapshot(after=journal.snapshot()["last_seq"])["entries"] == []


def test_reset_forgets_entries_but_never_reuses_a_sequence_number() -> None:
    journal = AssumeRoleJournal()
    _record(journal)
    _record(journal)
    journal.reset()
    assert journal.snapshot()["entries"] == []
    _record(journal)
    # a mark taken before the reset still sees the new entry as new
    assert [e["seq"] for e in journal.snapshot(after=2)["entries"]] == [3]


def test_it_is_bounded_and_says_how_many_entries_it_dropped() -> None:
    journal = AssumeRoleJournal(max_entries=3)
    for n in range(5):
        _record(journal, role_session_name=f"s{n}")
    snapshot = journal.snapshot()
    assert [e["role_session_name"] for e in snapshot["entries"]] == ["s2", "s3", "s4"]
    assert snapshot["dropped"] == 2


def test_parallel_records_get_distinct_sequence_numbers() -> None:
    journal = AssumeRoleJournal()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda _: _record(journal), range(400)))
    assert sorted(e["seq"] for e in journal.snapshot()["entries"]) == list(range(1, 401))


def test_an_entry_has_no_field_that_could_hold_a_secret() -> None:
    journal = AssumeRoleJournal()
    _record(journal)
    entry = journal.snapshot()["entries"][0]
    assert set(entry) == {
        "seq",
        "time",
        "caller_arn",
        "role_arn",
        "role_session_name",
        "duration_seconds",
        "source_identity",
        "outcome",
        "error_code",
        "error_message",
        "operation",  # AssumeRole or AssumeRoleWithWebIdentity
        "subject",  # a web identity token's sub claim (a caller name), never the token
        "request_id",  # STS's RequestId of the answer: an identifier, as in CloudTrail
        "access_key_id",  # the issued session's key id: an identifier (CloudTrail logs it), not a secret
    }
    json.dumps(journal.snapshot())  # what the route serves is plain JSON


def test_an_allowed_entry_names_the_key_id_it_issued() -> None:
    journal = AssumeRoleJournal()
    _record(journal, access_key_id="ASIAEXAMPLE")
    _record(journal, error_code="AccessDenied", error_message="no")
    allowed, refused = journal.snapshot()["entries"]
    assert (allowed["outcome"], allowed["access_key_id"]) == ("allowed", "ASIAEXAMPLE")
    assert (refused["outcome"], refused["access_key_id"]) == ("refused", None)


@pytest.mark.parametrize(("query", "after"), [({}, 0), ({"after": "0"}, 0), ({"after": "17"}, 17)])
def test_after_param(query: dict[str, str], after: int) -> None:
    assert after_param(query) == after


@pytest.mark.parametrize("raw", ["x", "-1", "1.5", ""])
def test_after_param_rejects_what_is_not_a_mark(raw: str) -> None:
    with pytest.raises(ValueError, match="after"):
        after_param({"after": raw})
