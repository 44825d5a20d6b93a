"""Duration clamping, CONTRACT §3, in one function with its reasons."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from credvend_policy import ROLE_CHAINING_LIMIT, STS_MIN_DURATION

STS_REJECTED_RETRY = 3600  # the one retry after STS refuses a duration (every role allows 3600)


class LimitedBy(StrEnum):
    """Why the granted duration is below the request; members in the contract's table order."""

    CALLER_GRANT = "caller_grant"
    ROLE_MAX_SESSION_DURATION = "role_max_session_duration"
    ROLE_CHAINING = "role_chaining"
    STS_MINIMUM = "sts_minimum"
    STS_REJECTED = "sts_rejected"


_TABLE_ORDER = {reason: index for index, reason in enumerate(LimitedBy)}


@dataclass(frozen=True, slots=True)
class Clamp:
    requested: int
    granted: int
    limited_by: tuple[LimitedBy, ...]


def clamp_duration(
    *,
    requested: int,
    caller_grant: int,
    role_max_session_duration: int,
    role_chaining: bool,
    sts_rejected: int | None = None,
) -> Clamp:
    """granted = max(900, min(requested, every cap that applies)).

    ``sts_rejected`` is the lower cap remembered for the role after STS refused a
    duration (None when it never has). ``limited_by`` lists every cap equal to the granted
    value and below the request, in table order; ``sts_minimum`` is there exactly when the
    request was under 900 and was raised to it.
    """
    caps: list[tuple[LimitedBy, int]] = [
        (LimitedBy.CALLER_GRANT, caller_grant),
        (LimitedBy.ROLE_MAX_SESSION_DURATION, role_max_session_duration),
    ]
    if role_chaining:
        caps.append((LimitedBy.ROLE_CHAINING, ROLE_CHAINING_LIMIT))
    if sts_rejected is not None:
        caps.append((LimitedBy.STS_REJECTED, sts_rejected))
    granted = max(STS_MIN_DURATION, min(requested, *(cap for _, cap in caps)))
    limited_by = [reason for reason, cap in caps if cap == granted < requested]
    if requested < STS_MIN_DURATION:
        limited_by.append(LimitedBy.STS_MINIMUM)
    limited_by.sort(key=_TABLE_ORDER.__getitem__)
    return Clamp(requested=requested, granted=granted, limited_by=tuple(limited_by))
