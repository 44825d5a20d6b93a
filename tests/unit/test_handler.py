"""Full API Gateway REST proxy events through ``credvend.handler.handler``, STS stubbed.

The stubber fails any STS call that was not queued (it surfaces as a 502), so a test
that queues nothing and gets its 4xx proves no STS call was made.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError
from hypothesis import given
from hypothesis import strategies as st

from credvend import handler as handler_module
from credvend.adapters.sts import BotoSts
from credvend.domain.errors import ERRORS, NotFound
from credvend.settings import Settings
from tests.unit.conftest import (
    ACCOUNT,
    BATCH_USER,
    BILLING_SESSION,
    IAM_USER,
    STRANGER,
    TEST_POLICY,
    FakeLambdaContext,
    StsStub,
    assume_role_response,
    get,
    invoke,
    post,
    rest_event,
)

REPORTS = f"arn:aws:iam::{ACCOUNT}:role/ReportsReader"
LONG = f"arn:aws:iam::{ACCOUNT}:role/LongReader"
MID = f"arn:aws:iam::{ACCOUNT}:role/MidReader"
PARTNER = "arn:aws:iam::210987654321:role/PartnerWriter"


def assert_error(result: tuple[int, dict[str, Any], dict[str, Any]], status: int, code: str) -> dict[str, Any]:
    got_status, headers, body = result
    assert (got_status, body["Error"]["Code"]) == (status, code), body
    assert headers["Content-Type"] == "application/json"
    assert set(body) == {"Error", "RequestId"}
    assert set(body["Error"]) == {"Code", "Message"}
    assert body["RequestId"] == "req-0001"
    assert "Traceback" not in body["Error"]["Message"]
    return body


# -- CONTRACT §2: the error table; none of these may reach STS ------------------------------


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(post("{not json"), id="malformed-json"),
        pytest.param(post(""), id="empty-body"),
        pytest.param(post(None), id="no-body"),
        pytest.param(post("[1, 2]"), id="not-an-object"),
        pytest.param(post({"role": 7}), id="role-wrong-type"),
        pytest.param(post({"duration_seconds": 900}), id="role-missing"),
        pytest.param(post({"role": "reports-reader", "caller": "billing-api"}), id="unknown-field"),
        pytest.param(post({"role": "reports-reader", "format": "xml"}), id="unknown-format"),
        pytest.param(post({"role": "reports-reader", "format": "credential-process"}), id="format-spelling"),
        pytest.param(post({"role": "reports-reader", "duration_seconds": "x", "extra": 1}), id="mixed-errors"),
        pytest.param(post("%%%not-base64", base64_body=False) | {"isBase64Encoded": True}, id="bad-base64"),
        pytest.param(post('{"role": "é"}') | {"isBase64Encoded": True}, id="base64-flag-on-non-ascii"),
        pytest.param(post("e3JvbGU6IH0=\u00e9") | {"isBase64Encoded": True}, id="base64-with-non-ascii-tail"),
        pytest.param(post('{"role": "reports-reader", "role": "long-reader"}'), id="duplicate-key"),
        pytest.param(post('{"role": "x", "duration_seconds": 900, "duration_seconds": 900}'), id="dup-same"),
        pytest.param(
            post('{"role": "reports-reader", "role": "x"}', base64_body=True), id="duplicate-key-in-base64-body"
        ),
        pytest.param(post("[" * 4000 + "]" * 4000), id="nested-too-deep"),
        pytest.param(post('{"role": "\ud800"}'), id="lone-surrogate-escape-is-not-a-role"),
        pytest.param(post('{"role": ' + "9" * 5000 + "}"), id="huge-integer-role"),
        pytest.param(post('{"role": "reports-reader", "format": NaN}'), id="nan-format"),
        pytest.param(get("reports-reader", {"format": "yaml"}), id="get-unknown-format"),
        pytest.param(get("reports-reader", {"role": "x"}), id="get-unknown-param"),
        pytest.param(
            get("reports-reader", {"duration_seconds": "900"}, multi_query={"duration_seconds": ["900", "1200"]}),
            id="get-repeated-param",
        ),
    ],
)
def test_invalid_request_is_400_without_sts(sts: StsStub, event: dict[str, Any]) -> None:
    assert_error(invoke(event), 400, "InvalidRequest")
    sts.assert_done()


@pytest.mark.parametrize(
    "event",
    [
        post({"role": "reports-reader", "duration_seconds": 0}),
        post({"role": "reports-reader", "duration_seconds": -5}),
        post({"role": "reports-reader", "duration_seconds": 43201}),
        post({"role": "reports-reader", "duration_seconds": "3600"}),
        post({"role": "reports-reader", "duration_seconds": 3600.5}),
        post({"role": "reports-reader", "duration_seconds": 3600.0}),
        post({"role": "reports-reader", "duration_seconds": True}),
        post({"role": "reports-reader", "duration_seconds": None}),
        post('{"role": "reports-reader", "duration_seconds": ' + "9" * 5000 + "}"),
        post('{"role": "reports-reader", "duration_seconds": -' + "9" * 5000 + "}"),
        post('{"role": "reports-reader", "duration_seconds": ' + "1" * 65 + "}"),
        post('{"role": "reports-reader", "duration_seconds": 1e5}'),
        post('{"role": "reports-reader", "duration_seconds": 1e999999}'),
        post('{"role": "reports-reader", "duration_seconds": 3600e0}'),
        post('{"role": "reports-reader", "duration_seconds": ' + "1" * 5000 + ".0}"),
        post('{"role": "reports-reader", "duration_seconds": NaN}'),
        post('{"role": "reports-reader", "duration_seconds": -Infinity}'),
        post('{"role": "reports-reader", "duration_seconds": false}'),
        post('{"role": "reports-reader", "duration_seconds": [3600]}'),
        post('{"role": "reports-reader", "duration_seconds": {"s": 3600}}'),
        get("reports-reader", {"duration_seconds": "abc"}),
        get("reports-reader", {"duration_seconds": "0"}),
        get("reports-reader", {"duration_seconds": "43201"}),
        get("reports-reader", {"duration_seconds": "-1"}),
        get("reports-reader", {"duration_seconds": "1e3"}),
        get("reports-reader", {"duration_seconds": ""}),
    ],
)
def test_invalid_duration_is_400_without_sts(sts: StsStub, event: dict[str, Any]) -> None:
    assert_error(invoke(event), 400, "InvalidDuration")
    sts.assert_done()


def _identity_without(field: str) -> dict[str, Any]:
    event = post({"role": "reports-reader"})
    event["requestContext"]["identity"].pop(field)
    return event


def _unsigned(event: dict[str, Any]) -> dict[str, Any]:
    event["requestContext"]["identity"]["userArn"] = None
    return event


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(post({"role": "reports-reader"}, user_arn=None), id="null-userArn"),
        pytest.param(_identity_without("userArn"), id="no-userArn"),
        pytest.param(post({"role": "reports-reader"}, identity={}), id="empty-identity"),
        pytest.param(post({"role": "reports-reader"}, user_arn=""), id="empty-userArn"),
        pytest.param(post({"role": "reports-reader"}, user_arn="billing-api"), id="not-an-arn"),
        pytest.param(get("reports-reader", user_arn=None), id="get-null-userArn"),
        # The identity is checked first: whatever else is wrong, no identity is a 401.
        pytest.param(post("x" * 100_000, user_arn=None), id="oversized-body"),
        pytest.param(post("{not json", user_arn=None), id="malformed-body"),
        pytest.param(post({"role": "reports-reader", "caller": "billing-api"}, user_arn=None), id="unknown-field"),
        pytest.param(get("reports-reader", {"role": "x"}, user_arn=None), id="unknown-query-param"),
        pytest.param(get("reports-reader", {"duration_seconds": "abc"}, user_arn=None), id="bad-duration"),
        pytest.param(rest_event("DELETE", "/credentials", user_arn=None), id="unknown-route"),
    ],
)
def test_no_identity_is_401_without_sts(sts: StsStub, event: dict[str, Any]) -> None:
    assert_error(invoke(event), 401, "Unauthenticated")
    sts.assert_done()


def _smuggled(event: dict[str, Any]) -> dict[str, Any]:
    """A stranger's request that names a granted caller everywhere but the verified userArn."""
    event["headers"] |= {"X-Amz-User-Arn": BILLING_SESSION, "userArn": BILLING_SESSION, "X-Caller": "billing-api"}
    event["multiValueHeaders"] |= {"userArn": [BILLING_SESSION]}
    event["requestContext"]["identity"] |= {"caller": BILLING_SESSION, "user": BILLING_SESSION}
    event["requestContext"]["authorizer"] = {"principalId": BILLING_SESSION, "userArn": BILLING_SESSION}
    event["stageVariables"] = {"userArn": BILLING_SESSION}
    return event


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(post({"role": "reports-reader"}, user_arn=STRANGER), id="post"),
        pytest.param(get("reports-reader", {"format": "json"}, user_arn=STRANGER), id="get"),
    ],
)
def test_identity_is_only_the_verified_user_arn(sts: StsStub, event: dict[str, Any]) -> None:
    assert_error(invoke(_smuggled(event)), 403, "AccessDenied")
    sts.assert_done()


