"""Loading policy.yaml: the example loads; every invalid document fails with the path of the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from credvend_policy import PolicyError, load_policy, parse_arn, parse_policy, policy_as_json, principal_key
from credvend_policy.loader import validate_document
from credvend_policy.model import default_role_name
from credvend_policy.principals import is_role_arn, role_arn_of_session

REPO_ROOT = Path(__file__).resolve().parents[2]

BASE = """version: 1
roles:
  r1: {create: true}
  r2: {arn: "arn:aws:iam::210987654321:role/X"}
callers:
  c1:
    iam_principals: [arn:aws:iam::123456789012:role/c1]
    grants: [{role: r1}]
"""
C2 = "  c2:\n    iam_principals: [{arn}]\n    grants: [{{role: r1}}]\n"


def test_example_policy_loads() -> None:
    policy = load_policy(REPO_ROOT / "policy.yaml")
    assert policy.defaults.duration_seconds == 3600
    assert policy.defaults.session_name == "{caller}"
    assert policy.roles["reports-reader"].create
    assert policy.roles["reports-reader"].max_session_duration == 14400
    assert policy.roles["partner-writer"].external_id == "a-shared-id"
    assert policy.callers["billing-api"].grant_for("reports-reader") is not None
    assert policy.callers["billing-api"].grant_for("partner-writer") is None


def test_defaults_apply() -> None:
    policy = parse_policy(BASE)
    assert policy.defaults.duration_seconds == 3600
    assert policy.roles["r1"].max_session_duration == 3600
    assert policy.callers["c1"].grants[0].max_duration_seconds == 3600


def test_json_is_accepted() -> None:
    policy = parse_policy('{"version": 1, "roles": {"r": {"create": true}}}')
    assert list(policy.roles) == ["r"]


def test_role_arns() -> None:
    policy = parse_policy(
        BASE.replace("r1: {create: true}", "r1: {create: true}\n  r3: {create: true, role_name: Named}")
    )
    assert policy.roles["r1"].arn_in(alias="r1", partition="aws", account="123456789012") == (
        "arn:aws:iam::123456789012:role/R1"
    )
    assert policy.roles["r3"].arn_in(alias="r3", partition="aws-cn", account="1" * 12) == (
        "arn:aws-cn:iam::111111111111:role/Named"
    )
    assert policy.roles["r2"].arn_in(alias="r2", partition="aws", account="123456789012") == (
        "arn:aws:iam::210987654321:role/X"
    )
    assert default_role_name("reports-reader") == "ReportsReader"
    assert default_role_name("a.b_c-d") == "ABCD"


@pytest.mark.parametrize(
    ("text", "path", "fragment"),
    [
        (BASE + "extra: 1\n", "extra", "Extra inputs"),
        (BASE.replace("{create: true}", "{create: true, foo: 1}"), "roles.r1.foo", "Extra inputs"),
        (BASE.replace("c1:\n    iam", "c1:\n    nickname: x\n    iam"), "callers.c1.nickname", "Extra inputs"),
        (BASE.replace("{role: r1}", "{role: r1, note: x}"), "callers.c1.grants.0.note", "Extra inputs"),
        (BASE.replace("version: 1", "version: 1\ndefaults: {color: red}"), "defaults.color", "Extra inputs"),
        (BASE.replace("{role: r1}", "{role: nope}"), "callers.c1.grants.0.role", "unknown role alias 'nope'"),
        (
            BASE.replace("{role: r1}", "{role: r1, max_duration_seconds: 899}"),
            "callers.c1.grants.0.max_duration_seconds",
            "greater than or equal to 900",
        ),
        (
            BASE.replace("{role: r1}", "{role: r1, max_duration_seconds: 43201}"),
            "callers.c1.grants.0.max_duration_seconds",
            "less than or equal to 43200",
        ),
        (
            BASE.replace("{role: r1}", "{role: r1, max_duration_seconds: '3600'}"),
            "callers.c1.grants.0.max_duration_seconds",
            "valid integer",
        ),
        (
            BASE.replace("{create: true}", "{create: true, max_session_duration: 3599}"),
            "roles.r1.max_session_duration",
            "greater than or equal to 3600",
        ),
        (
            BASE.replace("{create: true}", "{create: true, max_session_duration: 43201}"),
            "roles.r1.max_session_duration",
            "less than or equal to 43200",
        ),
        (BASE.replace("210987654321", "21098765432"), "roles.r2.arn", "not an IAM role ARN"),
        (BASE.replace("role/X", "user/X"), "roles.r2.arn", "not an IAM role ARN"),
        (
            BASE.replace("arn:aws:iam::123456789012:role/c1", "arn:aws:s3:::bucket"),
            "callers.c1.iam_principals.0",
            "not an IAM role or user ARN",
        ),
        (BASE.replace("arn:aws:iam::123456789012:role/c1", "'*'"), "callers.c1.iam_principals.0", "not an IAM"),
        (
            BASE + C2.format(arn="arn:aws:iam::123456789012:role/c1"),
            "callers.c2.iam_principals.0",
            "already belongs to caller 'c1'",
        ),
        (
            BASE + C2.format(arn="arn:aws:iam::123456789012:role/team/c1"),
            "callers.c2.iam_principals.0",
            "already belongs to caller 'c1'",
        ),
        (
            BASE.replace("{create: true}", "{create: true, arn: 'arn:aws:iam::210987654321:role/Y'}"),
            "roles.r1",
            "exactly one of",
        ),
        (BASE.replace("{create: true}", "{}"), "roles.r1", "exactly one of"),
        (BASE.replace("{create: true}", "{create: false}"), "roles.r1", "exactly one of"),
        (BASE.replace("{create: true}", "{create: 'yes'}"), "roles.r1.create", "valid boolean"),
        (
            BASE.replace(
                '{arn: "arn:aws:iam::210987654321:role/X"}',
                '{arn: "arn:aws:iam::210987654321:role/X", managed_policy_arns: [arn:aws:iam::aws:policy/A]}',
            ),
            "roles.r2",
            "only to roles with `create: true`",
        ),
        (
            BASE.replace("{create: true}", "{create: true, managed_policy_arns: [nope]}"),
            "roles.r1.managed_policy_arns.0",
            "pattern",
        ),
        (BASE.replace("version: 1", "version: 2"), "version", "Input should be 1"),
        (BASE.replace("version: 1\n", ""), "version", "Field required"),
        (
            BASE.replace("version: 1", "version: 1\ndefaults: {session_name: '{user}'}"),
            "defaults.session_name",
            "placeholder {user} is not allowed",
        ),
        # A known name with a conversion, format spec, attribute or index would fail every vend.
        *(
            (
                BASE.replace("version: 1", f"version: 1\ndefaults: {{session_name: 'x-{template}'}}"),
                "defaults.session_name",
                f"placeholder {template} is not allowed",
            )
            for template in ("{caller:d}", "{caller!x}", "{caller!r}", "{caller.attr}", "{caller[0]}", "{role:>70}")
        ),
        # IAM names are unique ignoring case (a user's also ignoring its path): one entity, two callers.
        (
            BASE + C2.format(arn="arn:aws:iam::123456789012:role/C1"),
            "callers.c2.iam_principals.0",
            "already belongs to caller 'c1'",
        ),
        (
            BASE.replace("role/c1", "user/Alice") + C2.format(arn="arn:aws:iam::123456789012:user/dev/alice"),
            "callers.c2.iam_principals.0",
            "already belongs to caller 'c1'",
        ),
        # A caller that is itself a role the policy vends: its holders would act as that caller.
        (
            BASE.replace(
                "[arn:aws:iam::123456789012:role/c1]",
                '[arn:aws:iam::123456789012:role/c1, "arn:aws:iam::210987654321:role/team/x"]',
            ),
            "callers.c1.iam_principals.1",
            "vended by this policy (roles.r2)",
        ),
        (
            BASE.replace("role/c1", "role/R1"),  # r1 is created as "R1", in whatever account deploys it
            "callers.c1.iam_principals.0",
            "vended by this policy (roles.r1)",
        ),
        (
            BASE.replace("{create: true}", "{create: true, role_name: Named}").replace(
                "123456789012:role/c1", "999999999999:role/named"
            ),
            "callers.c1.iam_principals.0",
            "vended by this policy (roles.r1)",
        ),
        (
            BASE.replace("version: 1", "version: 1\ndefaults: {session_name: '{caller'}"),
            "defaults.session_name",
            "not a valid template",
        ),
        (
            BASE.replace("version: 1", "version: 1\ndefaults: {duration_seconds: 100}"),
            "defaults.duration_seconds",
            "greater than or equal to 900",
        ),
        (BASE.replace("[{role: r1}]", "[{role: r1}, {role: r1}]"), "callers.c1.grants", "granted more than once"),
        (BASE.replace("[{role: r1}]", "[]"), "callers.c1.grants", "at least 1"),
        # iam_principals may be empty when the caller has OIDC matchers (CONTRACT §10); with neither, no identity
        (BASE.replace("[arn:aws:iam::123456789012:role/c1]", "[]"), "callers.c1", "needs `iam_principals`, `oidc`"),
        ("version: 1\nroles: {}\n", "roles", "at least 1"),
        ("version: 1\nroles:\n  a-b: {create: true}\n  a_b: {create: true}\n", "roles.a_b.role_name", "clashes"),
        (BASE.replace("  r1: {create: true}", "  'r 1': {create: true}"), "roles.r 1.[key]", "pattern"),
        (BASE.replace("  c1:", "  'c 1':"), "callers.c 1.[key]", "pattern"),
        (
            BASE + "  c1:\n    iam_principals: [arn:aws:iam::123456789012:role/c9]\n    grants: [{role: r1}]\n",
            "",
            "duplicate key 'c1'",
        ),
        ("version: [1", "", "not valid YAML/JSON"),
        ("- 1\n", "", "must be a mapping"),
        ("", "", "must be a mapping"),
    ],
)
def test_invalid_policy_names_the_path(text: str, path: str, fragment: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, source="test.yaml")
    problems = caught.value.problems
    assert any(p == path and fragment in message for p, message in problems), problems
    assert all(not (message.startswith("Tuple should have at least 1") and p != path) for p, message in problems)
    assert "test.yaml" in str(caught.value)
    assert (path or "<root>") in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    text = BASE.replace("{role: r1}", "{role: nope, max_duration_seconds: 1}").replace("version: 1", "version: 3")
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    paths = {path for path, _ in caught.value.problems}
    assert {"version", "callers.c1.grants.0.max_duration_seconds"} <= paths


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(tmp_path / "absent.yaml")
    assert "cannot read" in caught.value.problems[0][1]


def test_same_source_identity_for_two_callers_is_refused() -> None:
    long_a = "a" * 70
    text = BASE + C2.format(arn="arn:aws:iam::123456789012:role/c2").replace("c2:", f"{long_a}:")
    policy = parse_policy(text)  # distinct long names keep distinct identities
    assert len(policy.callers) == 2


def test_json_copy_is_the_same_document(tmp_path: Path) -> None:
    # What the bundler ships as policy.json and the function reads at cold start.
    text = policy_as_json(REPO_ROOT / "policy.yaml")
    copy = tmp_path / "policy.json"
    copy.write_text(text)
    assert load_policy(copy) == load_policy(REPO_ROOT / "policy.yaml")
    assert policy_as_json(copy) == text


def test_json_file_is_read_as_strict_json(tmp_path: Path) -> None:
    document = json.loads(policy_as_json(REPO_ROOT / "policy.yaml"))
    duplicated = tmp_path / "dup.json"
    duplicated.write_text('{"version": 1, "version": 1, "roles": {"r": {"create": true}}}')
    with pytest.raises(PolicyError, match="duplicate key 'version'"):
        load_policy(duplicated)
    yaml_only = tmp_path / "yaml.json"
    yaml_only.write_text("version: 1\nroles: {r: {create: true}}\n")
    with pytest.raises(PolicyError, match="not valid JSON"):
        load_policy(yaml_only)
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps(document | {"version": 2}))
    with pytest.raises(PolicyError) as caught:
        load_policy(invalid)
    assert caught.value.problems[0][0] == "version"


def test_json_copy_refuses_invalid_policies(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text(BASE.replace("version: 1", "version: 2"))
    with pytest.raises(PolicyError):
        policy_as_json(bad)


# -- issue 9: session ARNs, whole-string patterns, confusable caller names -------------------


@pytest.mark.parametrize(
    ("session", "role"),
    [
        (
            "arn:aws:sts::123456789012:assumed-role/c1/i-0abc",
            "arn:aws:iam::123456789012:role/c1",
        ),
        (  # an SSO permission set's session, as get-caller-identity prints it
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/alice@example.com",
            "arn:aws:iam::123456789012:role/AWSReservedSSO_Admin_0123456789abcdef",
        ),
        (
            "arn:aws-us-gov:sts::123456789012:assumed-role/c1/s",
            "arn:aws-us-gov:iam::123456789012:role/c1",
        ),
    ],
)
def test_a_role_session_arn_is_refused_naming_the_role_to_list(session: str, role: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(BASE.replace("arn:aws:iam::123456789012:role/c1", f'"{session}"'))
    [(path, message)] = caught.value.problems
    assert path == "callers.c1.iam_principals.0"
    assert "role session" in message and repr(role) in message


# A YAML block scalar (`|`) ends with "\n": a `$` that matches before it would let these through.
BLOCK_SCALARS = """version: 1
roles:
  r1: {create: true}
  r2:
    arn: |
      arn:aws:iam::210987654321:role/X
