"""CONTRACT §3: ``clamp_duration`` row by row, then as properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credvend.domain.clamp import LimitedBy, clamp_duration

G, R, C, M, S = (
    LimitedBy.CALLER_GRANT,
    LimitedBy.ROLE_MAX_SESSION_DURATION,
    LimitedBy.ROLE_CHAINING,
    LimitedBy.STS_MINIMUM,
    LimitedBy.STS_REJECTED,
)


@pytest.mark.parametrize(
    ("requested", "grant", "role_max", "chaining", "rejected", "granted", "limited_by"),
    [
        # without role chaining (long-term IAM user keys as the source)
        (3600, 7200, 14400, False, None, 3600, ()),
        (43200, 43200, 43200, False, None, 43200, ()),
        (43200, 7200, 14400, False, None, 7200, (G,)),
        (43200, 43200, 14400, False, None, 14400, (R,)),
        (20000, 14400, 14400, False, None, 14400, (G, R)),
        (14400, 14400, 14400, False, None, 14400, ()),  # at the caps, not below the request
        (600, 7200, 14400, False, None, 900, (M,)),
        (1, 900, 3600, False, None, 900, (M,)),
        (43200, 43200, 43200, False, 3600, 3600, (S,)),
        (43200, 3600, 43200, False, 3600, 3600, (G, S)),
        (3000, 43200, 43200, False, 3600, 3000, ()),
        # with role chaining (always so on Lambda)
        (43200, 43200, 43200, True, None, 3600, (C,)),
        (43200, 7200, 14400, True, None, 3600, (C,)),
        (7200, 3600, 3600, True, None, 3600, (G, R, C)),
        (3601, 43200, 3600, True, None, 3600, (R, C)),
        (3600, 43200, 43200, True, None, 3600, ()),
        (1800, 900, 3600, True, None, 900, (G,)),
        (899, 43200, 43200, True, None, 900, (M,)),
        (43200, 43200, 43200, True, 3600, 3600, (C, S)),
    ],
)
def test_clamp_table(
    requested: int,
    grant: int,
    role_max: int,
    chaining: bool,
    rejected: int | None,
    granted: int,
    limited_by: tuple[LimitedBy, ...],
) -> None:
    clamp = clamp_duration(
        requested=requested,
        caller_grant=grant,
        role_max_session_duration=role_max,
        role_chaining=chaining,
        sts_rejected=rejected,
    )
    assert (clamp.requested, clamp.granted, clamp.limited_by) == (requested, granted, limited_by)


def test_limited_by_values_are_the_contract_strings() -> None:
    assert [str(reason) for reason in LimitedBy] == [
        "caller_grant",
        "role_max_session_duration",
        "role_chaining",
        "sts_minimum",
        "sts_rejected",
    ]


durations = st.integers(min_value=1, max_value=43200)
grants = st.integers(min_value=900, max_value=43200)
role_maxes = st.integers(min_value=3600, max_value=43200)


@given(durations, grants, role_maxes, st.booleans(), st.one_of(st.none(), st.just(3600)))
def test_clamp_properties(requested: int, grant: int, role_max: int, chaining: bool, rejected: int | None) -> None:
    clamp = clamp_duration(
        requested=requested,
        caller_grant=grant,
        role_max_session_duration=role_max,
        role_chaining=chaining,
        sts_rejected=rejected,
    )
    caps = {G: grant, R: role_max}
    if chaining:
        caps[C] = 3600
    if rejected is not None:
        caps[S] = rejected

    assert 900 <= clamp.granted <= 43200
    # never above a cap, unless the 900 floor lifted it
    assert all(clamp.granted <= cap for cap in caps.values()) or clamp.granted == 900
    # never above the request, unless the request was under STS's minimum
    assert clamp.granted <= requested or (requested < 900 and clamp.granted == 900)
    # the formula itself
    assert clamp.granted == max(900, min(requested, *caps.values()))
    # LimitedBy: exactly the caps equal to the grant and below the request (+ sts_minimum)
    expected = {reason for reason, cap in caps.items() if cap == clamp.granted < requested}
    if requested < 900:
        expected.add(M)
    assert set(clamp.limited_by) == expected
    # in the table's order, without repeats
    order = list(LimitedBy)
    assert list(clamp.limited_by) == sorted(set(clamp.limited_by), key=order.index)
    # a request at or under every cap (and at least 900) is not limited
    if 900 <= requested <= min(caps.values()):
        assert clamp.limited_by == () and clamp.granted == requested
    # with chaining nothing is ever granted over an hour
    if chaining:
        assert clamp.granted <= 3600