def test_missing_request_context_is_401(sts: StsStub) -> None:
    event = post({"role": "reports-reader"})
    del event["requestContext"]["identity"]
    assert_error(invoke(event), 401, "Unauthenticated")


@pytest.mark.parametrize(
    ("user_arn", "role"),
    [
        pytest.param(STRANGER, "reports-reader", id="unknown-caller"),
        pytest.param(f"arn:aws:iam::{ACCOUNT}:root", "reports-reader", id="account-root"),
        pytest.param(BATCH_USER, "long-reader", id="not-granted"),
        pytest.param(BILLING_SESSION, "nobodys-role", id="not-granted-to-anyone"),
        pytest.param(BILLING_SESSION, "no-such-alias", id="unknown-alias"),
        pytest.param(BILLING_SESSION, "Reports-Reader", id="alias-is-case-sensitive"),
        pytest.param("arn:aws:sts::999999999999:assumed-role/billing-api-task/x", "reports-reader", id="other-account"),
    ],
)
def test_access_denied_is_one_answer_for_all_reasons(sts: StsStub, user_arn: str, role: str) -> None:
    post_body = assert_error(invoke(post({"role": role}, user_arn=user_arn)), 403, "AccessDenied")
    get_body = assert_error(invoke(get(role, user_arn=user_arn)), 403, "AccessDenied")
    reference = assert_error(invoke(post({"role": "no-such-alias"}, user_arn=STRANGER)), 403, "AccessDenied")
    assert post_body == get_body == reference  # nothing tells an unknown alias from a refused one
    sts.assert_done()


