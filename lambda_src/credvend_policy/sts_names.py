"""STS's naming rules for RoleSessionName and SourceIdentity, in one place."""

from __future__ import annotations

import hashlib
import re

STS_NAME_MIN = 2
STS_NAME_MAX = 64
_ILLEGAL = re.compile(r"[^A-Za-z0-9_+=,.@-]")
_HASH_CHARS = 8  # 32 bits of the full name: enough to keep two callers' names apart


def to_sts_name(raw: str) -> str:
    """Make ``raw`` legal as an STS RoleSessionName / SourceIdentity.

    Illegal characters become ``-``; a name shorter than 2 is padded with ``-``; a
    name longer than 64 is cut and ends with a hash of the *full* name, so two long
    names that share a prefix never collide.
    """
    name = _ILLEGAL.sub("-", raw)
    if len(name) > STS_NAME_MAX:
        digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:_HASH_CHARS]
        name = f"{name[: STS_NAME_MAX - _HASH_CHARS - 1]}-{digest}"
    return name.ljust(STS_NAME_MIN, "-")


def source_identity_for(caller: str) -> str:
    """The SourceIdentity credvend sets for ``caller`` (and trust policies expect)."""
    return to_sts_name(caller)
