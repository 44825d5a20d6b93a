"""Fuzzing the Lambda entry point with malformed API Gateway events (issue 9, item 4).

Whatever the event — random bodies, base64 flags, query strings, headers, a missing or odd
request context, fields of the wrong type — the answer is a JSON error with a 4xx status and a
code from CONTRACT §2, never a 5xx; and STS is called only for a request that is valid (and
then answered with 200).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from credvend import handler as handler_module
from credvend.domain.errors import ERRORS
from credvend.domain.formats import AssumedRole, Credentials
from credvend.settings import Settings
from tests.unit.conftest import BATCH_USER, BILLING_SESSION, STRANGER, FakeLambdaContext, rest_event

CLIENT_ERRORS = {code for code, status in ERRORS.items() if 400 <= status < 500 and status != 429}
ALIASES = ["reports-reader", "long-reader", "partner-writer", "nobodys-role", "Reports-Reader", "x", ""]


class CountingSts:
    """Answers every call (so a valid request can succeed) and counts them."""

    max_call_seconds = 7.0

    def __init__(self) -> None:
        self.calls = 0

    def assume_role(self, *, role_arn: str, session_name: str, **_: Any) -> AssumedRole:
        self.calls += 1
        credentials = Credentials(
            access_key_id="ASIAFUZZ",
            secret_access_key=SecretStr("fuzz-secret"),
            session_token=SecretStr("fuzz-token"),
            expiration=datetime.now(UTC) + timedelta(hours=1),
        )
        name = role_arn.rsplit("/", 1)[-1]
        account = role_arn.split(":")[4]
        return AssumedRole(credentials, f"arn:aws:sts::{account}:assumed-role/{name}/{session_name}", "AROA:x")

    def caller_identity_arn(self) -> str:
        self.calls += 1
        return "arn:aws:sts::123456789012:assumed-role/credvend-fn-role/credvend"


@pytest.fixture
def counting_sts(policy_file: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingSts]:
    for name in ("AWS_LAMBDA_FUNCTION_NAME", "POWERTOOLS_TRACE_DISABLED", "POWERTOOLS_METRICS_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CREDVEND_POLICY_FILE", str(policy_file))
    sts = CountingSts()
    handler_module.reset_runtime(settings=Settings.from_env(), sts=sts)
    yield sts


# -- strategies ---------------------------------------------------------------------------------


def pick(*branches: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of ``branches``, chosen by weight. (``st.one_of`` flattens nested one_ofs, so a branch
    such as ``anything`` below would otherwise be chosen most of the time.)"""
    indexes = [index for index, (weight, _) in enumerate(branches) for _ in range(weight)]
    return st.sampled_from(indexes).flatmap(lambda index: branches[index][1])


