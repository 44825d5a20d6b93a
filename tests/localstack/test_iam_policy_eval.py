"""Unit tests for the trust-policy evaluator behind the LocalStack STS rules.

Pure and fast: no LocalStack. Each test names the IAM rule it pins down.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

# the plugin package (credvend_local/plugin, on pytest's pythonpath) is installed only into LocalStack's venv
from credvend_localstack import iam_policy_eval as iam
from hypothesis import given
from hypothesis import strategies as st

ACCOUNT = "111122223333"
OTHER = "444455556666"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/target"
VENDOR_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/service/vendor"

ROOT = iam.Caller(
    arn=f"arn:aws:iam::{ACCOUNT}:root",
    account=ACCOUNT,
    principal_type="Account",
    principal_arn=f"arn:aws:iam::{ACCOUNT}:root",
)
USER = iam.Caller(
    arn=f"arn:aws:iam::{ACCOUNT}:user/ops/alice",
    account=ACCOUNT,
    principal_type="User",
    principal_arn=f"arn:aws:iam::{ACCOUNT}:user/ops/alice",
)
VENDOR_SESSION = iam.Caller(
    arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/vendor/lambda-session",
    account=ACCOUNT,
    principal_type="AssumedRole",
    principal_arn=VENDOR_ROLE_ARN,
)


def policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(principal: object = None, action: object = "sts:AssumeRole", **extra: object) -> dict:
    statement = {"Effect": "Allow", "Principal": principal or {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}
    statement["Action"] = action
    statement.update(extra)
    return statement


def request(caller: iam.Caller = ROOT, **kwargs: object) -> iam.AssumeRoleRequest:
    kwargs.setdefault("role_session_name", "session")
    return iam.AssumeRoleRequest(caller=caller, role_arn=ROLE_ARN, **kwargs)  # type: ignore[arg-type]


def holds(condition: dict, context: dict) -> bool:
    return iam.conditions_match(condition, context)


# ---------------------------------------------------------------------------- documents


def test_url_quoted_json_and_dict_documents_evaluate_alike() -> None:
    document = policy(allow())
    for form in (document, json.dumps(document), quote(json.dumps(document))):
        assert iam.first_denied_action(form, request()) is None


def test_unreadable_document_is_a_policy_error() -> None:
    with pytest.raises(iam.PolicyError):
        iam.parse_policy("not json")


# ---------------------------------------------------------------------------- principals


@pytest.mark.parametrize(
    ("principal", "caller", "expected"),
    [
        ("*", USER, True),
        ({"AWS": "*"}, VENDOR_SESSION, True),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, USER, True),
        ({"AWS": ACCOUNT}, VENDOR_SESSION, True),
        ({"AWS": f"arn:aws:iam::{OTHER}:root"}, USER, False),
        ({"AWS": OTHER}, ROOT, False),
        # a role principal is matched by its sessions, whatever the role's path
        ({"AWS": VENDOR_ROLE_ARN}, VENDOR_SESSION, True),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:role/vendor"}, VENDOR_SESSION, True),
        ({"AWS": f"arn:aws:iam::{OTHER}:role/vendor"}, VENDOR_SESSION, False),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:role/other"}, VENDOR_SESSION, False),
        ({"AWS": VENDOR_ROLE_ARN}, ROOT, False),
        ({"AWS": VENDOR_ROLE_ARN}, USER, False),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:user/ops/alice"}, USER, True),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:user/bob"}, USER, False),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"}, VENDOR_SESSION, False),
        ({"AWS": VENDOR_SESSION.arn}, VENDOR_SESSION, True),
        ({"AWS": [f"arn:aws:iam::{OTHER}:root", VENDOR_ROLE_ARN]}, VENDOR_SESSION, True),
        ({"Service": "lambda.amazonaws.com"}, VENDOR_SESSION, False),
        ({"Federated": "cognito-identity.amazonaws.com"}, ROOT, False),
    ],
)
def test_principal_forms(principal: object, caller: iam.Caller, expected: bool) -> None:
    assert iam.principal_matches(principal, caller) is expected


def test_not_principal_applies_to_everyone_else() -> None:
    document = policy(
        {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"},
        {"Effect": "Deny", "NotPrincipal": {"AWS": VENDOR_ROLE_ARN}, "Action": "sts:AssumeRole"},
    )
    assert iam.first_denied_action(document, request(VENDOR_SESSION)) is None
    assert iam.first_denied_action(document, request(USER)) == iam.ASSUME_ROLE


# ---------------------------------------------------------------------------- effect, actions


def test_default_deny_when_no_statement_applies() -> None:
    document = policy(allow({"AWS": VENDOR_ROLE_ARN}))
    assert iam.evaluate(document, iam.ASSUME_ROLE, USER, {}) is iam.Decision.IMPLICIT_DENY


def test_explicit_deny_wins_over_allow_in_any_order() -> None:
    deny = {"Effect": "Deny", "Principal": "*", "Action": "sts:*"}
    for statements in ((allow(), deny), (deny, allow())):
        assert iam.evaluate(policy(*statements), iam.ASSUME_ROLE, ROOT, {}) is iam.Decision.EXPLICIT_DENY


def test_deny_with_unmet_condition_does_not_apply() -> None:
    deny = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": "blocked"}},
    }
    document = policy(allow(), deny)
    assert iam.first_denied_action(document, request(external_id="fine")) is None
    assert iam.first_denied_action(document, request(external_id="blocked")) == iam.ASSUME_ROLE


@pytest.mark.parametrize(
    ("action", "allowed"),
    [
        ("sts:AssumeRole", True),
        ("STS:assumerole", True),  # action names are case-insensitive
        ("sts:*", True),
        ("*", True),
        ("sts:Assume*", True),
        ("sts:AssumeRol?", True),
        ("sts:AssumeRoleWithSAML", False),
        ("sts:TagSession", False),
        (["sts:TagSession", "sts:AssumeRole"], True),
    ],
)
def test_action_patterns(action: object, allowed: bool) -> None:
    decision = iam.evaluate(policy(allow(action=action)), iam.ASSUME_ROLE, ROOT, {})
    assert (decision is iam.Decision.ALLOW) is allowed


def test_not_action_allows_everything_else() -> None:
    statement = {"Effect": "Allow", "Principal": "*", "NotAction": "sts:TagSession"}
    document = policy(statement)
    assert iam.evaluate(document, iam.ASSUME_ROLE, ROOT, {}) is iam.Decision.ALLOW
    assert iam.evaluate(document, iam.TAG_SESSION, ROOT, {}) is iam.Decision.IMPLICIT_DENY


def test_tags_need_tag_session() -> None:
    only_assume = policy(allow())
    assert iam.first_denied_action(only_assume, request(tags={"team": "a"})) == iam.TAG_SESSION
    with_tags = policy(allow(action=["sts:AssumeRole", "sts:TagSession"]))
    assert iam.first_denied_action(with_tags, request(tags={"team": "a"})) is None


def test_source_identity_needs_set_source_identity() -> None:
    only_assume = policy(allow())
    assert iam.first_denied_action(only_assume, request(source_identity="alice")) == iam.SET_SOURCE_IDENTITY
    both = policy(allow(action=["sts:AssumeRole", "sts:SetSourceIdentity"]))
    assert iam.first_denied_action(both, request(source_identity="alice")) is None


def test_inherited_source_identity_also_needs_set_source_identity() -> None:
    session = iam.Caller(**{**VENDOR_SESSION.__dict__, "source_identity": "alice"})
    assert iam.required_actions(request(session)) == (iam.ASSUME_ROLE, iam.SET_SOURCE_IDENTITY)


def test_a_plain_request_needs_only_assume_role() -> None:
    assert iam.required_actions(request()) == (iam.ASSUME_ROLE,)


def test_each_action_is_checked_with_its_own_statements() -> None:
    document = policy(
        allow(action="sts:AssumeRole"),
        allow(
            action="sts:TagSession",
            Condition={"StringEquals": {"aws:RequestTag/team": "blue"}},
        ),
    )
    assert iam.first_denied_action(document, request(tags={"team": "blue"})) is None
    assert iam.first_denied_action(document, request(tags={"team": "red"})) == iam.TAG_SESSION


# ---------------------------------------------------------------------------- request context


def test_request_context_keys() -> None:
    session = iam.Caller(**{**VENDOR_SESSION.__dict__, "source_identity": "alice"})
    context = iam.request_context(
        request(session, external_id="x", source_identity="alice", tags={"Team": "blue", "env": "dev"})
    )
    assert context == {
        "sts:rolesessionname": ["session"],
        "sts:externalid": ["x"],
        "sts:sourceidentity": ["alice"],
        "aws:sourceidentity": ["alice"],
        "aws:principalarn": [VENDOR_ROLE_ARN],
        "aws:principalaccount": [ACCOUNT],
        "aws:principaltype": ["AssumedRole"],
        "aws:tagkeys": ["Team", "env"],
        "aws:requesttag/team": ["blue"],
        "aws:requesttag/env": ["dev"],
    }


def test_request_context_omits_what_the_request_lacks() -> None:
    context = iam.request_context(request(duration_seconds=3600))
    for key in ("sts:externalid", "sts:sourceidentity", "aws:sourceidentity", "aws:tagkeys"):
        assert key not in context
    # IAM documents sts:DurationSeconds for bearer-token requests only, not AssumeRole
    assert "sts:durationseconds" not in context


def test_duration_condition_without_if_exists_locks_every_caller_out() -> None:
    """Why credvend's trust policies use NumericLessThanEqualsIfExists (CONTRACT §5)."""
    plain = policy(allow(Condition={"NumericLessThanEquals": {"sts:DurationSeconds": "3600"}}))
    if_exists = policy(allow(Condition={"NumericLessThanEqualsIfExists": {"sts:DurationSeconds": "3600"}}))
    for duration in (None, 900, 3600):
        assert iam.first_denied_action(plain, request(duration_seconds=duration)) == iam.ASSUME_ROLE
        assert iam.first_denied_action(if_exists, request(duration_seconds=duration)) is None


