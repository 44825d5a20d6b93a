"""The policy file's OIDC parts (CONTRACT §10): issuers, matchers, and the loader's rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credvend_policy import PolicyError, parse_policy
from credvend_policy.claims import claim_matches, claims_match

BASE = """
version: 1
roles:
  r1: {create: true}
issuers:
  github:
    url: https://token.actions.githubusercontent.com
    audiences: [credvend]
callers:
  deploy:
    oidc:
      - issuer: github
        claims: {sub: "repo:acme/app:environment:prod", repository_owner: acme}
    grants: [{role: r1}]
"""


def test_a_caller_with_only_oidc_matchers_loads() -> None:
    policy = parse_policy(BASE)
    assert policy.issuers["github"].algorithms == ("RS256",)
    assert policy.callers["deploy"].iam_principals == ()
    (matcher,) = policy.callers["deploy"].oidc
    assert policy.oidc_matchers() == {"github": [("deploy", matcher)]}


def _problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, source="p.yaml")
    return caught.value.problems


@pytest.mark.parametrize(
    ("old", "new", "path", "fragment"),
    [
        ("url: https://token", "url: http://token", "issuers.github.url", "must use https"),
        ("url: https://token.actions.githubusercontent.com", "url: ftp://x", "issuers.github.url", "not an http(s)"),
        (
            "url: https://token.actions.githubusercontent.com",
            "url: https://u:p@x.com",
            "issuers.github.url",
            "credentials",
        ),
        ("audiences: [credvend]", "audiences: []", "issuers.github.audiences", "at least 1"),
        (
            "audiences: [credvend]",
            "audiences: [credvend]\n    algorithms: [none]",
            "issuers.github.algorithms.0",
            "never",
        ),
        (
            "audiences: [credvend]",
            "audiences: [credvend]\n    algorithms: [HS256]",
            "issuers.github.algorithms.0",
            "HMAC",
        ),
        (
            "audiences: [credvend]",
            "audiences: [credvend]\n    algorithms: [hs512]",
            "issuers.github.algorithms.0",
            "HMAC",
        ),
        (
            "audiences: [credvend]",
            "audiences: [credvend]\n    algorithms: [RS1]",
            "issuers.github.algorithms.0",
            "unknown",
        ),
        ("audiences: [credvend]", "audiences: [credvend]\n    colour: red", "issuers.github.colour", "Extra inputs"),
        (
            "audiences: [credvend]",
            "audiences: [credvend]\n    max_token_age_seconds: 0",
            "issuers.github.max_token_age_seconds",
            "",
        ),
        ('sub: "repo:acme/app:environment:prod", ', "", "callers.deploy.oidc.0.claims", "must constrain `sub`"),
        ('sub: "repo:acme/app:environment:prod"', 'sub: "*"', "callers.deploy.oidc.0.claims", "matches every subject"),
        (
            'sub: "repo:acme/app:environment:prod"',
            'sub: "*?*"',
            "callers.deploy.oidc.0.claims",
            "matches every subject",
        ),
        ("- issuer: github", "- issuer: gitlab", "callers.deploy.oidc.0.issuer", "unknown issuer 'gitlab'"),
        ("    oidc:\n", "    iam_principals: []\n    oidc:\n", "", ""),  # still fine: oidc alone is enough
    ],
)
def test_loader_rules_name_the_path(old: str, new: str, path: str, fragment: str) -> None:
    text = BASE.replace(old, new, 1)
    assert text != BASE
    if not path:
        parse_policy(text)
        return
    problems = _problems(text)
    assert any(p == path and fragment in message for p, message in problems), problems


def test_loopback_issuers_may_use_http() -> None:
    for url in ("http://127.0.0.1:8080", "http://localhost:9000/issuer", "http://[::1]:8080", "http://127.8.9.10"):
        parse_policy(BASE.replace("https://token.actions.githubusercontent.com", url))


def test_a_caller_without_any_identity_and_duplicate_matchers() -> None:
    matcher = '      - issuer: github\n        claims: {sub: "repo:acme/app:environment:prod", repository_owner: acme}'
    no_identity = BASE.replace("    oidc:\n" + matcher + "\n", "")
    assert ("callers.deploy", "a caller needs `iam_principals`, `oidc` matchers, or both") in _problems(no_identity)
    twice = BASE + (
        "  copy:\n    oidc:\n      - issuer: github\n"
        '        claims: {repository_owner: acme, sub: "repo:acme/app:environment:prod"}\n    grants: [{role: r1}]\n'
    )
    assert any(p == "callers.copy.oidc.0" and "callers.deploy.oidc.0" in m for p, m in _problems(twice))


def test_two_issuers_with_one_url_are_a_policy_error() -> None:
    again = "  github-again:\n    url: https://token.actions.githubusercontent.com\n    audiences: [x]\n"
    twin = BASE.replace("callers:", again + "callers:")
    assert (
        "issuers.github-again.url",
        "the same URL as issuers.github: a token's iss names one issuer",
    ) in _problems(twin)


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("repo:acme/app:*", "repo:acme/app:ref:refs/heads/main", True),
        ("repo:acme/app:*", "repo:acme/app:", True),
        ("repo:acme/app:*", "repo:acme/app", False),
        ("repo:acme/app:*", "xrepo:acme/app:ref", False),  # full match, not a search
        ("repo:acme/*:ref:refs/heads/main", "repo:acme/a/b:ref:refs/heads/main", True),  # * crosses '/' as in IAM
        ("system:serviceaccount:ci:deploy?r", "system:serviceaccount:ci:deployer", True),
        ("system:serviceaccount:ci:deploy?r", "system:serviceaccount:ci:deployr", False),
        ("a.b", "aXb", False),  # regex characters are literal
        ("a+b", "a+b", True),
        ("line", "line\n", False),
        ("x*", "x\ny", True),
        ("acme", "ACME", False),  # case-sensitive, as StringLike
    ],
)
def test_glob_semantics(pattern: str, value: str, expected: bool) -> None:
    assert claim_matches(pattern, value) is expected


def test_a_many_star_pattern_matches_in_bounded_steps_not_by_backtracking() -> None:
    # Claim values are often the caller's to choose (a GitHub branch name, a workflow path).
    # The regex this replaced took seconds for 400 characters here, and hours for this one.
    value = "repo:" + "/:" * 5000
    assert claim_matches("*:*:*:*:*x", value) is False
    assert claim_matches("*:*:*:*:*:", value) is True


@settings(max_examples=500)
@given(
    pattern=st.text(alphabet="ab*?", max_size=8),
    value=st.text(alphabet="ab\n", max_size=10),
)
def test_the_matcher_agrees_with_a_full_match_regular_expression(pattern: str, value: str) -> None:
    import re

    regex = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    assert claim_matches(pattern, value) is (re.fullmatch(regex, value, re.DOTALL) is not None)


def test_only_string_claims_match_and_missing_claims_never_do() -> None:
    assert not claim_matches("true", True)
    assert not claim_matches("1", 1)
    assert not claim_matches("*", ["a"])
    assert not claims_match({"sub": "a", "environment": "*"}, {"sub": "a"})
    assert claims_match({"sub": "a", "environment": "*"}, {"sub": "a", "environment": ""})


def test_policy_check_reports_a_policy_with_oidc_callers_and_web_identity_roles(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pathlib import Path

    from credvend_client import cli

    e2e_policy = Path(__file__).resolve().parents[1] / "e2e" / "policy.e2e.yaml"
    assert cli.main(["policy", "check", str(e2e_policy)]) == 0, capsys.readouterr().err
    assert "ok" in capsys.readouterr().out
    assert cli.main(["policy", "check", "--quotas", str(e2e_policy)]) == 0, capsys.readouterr().err