# Any JSON-ish value, including types API Gateway never puts where we read.
anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | st.binary(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
texts = st.text(max_size=20)


class _Raw:
    """A literal spliced into the JSON text as is (numbers a JSON library would not write)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _dump(document: dict[str, Any]) -> str:
    raws: dict[str, str] = {}

    def default(value: Any) -> Any:
        if isinstance(value, _Raw):
            marker = f"@@raw{len(raws)}@@"
            raws[marker] = value.text
            return marker
        raise TypeError

    text = json.dumps(document, default=default)
    for marker, raw in raws.items():
        text = text.replace(json.dumps(marker), raw)
    return text


durations = pick(
    (3, st.integers(min_value=-(10**6), max_value=10**6)),
    (1, st.floats()),
    (1, st.booleans() | st.none() | st.text(max_size=8)),
    (
        2,
        st.sampled_from(
            ["9" * 5000, "-" + "9" * 5000, "1e5", "3600.0", "-0", "1e999999", "NaN", "Infinity", "3600e0", "1" * 65]
        ).map(_Raw),
    ),
)
request_bodies = st.fixed_dictionaries(
    {},
    optional={
        "role": pick((3, st.sampled_from(ALIASES)), (1, json_values)),
        "duration_seconds": durations,
        "format": pick((3, st.sampled_from(["json", "container", "credential_process", "xml", ""])), (1, json_values)),
    },
).map(_dump)


def _with_field(text: str, field: str) -> str:
    return text[:-1] + (", " if text != "{}" else "") + field + "}"


_BODIES: dict[str, st.SearchStrategy[Any]] = {
    "none": st.none(),
    "text": st.text(max_size=200),
    "bytes": st.binary(max_size=200).map(lambda raw: raw.decode("latin-1")),
    "request": request_bodies,
    "duplicate": request_bodies.map(lambda text: _with_field(_with_field(text, '"role": "x"'), '"role": "y"')),
    "unknown-field": request_bodies.map(lambda text: _with_field(text, '"caller": "billing-api"')),
    "json": json_values.map(json.dumps),
    "extreme": st.sampled_from(["[" * 4000 + "]" * 4000, "{" * 3000, '"' + "\\ud800" * 10 + '"', "x" * 9000]),
    "not-text": anything,
}
bodies = st.sampled_from([*_BODIES, "request", "request", "request"]).flatmap(_BODIES.__getitem__)

# Mostly a known caller, so that most events get past authentication to the input checks.
identities = pick(
    (6, st.just(BILLING_SESSION)),
    (1, st.sampled_from([BATCH_USER, STRANGER, "arn:aws:iam::123456789012:role/billing-api-task\n", None])),
    (1, texts | anything),
)
ROUTES = [("POST", "/credentials"), ("GET", "/credentials/{role}")]
OTHER_ROUTES = st.tuples(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "get", ""]),
    st.sampled_from(["/", "/credentials/", "/roles/x", "/credentials/{role}/x"]),
)


@st.composite
def events(draw: st.DrawFn) -> Any:
    role = draw(pick((3, st.sampled_from(ALIASES)), (1, st.text(max_size=10))))
    method, path = draw(pick((4, st.sampled_from(ROUTES)), (1, OTHER_ROUTES)))
    event = rest_event(method, path.format(role=role), user_arn=None)
    event["requestContext"]["identity"]["userArn"] = draw(identities)
    event["body"] = draw(bodies)
    event["isBase64Encoded"] = draw(pick((4, st.booleans()), (1, st.none()), (1, anything)))
    if isinstance(event["body"], str) and draw(st.booleans()):
        event["body"] = base64.b64encode(event["body"].encode("utf-8", "surrogatepass")).decode()
        event["isBase64Encoded"] = True
    query = draw(
        pick(
            (2, st.none()),
            (2, st.dictionaries(st.sampled_from(["duration_seconds", "format"]), texts)),
            (2, st.fixed_dictionaries({"duration_seconds": st.sampled_from(["900", "9" * 5000, "1e3", "٣٦٠٠", "-1"])})),
            (1, st.dictionaries(st.sampled_from(["duration_seconds", "format", "role", "dry_run"]) | texts, texts)),
            (1, anything),
        )
    )
    event["queryStringParameters"] = query
    if isinstance(query, dict):
        single = {key: [value] for key, value in query.items()}
        repeated = {key: [value, value] for key, value in query.items()}
        event["multiValueQueryStringParameters"] = draw(
            pick((4, st.just(single)), (1, st.just(repeated)), (1, st.none()), (1, anything))
        )
    else:
        event["multiValueQueryStringParameters"] = draw(pick((1, st.none()), (1, anything)))
    event["headers"] = draw(
        pick(
            (3, st.just(event["headers"])),
            (1, st.none()),
            (1, st.dictionaries(texts, texts, max_size=4)),
            (1, anything),
        )
    )
    event["multiValueHeaders"] = draw(
        pick(
            (3, st.just(event["multiValueHeaders"])),
            (1, st.none()),
            (1, st.dictionaries(texts, st.lists(texts, max_size=2), max_size=3)),
            (1, anything),
        )
    )
    # Now and then, top-level fields replaced by values of another type, or dropped.
    mangled = draw(pick((3, st.just([])), (1, st.lists(st.sampled_from(sorted(event)), max_size=3, unique=True))))
    for name in mangled:
        if draw(st.booleans()):
            del event[name]
        else:
            event[name] = draw(anything)
    return event


# -- the property -------------------------------------------------------------------------------


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=pick((9, events()), (1, anything)))  # sometimes not even a mapping
def test_every_malformed_event_is_a_4xx_json_error_and_reaches_no_sts(counting_sts: CountingSts, event: Any) -> None:
    calls_before = counting_sts.calls
    result = handler_module.handler(event, FakeLambdaContext())
    status = result["statusCode"]
    headers = {key: values[-1] for key, values in (result.get("multiValueHeaders") or {}).items()}
    headers.update(result.get("headers") or {})
    assert headers["Content-Type"] == "application/json"
    body = json.loads(result["body"])
    hypothesis.event(f"{status} {body.get('Error', {}).get('Code', '')}")
    if status == 200:  # a well-formed, authorized request, generated by chance
        assert counting_sts.calls > calls_before
        assert "Error" not in body
        return
    assert 400 <= status < 500, body
    assert set(body) == {"Error", "RequestId"}
    assert body["Error"]["Code"] in CLIENT_ERRORS, body
    assert ERRORS[body["Error"]["Code"]] == status
    assert counting_sts.calls == calls_before, "an invalid request reached STS"


def _post(**fields: Any) -> dict[str, Any]:
    return rest_event("POST", "/credentials", body="{}") | fields


def _get(**fields: Any) -> dict[str, Any]:
    return rest_event("GET", "/credentials/reports-reader") | fields


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(_post(body=7), id="body-not-text"),
        pytest.param(_post(isBase64Encoded="yes"), id="flag-not-bool"),
        pytest.param(_get(queryStringParameters=["a"]), id="query-a-list"),
        pytest.param(_get(queryStringParameters={"format": 1}), id="query-value-int"),
        pytest.param(_get(multiValueQueryStringParameters={"format": "json"}), id="multi-query-not-lists"),
        pytest.param(_get(headers={"Accept": None}), id="header-none"),
        pytest.param(_get(multiValueHeaders={"Accept": [1]}), id="multi-header-int"),
        pytest.param(_get(httpMethod=None), id="method-none"),
        pytest.param(_get(path=5), id="path-int"),
        pytest.param(_get(pathParameters={"role": 5}), id="path-parameter-int"),
        pytest.param(_get(resource=["/"]), id="resource-list"),
    ],
)
def test_events_with_fields_of_the_wrong_type_are_400(counting_sts: CountingSts, event: dict[str, Any]) -> None:
    result = handler_module.handler(event, FakeLambdaContext())
    assert (result["statusCode"], json.loads(result["body"])["Error"]["Code"]) == (400, "InvalidRequest")
    assert counting_sts.calls == 0