# ---------------------------------------------------------------------------- operators


@pytest.mark.parametrize(
    ("operator", "policy_values", "value", "expected"),
    [
        ("StringEquals", "alice", "alice", True),
        ("StringEquals", "alice", "Alice", False),  # values are case-sensitive
        ("StringEquals", ["bob", "alice"], "alice", True),  # values under a key are OR
        ("StringNotEquals", "alice", "bob", True),
        ("StringNotEquals", ["alice", "bob"], "bob", False),  # "equals none of them"
        ("StringEqualsIgnoreCase", "ALICE", "alice", True),
        ("StringEqualsIgnoreCase", "alice", "bob", False),
        ("StringNotEqualsIgnoreCase", "ALICE", "alice", False),
        ("StringLike", "ali*", "alice", True),
        ("StringLike", "al?ce", "alice", True),
        ("StringLike", "al?ce", "allice", False),
        ("StringLike", "a.c*", "abc", False),  # regex characters are literal
        ("StringLike", ["x*", "*ce"], "alice", True),
        ("StringNotLike", "ali*", "bob", True),
        ("StringNotLike", ["b*", "ali*"], "alice", False),
        ("NumericEquals", "3600", "3600", True),
        ("NumericEquals", "3600", "3600.0", True),
        ("NumericEquals", "3600", "900", False),
        ("NumericEquals", "3600", "lots", False),  # non-numbers never match
        ("NumericNotEquals", "3600", "900", True),
        ("NumericNotEquals", "3600", "3600", False),
        ("NumericLessThan", "3600", "3599", True),
        ("NumericLessThan", "3600", "3600", False),
        ("NumericLessThanEquals", "3600", "3600", True),
        ("NumericLessThanEquals", "3600", "3601", False),
        ("NumericGreaterThan", "900", "901", True),
        ("NumericGreaterThan", "900", "900", False),
        ("NumericGreaterThanEquals", "900", "900", True),
        ("NumericGreaterThanEquals", "900", "899", False),
        ("Bool", "true", "true", True),
        ("Bool", True, "true", True),  # JSON booleans compare by their string form
        ("Bool", "true", "false", False),
        ("ArnLike", "arn:aws:iam::*:role/vendor", f"arn:aws:iam::{ACCOUNT}:role/vendor", True),
        ("ArnEquals", f"arn:aws:iam::{OTHER}:role/vendor", f"arn:aws:iam::{ACCOUNT}:role/vendor", False),
    ],
)
def test_operator_on_present_key(operator: str, policy_values: object, value: str, expected: bool) -> None:
    assert holds({operator: {"k:key": policy_values}}, {"k:key": [value]}) is expected
    # the IfExists form behaves exactly the same when the key is present
    assert holds({f"{operator}IfExists": {"k:key": policy_values}}, {"k:key": [value]}) is expected