def test_body_over_8_kib_is_413_before_parsing(sts: StsStub) -> None:
    assert_error(invoke(post("{" + " " * 8192 + "}")), 413, "PayloadTooLarge")
    assert_error(invoke(post("x" * 100_000)), 413, "PayloadTooLarge")  # not JSON either: size wins
    sts.assert_done()


def test_body_of_exactly_8_kib_is_accepted(sts: StsStub) -> None:
    body = json.dumps({"role": "reports-reader"})
    body = body[:-1] + " " * (8192 - len(body)) + "}"
    assert len(body) == 8192
    sts.assume(REPORTS, duration=3600)
    status, _, _ = invoke(post(body))
    assert status == 200
    sts.assert_done()


def test_base64_body_is_decoded(sts: StsStub) -> None:
    sts.assume(REPORTS, duration=3600)
    status, _, _ = invoke(post({"role": "reports-reader"}, base64_body=True))
    assert status == 200


def test_sts_throttling_is_429_with_retry_after(sts: StsStub) -> None:
    sts.error("assume_role", "Throttling", "Rate exceeded")
    body = assert_error(result := invoke(post({"role": "reports-reader"})), 429, "Throttled")
    assert result[1]["Retry-After"] == "1"
    assert "Rate exceeded" not in body["Error"]["Message"]