callers:
  c1:
    iam_principals:
      - |
        arn:aws:iam::123456789012:role/c1
    grants: [{role: r1}]
"""


def test_arns_from_a_yaml_block_scalar_are_refused() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(BLOCK_SCALARS)
    assert {path for path, _ in caught.value.problems} == {"roles.r2.arn", "callers.c1.iam_principals.0"}
    # the same document without the trailing newlines is fine
    parse_policy(BLOCK_SCALARS.replace("arn: |\n      ", "arn: ").replace("- |\n        ", "- "))


def _document(
    *,
    alias: str = "r1",
    created: dict[str, object] | None = None,
    referenced: dict[str, object] | None = None,
    caller: str = "c1",
    principal: str = "arn:aws:iam::123456789012:role/c1",
    grant: str = "r1",
) -> dict[str, object]:
    return {
        "version": 1,
        "roles": {
            alias: {"create": True, **(created or {})},
            "r2": {"arn": "arn:aws:iam::210987654321:role/X", **(referenced or {})},
        },
        "callers": {caller: {"iam_principals": [principal], "grants": [{"role": grant}]}},
    }


@pytest.mark.parametrize(
    ("document", "path"),
    [
        (_document(alias="r1\n", grant="r1\n"), "roles.r1\n.[key]"),
        (_document(caller="c1\n"), "callers.c1\n.[key]"),
        (_document(created={"role_name": "Named\n"}), "roles.r1.role_name"),
        (
            _document(created={"managed_policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess\n"]}),
            "roles.r1.managed_policy_arns.0",
        ),
        (_document(referenced={"external_id": "an-id\n"}), "roles.r2.external_id"),
        (_document(referenced={"arn": "arn:aws:iam::210987654321:role/X\n"}), "roles.r2.arn"),
        (_document(principal="arn:aws:iam::123456789012:user/alice\n"), "callers.c1.iam_principals.0"),
        (_document(grant="r1\n"), "callers.c1.grants.0.role"),
    ],
)
def test_every_pattern_is_a_whole_string_match(document: dict[str, object], path: str) -> None:
    validate_document(json.loads(json.dumps(document).replace("\\n", "")))  # sound without the newlines
    with pytest.raises(PolicyError) as caught:
        validate_document(document)
    assert any(p == path for p, _ in caught.value.problems), caught.value.problems


def test_principal_parsers_refuse_a_trailing_newline() -> None:
    for arn in (
        "arn:aws:iam::123456789012:role/c1",
        "arn:aws:iam::123456789012:user/alice",
        "arn:aws:sts::123456789012:assumed-role/c1/s",
    ):
        assert principal_key(arn) is not None
        assert principal_key(arn + "\n") is None
        assert parse_arn(arn + "\n") is None
    assert is_role_arn("arn:aws:iam::123456789012:role/c1")
    assert not is_role_arn("arn:aws:iam::123456789012:role/c1\n")
    assert role_arn_of_session("arn:aws:sts::123456789012:assumed-role/c1/s\n") is None


@pytest.mark.parametrize(("first", "second"), [("billing", "Billing"), ("Billing-API", "billing-api"), ("a.B", "A.b")])
def test_caller_names_that_differ_only_in_case_are_refused(first: str, second: str) -> None:
    text = BASE.replace("  c1:", f"  {first}:") + C2.format(arn="arn:aws:iam::123456789012:role/c2").replace(
        "c2:", f"{second}:"
    )
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    [(path, message)] = caught.value.problems
    assert path == f"callers.{second}"
    assert f"caller {first!r}" in message