ALL_OPERATORS = [
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "Bool",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
]


NEGATED_OPERATORS = {op for op in ALL_OPERATORS if "Not" in op}


@pytest.mark.parametrize("operator", ALL_OPERATORS)
def test_absent_key_fails_positive_operators_and_satisfies_negated_ones(operator: str) -> None:
    # IAM's condition-operator reference: a key missing from the request makes the condition
    # false, except for negated operators (StringNotEquals, ArnNotLike, ...), which are true
    assert holds({operator: {"k:missing": "1"}}, {}) is (operator in NEGATED_OPERATORS)
    assert holds({f"ForAnyValue:{operator}": {"k:missing": "1"}}, {}) is False


@pytest.mark.parametrize("operator", ALL_OPERATORS)
def test_if_exists_treats_an_absent_key_as_a_match(operator: str) -> None:
    assert holds({f"{operator}IfExists": {"k:missing": "1"}}, {}) is True


@pytest.mark.parametrize("operator", ALL_OPERATORS)
def test_for_all_values_on_an_absent_key_is_true(operator: str) -> None:
    assert holds({f"ForAllValues:{operator}": {"k:missing": "1"}}, {}) is True


@pytest.mark.parametrize(
    ("value", "present", "expected"),
    [("true", False, True), ("true", True, False), ("false", True, True), ("false", False, False), (True, False, True)],
)
def test_null_tests_presence(value: object, present: bool, expected: bool) -> None:
    context = {"sts:externalid": ["x"]} if present else {}
    assert holds({"Null": {"sts:ExternalId": value}}, context) is expected


