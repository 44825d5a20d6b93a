"""CONTRACT §4: session names, SourceIdentity and session tags are always legal for STS."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from credvend.domain.naming import CALLER_TAG, REQUEST_ID_TAG, name_session, render_session_name, tag_value
from credvend_policy import source_identity_for

STS_NAME = re.compile(r"^[A-Za-z0-9_+=,.@-]{2,64}$")
TAG_VALUE = re.compile(r"^[\w .:/=+@-]{0,256}$")


def test_default_template_is_the_caller() -> None:
    assert render_session_name("{caller}", caller="billing-api", role="reports-reader", request_id="r") == "billing-api"


def test_template_placeholders() -> None:
    name = render_session_name("{caller}@{role}/{request_id}", caller="a", role="b", request_id="c-1")
    assert name == "a@b-c-1"  # '/' is illegal in a session name


def test_long_rendering_is_cut_with_a_hash() -> None:
    name = render_session_name("{caller}-{request_id}", caller="c" * 40, role="r", request_id="x" * 40)
    assert len(name) == 64 and STS_NAME.match(name)
    other = render_session_name("{caller}-{request_id}", caller="c" * 40, role="r", request_id="x" * 39 + "y")
    assert name != other


def test_name_session_sets_source_identity_and_tags() -> None:
    naming = name_session("{caller}", caller="billing-api", role="reports-reader", request_id="req-1")
    assert naming.session_name == "billing-api"
    assert naming.source_identity == source_identity_for("billing-api") == "billing-api"
    assert naming.tags == ((CALLER_TAG, "billing-api"), (REQUEST_ID_TAG, "req-1"))


@pytest.mark.parametrize(("raw", "value"), [("a,b", "a-b"), ("x" * 300, "x" * 256), ("ok:/=+@ .-_", "ok:/=+@ .-_")])
def test_tag_values_are_legal(raw: str, value: str) -> None:
    assert tag_value(raw) == value


names = st.text(min_size=0, max_size=200)


@given(names, names, names)
def test_rendered_names_are_always_legal(caller: str, role: str, request_id: str) -> None:
    for template in ("{caller}", "{caller}-{role}", "{request_id}", "x{caller}{role}{request_id}"):
        naming = name_session(template, caller=caller, role=role, request_id=request_id)
        assert STS_NAME.match(naming.session_name)
        assert STS_NAME.match(naming.source_identity)
        assert not naming.source_identity.startswith("aws:")
        for key, value in naming.tags:
            assert 1 <= len(key) <= 128
            assert TAG_VALUE.match(value)


legal_callers = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_+=,.@-]{60,127}", fullmatch=True)


@given(legal_callers, legal_callers)
def test_two_long_callers_never_share_a_session_name(first: str, second: str) -> None:
    assume(first != second)
    assert render_session_name("{caller}", caller=first, role="r", request_id="q") != render_session_name(
        "{caller}", caller=second, role="r", request_id="q"
    )
