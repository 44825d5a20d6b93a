"""Session name, SourceIdentity and session tags (CONTRACT §4), always legal for STS.

STS's naming rules live in ``credvend_policy.sts_names``; this module only decides what
to feed them, so the trust policies (built from the same functions) always match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from credvend_policy import source_identity_for, to_sts_name

CALLER_TAG = "credvend:caller"
REQUEST_ID_TAG = "credvend:request-id"
SUBJECT_TAG = "credvend:subject"  # OIDC callers: the token's ``sub`` (CONTRACT §10)
_TAG_VALUE_MAX = 256
# STS session-tag values: Unicode letters, digits, spaces and _ . : / = + - @ (no comma).
_ILLEGAL_TAG_VALUE = re.compile(r"[^\w .:/=+@-]")


@dataclass(frozen=True, slots=True)
class SessionNaming:
    session_name: str
    source_identity: str
    tags: tuple[tuple[str, str], ...]


def render_session_name(template: str, *, caller: str, role: str, request_id: str) -> str:
    """Render ``defaults.session_name`` and make it a legal RoleSessionName.

    The placeholders were checked when the policy was loaded; a name cut to 64
    characters ends with a hash of the full rendering, so two callers never collide.
    """
    return to_sts_name(template.format(caller=caller, role=role, request_id=request_id))


def tag_value(raw: str) -> str:
    """A legal session-tag value for ``raw`` (illegal characters become ``-``, at most 256)."""
    return _ILLEGAL_TAG_VALUE.sub("-", raw)[:_TAG_VALUE_MAX]


def name_session(
    template: str, *, caller: str, role: str, request_id: str, subject: str | None = None
) -> SessionNaming:
    tags: tuple[tuple[str, str], ...] = ((CALLER_TAG, tag_value(caller)), (REQUEST_ID_TAG, tag_value(request_id)))
    if subject is not None:
        tags += ((SUBJECT_TAG, tag_value(subject)),)
    return SessionNaming(
        session_name=render_session_name(template, caller=caller, role=role, request_id=request_id),
        source_identity=source_identity_for(caller),
        tags=tags,
    )
