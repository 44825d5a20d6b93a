"""OIDC callers in the policy file: issuers and claim matchers (CONTRACT §10).

Pure code, shared by the function (which caller is this verified token?), the CDK app and
the client (``credvend policy check``). A matcher's claim patterns are IAM ``StringLike``
globs: ``*`` any run of characters (none included), ``?`` exactly one, everything else
literal; the whole claim value must match (never a search), by a wildcard matcher that takes
at most len(pattern) * len(value) steps (a backtracking regular expression took polynomial time
in the value for patterns with several ``*``, and claim values are often the caller's to choose).
A claim a matcher does not list is not checked: listing it is the way to constrain it, and
``sub`` must always be listed and constrained (see ``sub_problem``).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

# Asymmetric JWS algorithms only. ``none`` and HMAC (HS*) are never accepted: an HMAC key is
# a shared secret, and a verifier that takes one can be fooled into using an issuer's
# *public* key as the secret (the classic RS256 -> HS256 confusion).
ALLOWED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
LOOPBACK_NAMES = frozenset({"localhost"})


def algorithm_problem(algorithm: str) -> str | None:
    """Why ``algorithm`` cannot be in an issuer's ``algorithms`` list, or None."""
    if algorithm.lower() == "none" or algorithm.upper().startswith("HS"):
        return f"algorithm {algorithm!r} is not allowed: credvend never accepts unsigned or HMAC (shared-secret) tokens"
    if algorithm not in ALLOWED_ALGORITHMS:
        return f"unknown algorithm {algorithm!r}; use one of {', '.join(sorted(ALLOWED_ALGORITHMS))}"
    return None


def is_loopback_host(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    import ipaddress  # only when a policy names an issuer: the IAM path's cold start skips it

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be an issuer (or JWKS) URL, or None: https, or http on loopback only."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        return f"{url!r} is not a URL: {exc}"
    if parts.scheme not in ("https", "http") or not host:
        return f"{url!r} is not an http(s) URL"
    if parts.scheme == "http" and not is_loopback_host(host):
        return f"{url!r} must use https (plain http is accepted for loopback hosts only, for local testing)"
    if parts.username is not None or parts.password is not None:
        return f"{url!r} must not carry credentials"
    if parts.query or parts.fragment:
        return f"{url!r} must not have a query or fragment"
    return None


def is_wildcard_only(pattern: str) -> bool:
    """A pattern with no literal character (``*``, ``**``, ``?*``...): it constrains nothing useful."""
    return all(char in "*?" for char in pattern)


def sub_problem(claims: Mapping[str, str]) -> str | None:
    """Every matcher must constrain ``sub`` with something other than wildcards alone."""
    pattern = claims.get("sub")
    if pattern is None:
        return "a matcher must constrain `sub` (without it, any subject of the issuer would be this caller)"
    if is_wildcard_only(pattern):
        return f"`sub: {pattern!r}` matches every subject; constrain it with literal text"
    return None


def glob_fullmatch(pattern: str, value: str) -> bool:
    """IAM ``StringLike`` semantics over the whole value: ``*`` any run, ``?`` one character.

    Greedy with one resume point (the last ``*``): on a mismatch the last ``*`` takes one more
    character and matching resumes after it. Earlier stars never need revisiting, so this is
    O(len(pattern) * len(value)) whatever the pattern."""
    p = v = 0
    star, resume = -1, 0
    while v < len(value):
        if p < len(pattern) and pattern[p] == "*":
            star, resume = p, v
            p += 1
        elif p < len(pattern) and (pattern[p] == "?" or pattern[p] == value[v]):
            p += 1
            v += 1
        elif star >= 0:
            resume += 1
            p, v = star + 1, resume
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def claim_matches(pattern: str, value: object) -> bool:
    """A verified claim value against a pattern. Only string claims can match: a number,
    boolean, list or object never equals a pattern, so it is never read as one."""
    if not isinstance(value, str):
        return False
    if "*" not in pattern and "?" not in pattern:
        return value == pattern
    return glob_fullmatch(pattern, value)


def claims_match(patterns: Mapping[str, str], verified_claims: Mapping[str, object]) -> bool:
    """Every listed claim is present and matches (a missing claim never matches)."""
    return all(name in verified_claims and claim_matches(p, verified_claims[name]) for name, p in patterns.items())