def test_key_names_and_operators_are_case_insensitive() -> None:
    assert holds({"stringequals": {"STS:SOURCEIDENTITY": "alice"}}, {"sts:sourceidentity": ["alice"]})
    assert holds({"StringEquals": {"sts:SourceIdentity": "alice"}}, {"STS:SourceIdentity": ["alice"]})


def test_keys_and_operators_are_and() -> None:
    condition = {
        "StringEquals": {"sts:ExternalId": "x", "sts:RoleSessionName": "s"},
        "StringLike": {"sts:SourceIdentity": "a*"},
    }
    full = {"sts:externalid": ["x"], "sts:rolesessionname": ["s"], "sts:sourceidentity": ["alice"]}
    assert holds(condition, full)
    for key in full:
        assert not holds(condition, {**full, key: ["other"]})


def test_for_any_value_and_for_all_values_on_tag_keys() -> None:
    context = {"aws:tagkeys": ["team", "env"]}
    assert holds({"ForAnyValue:StringEquals": {"aws:TagKeys": ["env"]}}, context)
    assert not holds({"ForAnyValue:StringEquals": {"aws:TagKeys": ["cost"]}}, context)
    assert holds({"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env", "cost"]}}, context)
    assert not holds({"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}, context)
    # negated inside a qualifier: each value is tested on its own
    assert holds({"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["team"]}}, context)
    assert not holds({"ForAllValues:StringNotEquals": {"aws:TagKeys": ["team"]}}, context)
    assert holds({"ForAllValues:StringLike": {"aws:TagKeys": ["t*", "e*"]}}, context)


def test_unsupported_operator_fails_closed() -> None:
    # (Date operators are implemented since revocations need them, IP ranges for resource
    # policies; binary comparisons are not)
    with pytest.raises(iam.PolicyError):
        holds({"BinaryEquals": {"k:key": "QmluYXJ5"}}, {})
    document = policy(allow(Condition={"BinaryEquals": {"k:key": "QmluYXJ5"}}))
    refusal = iam.decide_assume_role(request(), iam.TargetRole(ROLE_ARN, document))
    assert refusal is not None and refusal.code == "AccessDenied"


# ---------------------------------------------------------------------------- properties

values = st.text(alphabet="abcXYZ019_-.@", min_size=0, max_size=8)


@given(value=values, expected=st.lists(values, min_size=1, max_size=4))
def test_negated_operator_is_the_complement_on_a_present_key(value: str, expected: list[str]) -> None:
    for positive, negative in (("StringEquals", "StringNotEquals"), ("StringLike", "StringNotLike")):
        context = {"k:key": [value]}
        assert holds({positive: {"k:key": expected}}, context) != holds({negative: {"k:key": expected}}, context)


@given(value=values)
def test_star_is_like_anything_and_literal_patterns_are_equality(value: str) -> None:
    assert iam.wildcard_match("*", value)
    assert iam.wildcard_match(value, value)
    assert iam.wildcard_match(value + "?", value) is False


@given(
    actual=st.lists(values, max_size=5),
    allowed=st.lists(values, min_size=1, max_size=5),
)
def test_for_all_values_is_subset_and_for_any_value_is_intersection(actual: list[str], allowed: list[str]) -> None:
    context = {"aws:tagkeys": actual} if actual else {}
    assert holds({"ForAllValues:StringEquals": {"aws:TagKeys": allowed}}, context) == set(actual).issubset(allowed)
    assert holds({"ForAnyValue:StringEquals": {"aws:TagKeys": allowed}}, context) == bool(set(actual) & set(allowed))


@given(limit=st.integers(900, 43200), duration=st.integers(900, 43200))
def test_numeric_less_than_equals_matches_integer_order(limit: int, duration: int) -> None:
    condition = {"NumericLessThanEquals": {"k:n": str(limit)}}
    assert holds(condition, {"k:n": [str(duration)]}) == (duration <= limit)


# ---------------------------------------------------------------------------- STS's decision

TRUSTS_VENDOR = policy(
    allow(
        {"AWS": VENDOR_ROLE_ARN},
        ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
        Condition={
            "StringEquals": {"sts:SourceIdentity": ["alice", "bob"]},
            "NumericLessThanEqualsIfExists": {"sts:DurationSeconds": "7200"},
        },
    ),
    allow({"AWS": f"arn:aws:iam::{ACCOUNT}:user/ops/alice"}),
)
TARGET = iam.TargetRole(arn=ROLE_ARN, trust_policy=TRUSTS_VENDOR, max_session_duration=7200)


def decide(caller: iam.Caller, **kwargs: object) -> iam.Refusal | None:
    return iam.decide_assume_role(request(caller, **kwargs), TARGET)


def test_role_chaining_is_capped_at_one_hour() -> None:
    assert decide(VENDOR_SESSION, source_identity="alice", duration_seconds=3600) is None
    refusal = decide(VENDOR_SESSION, source_identity="alice", duration_seconds=3601)
    assert refusal == iam.Refusal("ValidationError", iam.CHAINING_MESSAGE, 400)
    # even when the role's own maximum would allow more
    refusal = decide(VENDOR_SESSION, source_identity="alice", duration_seconds=43200)
    assert refusal is not None and refusal.message == iam.CHAINING_MESSAGE


@pytest.mark.parametrize(("duration", "ok"), [(None, True), (900, True), (7200, True), (7201, False), (43200, False)])
def test_max_session_duration_for_long_term_credentials(duration: int | None, ok: bool) -> None:
    refusal = decide(USER, duration_seconds=duration)
    if ok:
        assert refusal is None
    else:
        assert refusal == iam.Refusal("ValidationError", iam.MAX_SESSION_MESSAGE, 400)


@pytest.mark.parametrize(
    ("duration", "bound"), [(899, "greater than or equal to 900"), (43201, "less than or equal to 43200")]
)
def test_duration_outside_sts_range_is_a_validation_error_first(duration: int, bound: str) -> None:
    # even for a caller the role does not trust: parameter validation comes first
    refusal = decide(ROOT, duration_seconds=duration)
    assert refusal is not None and refusal.code == "ValidationError"
    assert refusal.message.endswith(f"Member must have value {bound}")


def test_untrusted_caller_is_denied_before_session_limits_are_revealed() -> None:
    refusal = decide(ROOT, duration_seconds=43200)
    assert refusal == iam.Refusal(
        "AccessDenied",
        f"User: {ROOT.arn} is not authorized to perform: sts:AssumeRole on resource: {ROLE_ARN}",
        403,
    )


def test_source_identity_condition() -> None:
    assert decide(VENDOR_SESSION, source_identity="bob") is None
    refusal = decide(VENDOR_SESSION, source_identity="mallory")
    assert refusal is not None and refusal.status == 403
    assert "sts:AssumeRole" in refusal.message
    # the condition requires a source identity: without one the Allow never matches
    assert decide(VENDOR_SESSION) is not None


def test_missing_role_is_access_denied() -> None:
    refusal = iam.decide_assume_role(request(USER), None)
    assert refusal is not None and refusal.code == "AccessDenied" and ROLE_ARN in refusal.message


def test_chained_session_keeps_its_source_identity() -> None:
    session = iam.Caller(**{**VENDOR_SESSION.__dict__, "source_identity": "alice"})
    # omitted: inherited, and the trust condition sees the inherited value
    assert iam.effective_source_identity(request(session)) == "alice"
    assert decide(session) is None
    # repeated: fine; replaced: refused as sts:SetSourceIdentity
    assert decide(session, source_identity="alice") is None
    refusal = decide(session, source_identity="bob")
    assert refusal is not None and refusal.code == "AccessDenied" and "sts:SetSourceIdentity" in refusal.message
