"""STS naming rules: always ^[A-Za-z0-9_+=,.@-]{2,64}$; long names that differ never collide."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from credvend_policy import source_identity_for, to_sts_name

STS_NAME = re.compile(r"^[A-Za-z0-9_+=,.@-]{2,64}$")


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("billing-api", "billing-api"),
        ("a", "a-"),
        ("", "--"),
        ("svc:reports/reader", "svc-reports-reader"),
        ("aws:evil", "aws-evil"),
        ("ünïcode", "-n-code"),
        ("x" * 64, "x" * 64),
    ],
)
def test_examples(raw: str, name: str) -> None:
    assert to_sts_name(raw) == name


def test_cut_names_end_with_a_hash() -> None:
    name = to_sts_name("x" * 65)
    assert len(name) == 64
    assert re.fullmatch(r"x{55}-[0-9a-f]{8}", name)


@given(st.text(max_size=300))
def test_always_legal(raw: str) -> None:
    assert STS_NAME.match(to_sts_name(raw))
    assert STS_NAME.match(source_identity_for(raw))
    assert not source_identity_for(raw).startswith("aws:")


@given(st.from_regex(STS_NAME, fullmatch=True))
def test_legal_names_that_fit_are_kept(raw: str) -> None:
    assert to_sts_name(raw) == raw


@given(st.text(min_size=65, max_size=300), st.text(min_size=65, max_size=300))
def test_long_names_that_differ_never_collide(first: str, second: str) -> None:
    assume(first != second)
    assert to_sts_name(first) != to_sts_name(second)


@given(st.text(alphabet="ab", min_size=65, max_size=80))
def test_long_names_sharing_a_prefix_never_collide(suffix: str) -> None:
    prefix = "p" * 60
    assert to_sts_name(prefix + suffix) != to_sts_name(prefix + suffix + "a")


def test_deterministic() -> None:
    assert to_sts_name("z" * 100) == to_sts_name("z" * 100)