OWN_ROLE_MESSAGE = (
    f"User: arn:aws:sts::{ACCOUNT}:assumed-role/credvend-fn-role/credvend is not authorized to perform: "
    f"sts:AssumeRole on resource: {REPORTS}"
)


@pytest.mark.parametrize(
    ("code", "message", "http", "status", "expected_code"),
    [
        ("AccessDenied", OWN_ROLE_MESSAGE, 403, 502, "UpstreamError"),
        ("RegionDisabledException", "STS is not activated in this region", 403, 502, "UpstreamError"),
        ("PackedPolicyTooLarge", "too large", 400, 502, "UpstreamError"),
        ("ExpiredTokenException", OWN_ROLE_MESSAGE, 400, 502, "UpstreamError"),
        ("InternalFailure", "boom", 500, 502, "UpstreamError"),
        ("ServiceUnavailable", "try later", 503, 503, "UpstreamUnavailable"),
    ],
)
def test_sts_failures_map_to_the_table_without_leaking(
    sts: StsStub, code: str, message: str, http: int, status: int, expected_code: str
) -> None:
    sts.error("assume_role", code, message, http)
    body = assert_error(invoke(post({"role": "reports-reader"})), status, expected_code)
    assert "credvend-fn-role" not in json.dumps(body)
    assert message not in json.dumps(body)


class _TimingOutClient:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def assume_role(self, **_: Any) -> Any:
        raise self.error

    def get_caller_identity(self, **_: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        ConnectTimeoutError(endpoint_url="https://sts.eu-west-1.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://sts.eu-west-1.amazonaws.com"),
    ],
)
def test_sts_timeout_is_503(policy_file: Any, monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    monkeypatch.setenv("CREDVEND_POLICY_FILE", str(policy_file))
    handler_module.reset_runtime(settings=Settings.from_env(), sts=BotoSts(client=_TimingOutClient(error)))
    assert_error(invoke(post({"role": "reports-reader"})), 503, "UpstreamUnavailable")


class _ContextWithLittleTime(FakeLambdaContext):
    def __init__(self, remaining_ms: int) -> None:
        super().__init__()
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_no_sts_call_is_started_that_could_outlast_the_function(sts: StsStub) -> None:
    # 8 s left: 1 s margin, then 7 s, exactly what one STS call may take at worst.
    assert BotoSts.max_call_seconds == 7
    sts.assume(REPORTS, duration=3600)
    assert invoke(post({"role": "reports-reader"}), _ContextWithLittleTime(8_100))[0] == 200
    # Less than that: a 503 now, instead of a Lambda timeout (no answer) later.
    assert_error(invoke(post({"role": "reports-reader"}), _ContextWithLittleTime(7_900)), 503, "UpstreamUnavailable")
    sts.assert_done()  # nothing was sent for the second request


class _BrokenPort:
    max_call_seconds = 7.0

    def assume_role(self, **_: Any) -> Any:
        raise RuntimeError(f"secret-ish detail {OWN_ROLE_MESSAGE}")

    def caller_identity_arn(self) -> str:
        raise RuntimeError("nope")


def test_unexpected_failure_is_a_generic_500_json(policy_file: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDVEND_POLICY_FILE", str(policy_file))
    handler_module.reset_runtime(settings=Settings.from_env(), sts=_BrokenPort())
    body = assert_error(invoke(post({"role": "reports-reader"})), 500, "InternalError")
    assert "secret-ish" not in json.dumps(body)


def test_event_without_identity_is_401_json(sts: StsStub) -> None:
    result = handler_module.handler({"unexpected": True}, FakeLambdaContext())
    assert result["statusCode"] == 401
    assert result["headers"]["Content-Type"] == "application/json"
    assert json.loads(result["body"]) == {
        "Error": {"Code": "Unauthenticated", "Message": "The request carries no verified caller identity."},
        "RequestId": "lambda-request-id",
    }


def test_unreadable_event_with_identity_is_400_json(sts: StsStub) -> None:
    # Not an event API Gateway writes (no method, no path): malformed input, a 4xx (issue 9).
    event = {"requestContext": {"requestId": "req-0001", "identity": {"userArn": BILLING_SESSION}}}
    result = handler_module.handler(event, FakeLambdaContext())
    assert result["statusCode"] == 400
    assert result["headers"]["Content-Type"] == "application/json"
    assert json.loads(result["body"])["Error"]["Code"] == "InvalidRequest"
    sts.assert_done()


def test_unknown_route_is_404_json(sts: StsStub) -> None:
    body = assert_error(invoke(rest_event("DELETE", "/credentials")), 404, "NotFound")
    assert body["Error"]["Message"] == "No such route."


def test_broken_policy_file_fails_closed_as_500_and_logs_why(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text(TEST_POLICY.replace("- role: mid-reader", "- role: mid-raeder"))
    monkeypatch.setenv("CREDVEND_POLICY_FILE", str(bad))
    handler_module.reset_runtime(settings=Settings.from_env(), sts=_BrokenPort())
    for _ in range(2):  # not cached: every request tries again, and says why it failed
        body = assert_error(invoke(post({"role": "reports-reader"})), 500, "InternalError")
        assert "grants" not in json.dumps(body)  # the operator learns why, the caller does not
    records = [record for record in caplog.records if record.getMessage() == "invalid policy file"]
    assert len(records) == 2
    for record in records:
        assert record.levelno == logging.ERROR
        assert record.policy_file == str(bad)
        assert record.problems == [
            {"path": "callers.billing-api.grants.3.role", "message": "unknown role alias 'mid-raeder'"}
        ]


def test_error_table_has_every_answer() -> None:
    assert (NotFound().status, NotFound().code) == (404, "NotFound")
    assert ERRORS["NotFound"] == 404


def test_echoed_field_names_are_few_and_short(sts: StsStub) -> None:
    names = {f"{letter * 500}{i}": 1 for i, letter in enumerate("abcdefghij")}
    body = assert_error(invoke(post({"role": "reports-reader"} | names)), 400, "InvalidRequest")
    message = body["Error"]["Message"]
    assert len(message) < 3 * 64 + 100 and message.endswith("and 7 more.")
    assert "a" * 64 in message and "a" * 65 not in message and "d" * 64 not in message
    body = assert_error(invoke(get("reports-reader", {name: "1" for name in names})), 400, "InvalidRequest")
    assert len(body["Error"]["Message"]) < 3 * 64 + 100
    sts.assert_done()


# -- the three formats on both routes --------------------------------------------------------

FORMAT_KEYS = {
    "json": {"Credentials", "AssumedRoleUser", "Grant", "RequestId"},
    "credential_process": {"Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"},
    "container": {"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "RoleArn", "AccountId"},
}


@pytest.mark.parametrize("route", ["post", "get"])
@pytest.mark.parametrize("fmt", [None, "json", "credential_process", "container"])
def test_formats_on_both_routes(sts: StsStub, route: str, fmt: str | None) -> None:
    sts.assume(REPORTS, duration=3600)
    if route == "post":
        event = post({"role": "reports-reader"} | ({"format": fmt} if fmt else {}))
    else:
        event = get("reports-reader", {"format": fmt} if fmt else None)
    status, headers, body = invoke(event)
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-store"
    assert set(body) == FORMAT_KEYS[fmt or "json"]
    if fmt == "credential_process":
        assert body["Version"] == 1
        assert body["SessionToken"].startswith("Fwo")
        assert body["Expiration"] == "2026-11-23T16:35:57Z"
    elif fmt == "container":
        assert body["Token"].startswith("Fwo")
        assert body["RoleArn"] == REPORTS
        assert body["AccountId"] == ACCOUNT
        assert body["Expiration"] == "2026-11-23T16:35:57Z"
    else:
        assert set(body["Credentials"]) == {"AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}
        assert body["Credentials"]["Expiration"] == "2026-11-23T16:35:57Z"
        assert body["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/ReportsReader/billing-api"
        assert body["Grant"] == {
            "Caller": "billing-api",
            "Role": "reports-reader",
            "RoleArn": REPORTS,
            "RoleSessionName": "billing-api",
            "SourceIdentity": "billing-api",
            "RequestedDurationSeconds": 3600,
            "GrantedDurationSeconds": 3600,
            "LimitedBy": [],
            "Issuance": "assume_role",
        }
        assert body["RequestId"] == "req-0001"
    sts.assert_done()


def test_assume_role_gets_session_name_source_identity_and_tags(sts: StsStub) -> None:
    sts.stubber.add_response(
        "assume_role",
        assume_role_response(PARTNER, "billing-api"),
        {
            "RoleArn": PARTNER,
            "RoleSessionName": "billing-api",
            "SourceIdentity": "billing-api",
            "DurationSeconds": 3600,
            "ExternalId": "a-shared-id",
            "Tags": [
                {"Key": "credvend:caller", "Value": "billing-api"},
                {"Key": "credvend:request-id", "Value": "req-0001"},
            ],
        },
    )
    status, _, body = invoke(post({"role": "partner-writer", "format": "container"}))
    assert status == 200
    assert body["AccountId"] == "210987654321"
    sts.assert_done()


def test_created_role_arn_comes_from_the_function_arn_without_sts(sts: StsStub) -> None:
    sts.assume(REPORTS, duration=3600)  # no GetCallerIdentity queued: the context's ARN is enough
    assert invoke(post({"role": "reports-reader"}))[0] == 200
    sts.assert_done()


def test_created_role_arn_falls_back_to_get_caller_identity(sts: StsStub) -> None:
    sts.identity()
    sts.assume(REPORTS, duration=3600)
    context = FakeLambdaContext(invoked_function_arn="")
    assert invoke(post({"role": "reports-reader"}), context)[0] == 200
    sts.assert_done()


# -- CONTRACT §3: the clamp table, through the handler ----------------------------------


def vend(body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    status, headers, response = invoke(post(body, **kwargs))
    assert status == 200, response
    assert headers["Cache-Control"] == "no-store"
    return dict(response["Grant"])


@pytest.mark.parametrize(
    ("identity", "role", "arn", "requested", "granted", "limited_by"),
    [
        # source credentials are long-term IAM user keys: no role-chaining cap
        (IAM_USER, "long-reader", LONG, 43200, 43200, []),
        (IAM_USER, "long-reader", LONG, 20000, 20000, []),
        (IAM_USER, "reports-reader", REPORTS, 43200, 7200, ["caller_grant"]),
        (IAM_USER, "mid-reader", MID, 43200, 14400, ["role_max_session_duration"]),
        (IAM_USER, "partner-writer", PARTNER, 7200, 3600, ["caller_grant", "role_max_session_duration"]),
        # the function's own credentials are a role session (always so on Lambda)
        (None, "long-reader", LONG, 43200, 3600, ["role_chaining"]),
        (None, "reports-reader", REPORTS, 43200, 3600, ["role_chaining"]),
        (None, "mid-reader", MID, 5000, 3600, ["role_chaining"]),
        (None, "partner-writer", PARTNER, 7200, 3600, ["caller_grant", "role_max_session_duration", "role_chaining"]),
    ],
)
def test_clamp_table(
    sts: StsStub, identity: str | None, role: str, arn: str, requested: int, granted: int, limited_by: list[str]
) -> None:
    if identity is None:
        sts.identity()
    else:
        sts.identity(identity)
    sts.assume(arn, duration=granted, external_id="a-shared-id" if role == "partner-writer" else None)
    grant = vend({"role": role, "duration_seconds": requested})
    assert (grant["RequestedDurationSeconds"], grant["GrantedDurationSeconds"], grant["LimitedBy"]) == (
        requested,
        granted,
        limited_by,
    )
    sts.assert_done()


@pytest.mark.parametrize("requested", [1, 60, 899])
def test_sts_minimum(sts: StsStub, requested: int) -> None:
    sts.assume(REPORTS, duration=900)
    grant = vend({"role": "reports-reader", "duration_seconds": requested})
    assert (grant["GrantedDurationSeconds"], grant["LimitedBy"]) == (900, ["sts_minimum"])
    sts.assert_done()  # no GetCallerIdentity: chaining cannot matter below 3600


def test_request_within_every_cap_is_not_limited(sts: StsStub) -> None:
    sts.assume(REPORTS, duration=900)
    assert vend({"role": "reports-reader", "duration_seconds": 900})["LimitedBy"] == []


def test_default_duration_needs_no_identity_probe(sts: StsStub) -> None:
    sts.assume(REPORTS, duration=3600)
    grant = vend({"role": "reports-reader"})
    assert (grant["RequestedDurationSeconds"], grant["GrantedDurationSeconds"], grant["LimitedBy"]) == (3600, 3600, [])
    sts.assert_done()


def test_chaining_is_probed_once_per_cold_start(sts: StsStub) -> None:
    sts.identity()
    for _ in range(3):
        sts.assume(LONG, duration=3600)
    for _ in range(3):
        assert vend({"role": "long-reader", "duration_seconds": 43200})["LimitedBy"] == ["role_chaining"]
    sts.assert_done()


def test_caller_grant_equal_to_chaining_cap_lists_both(sts: StsStub) -> None:
    sts.identity()
    sts.assume(PARTNER, duration=3600, external_id="a-shared-id")
    grant = vend({"role": "partner-writer", "duration_seconds": 3601})
    assert grant["LimitedBy"] == ["caller_grant", "role_max_session_duration", "role_chaining"]


DURATION_TOO_LONG = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."


def test_sts_rejected_retries_once_at_3600_and_remembers(sts: StsStub) -> None:
    sts.identity(IAM_USER)
    sts.error(
        "assume_role",
        "ValidationError",
        DURATION_TOO_LONG,
        expected={
            "RoleArn": LONG,
            "RoleSessionName": "billing-api",
            "SourceIdentity": "billing-api",
            "DurationSeconds": 43200,
            "Tags": pytest.importorskip("botocore.stub").ANY,
        },
    )
    sts.assume(LONG, duration=3600)
    grant = vend({"role": "long-reader", "duration_seconds": 43200})
    assert (grant["GrantedDurationSeconds"], grant["LimitedBy"]) == (3600, ["sts_rejected"])
    # remembered for the role: the next request goes straight to 3600, one STS call
    sts.assume(LONG, duration=3600)
    grant = vend({"role": "long-reader", "duration_seconds": 20000})
    assert (grant["GrantedDurationSeconds"], grant["LimitedBy"]) == (3600, ["sts_rejected"])
    # ...only for that role
    sts.assume(MID, duration=14400)
    assert vend({"role": "mid-reader", "duration_seconds": 43200})["GrantedDurationSeconds"] == 14400
    # and a request under the remembered cap is not limited by it
    sts.assume(LONG, duration=1800)
    assert vend({"role": "long-reader", "duration_seconds": 1800})["LimitedBy"] == []
    sts.assert_done()


def test_sts_rejected_is_forgotten_at_the_next_cold_start(sts: StsStub, policy_file: Any) -> None:
    test_sts_rejected_retries_once_at_3600_and_remembers(sts)
    fresh = StsStub()
    handler_module.reset_runtime(settings=Settings.from_env(), sts=BotoSts(client=fresh.client))
    fresh.identity(IAM_USER)
    fresh.assume(LONG, duration=43200)
    assert vend({"role": "long-reader", "duration_seconds": 43200})["GrantedDurationSeconds"] == 43200


def test_sts_rejection_at_or_under_3600_is_not_retried(sts: StsStub) -> None:
    sts.identity()  # chaining: granted is 3600 already
    sts.error(
        "assume_role",
        "ValidationError",
        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
    )
    assert_error(invoke(post({"role": "long-reader", "duration_seconds": 43200})), 502, "UpstreamError")
    sts.assert_done()


def test_sts_rejecting_the_retry_too_is_502_and_not_remembered(sts: StsStub) -> None:
    sts.identity(IAM_USER)
    sts.error("assume_role", "ValidationError", DURATION_TOO_LONG)
    sts.error("assume_role", "ValidationError", DURATION_TOO_LONG)
    assert_error(invoke(post({"role": "long-reader", "duration_seconds": 43200})), 502, "UpstreamError")
    sts.assume(LONG, duration=43200)
    assert vend({"role": "long-reader", "duration_seconds": 43200})["GrantedDurationSeconds"] == 43200
    sts.assert_done()


def test_other_validation_errors_are_not_retried(sts: StsStub) -> None:
    sts.identity(IAM_USER)
    sts.error("assume_role", "ValidationError", "1 validation error detected: Value at 'roleSessionName' ...")
    assert_error(invoke(post({"role": "long-reader", "duration_seconds": 43200})), 502, "UpstreamError")
    sts.assert_done()


def test_identity_probe_failure_issues_nothing(sts: StsStub) -> None:
    sts.error("get_caller_identity", "Throttling", "Rate exceeded")
    assert_error(invoke(post({"role": "long-reader", "duration_seconds": 43200})), 429, "Throttled")
    sts.identity()  # the next request probes again
    sts.assume(LONG, duration=3600)
    assert vend({"role": "long-reader", "duration_seconds": 43200})["LimitedBy"] == ["role_chaining"]
    sts.assert_done()


def test_get_route_clamps_the_same(sts: StsStub) -> None:
    sts.identity()
    sts.assume(LONG, duration=3600)
    status, _, body = invoke(get("long-reader", {"duration_seconds": "43200"}))
    assert status == 200
    assert body["Grant"]["LimitedBy"] == ["role_chaining"]


def _as_powertools_reads(deserializer: Any, text: str) -> Any:
    """LambdaPowertoolsFormatter._extract_log_message: JSON if the deserializer can read it, else the text."""
    try:
        return deserializer(text)
    except ValueError:  # JSONDecodeError is one
        return text


JSONISH = ['{"a": 1}', " [1]", "12", "-1.5", "true", "null", "NaN", ' "x"', "\u00a0{}", "credential vend decision"]


@given(st.text(max_size=40) | st.sampled_from(JSONISH))
def test_log_messages_are_read_as_powertools_reads_them(text: str) -> None:
    ours, theirs = _as_powertools_reads(handler_module._log_message, text), _as_powertools_reads(json.loads, text)
    assert repr(ours) == repr(theirs)  # repr: NaN is not equal to itself


@pytest.mark.filterwarnings("ignore:POWERTOOLS_DEV environment variable is enabled")
@pytest.mark.parametrize("dev", ["false", "true"])
def test_log_lines_are_serialized_as_powertools_would(monkeypatch: pytest.MonkeyPatch, dev: str) -> None:
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    monkeypatch.setenv("POWERTOOLS_DEV", dev)
    line = {"message": "credential vend décision", "limited_by": ["caller_grant"], "at": object(), "n": None, "f": 1.5}
    assert handler_module._log_line_serializer()(line) == LambdaPowertoolsFormatter().serialize(line)  # type: ignore[arg-type]
