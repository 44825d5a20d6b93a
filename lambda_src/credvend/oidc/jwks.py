"""Issuer keys, fetched over HTTPS and kept for the container's life.

Keys come from the JWKS at the issuer's ``jwks_uri`` (from the policy, else from the
issuer's discovery document). A token whose ``kid`` is not among the cached keys makes the
container fetch the JWKS again, at most once per issuer every ``REFETCH_INTERVAL_SECONDS``
(an issuer rotating keys is picked up; a forger spraying random ``kid`` values costs the
issuer one request per interval, not one per token). Until an issuer's keys were fetched
once, every request tries, with short timeouts. Any fetch problem (network, status,
redirect, size, JSON) is ``JwksUnavailable``: the function answers 503, never 401, since
the token may be fine.

Only URLs from the policy file are ever fetched (issuer URL, configured or discovered
``jwks_uri``, checked against the same https-or-loopback rule), never one from a token.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from credvend_policy import IssuerSpec
from credvend_policy.claims import is_loopback_host, url_problem

REFETCH_INTERVAL_SECONDS = 30.0
FETCH_TIMEOUT_SECONDS = 2.0
MAX_DOCUMENT_BYTES = 256 * 1024
DISCOVERY_PATH = "/.well-known/openid-configuration"

Fetch = Callable[[str, float], bytes]
# RFC 7518 §6.2.2, §6.3.2, §6.4: members only a private (or symmetric) JWK has.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class JwksUnavailable(Exception):
    """The issuer's discovery document or JWKS could not be fetched or read."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect could lead from https to http, or off the issuer's host: refuse them all.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects())


def http_fetch(url: str, timeout: float) -> bytes:
    """GET ``url`` (JSON expected): the body of a 200 answer, else ``JwksUnavailable``."""
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "credvend"})  # noqa: S310 - URLs from the policy, https or loopback (url_problem)
    try:
        with _opener.open(request, timeout=timeout) as response:
            if response.status != 200:
                raise JwksUnavailable(f"http_{response.status}")
            body: bytes = response.read(MAX_DOCUMENT_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise JwksUnavailable(f"http_{exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException):
        # HTTPException: an answer that is not HTTP (bad status line, broken chunking), which
        # urllib does not wrap in URLError.
        raise JwksUnavailable("unreachable") from None
    if len(body) > MAX_DOCUMENT_BYTES:
        raise JwksUnavailable("too_large")
    return body


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nesting too deep for the decoder
        raise JwksUnavailable(f"{what}_not_json") from None
    if not isinstance(document, dict):
        raise JwksUnavailable(f"{what}_not_object")
    return document


class IssuerKeys:
    """One issuer's signing keys (JWK dicts by ``kid``), as this container last fetched them."""

    def __init__(
        self,
        spec: IssuerSpec,
        *,
        fetch: Fetch = http_fetch,
        clock: Callable[[], float] = time.monotonic,
        refetch_interval: float = REFETCH_INTERVAL_SECONDS,
    ) -> None:
        self._spec = spec
        self._fetch = fetch
        self._clock = clock
        self._refetch_interval = refetch_interval
        self._jwks_uri: str | None = spec.jwks_uri
        self._keys: dict[str | None, Mapping[str, Any]] | None = None
        self._fetched_at = float("-inf")
        self.fetches = 0  # JWKS fetches so far (observability, tests)

    def jwk_for(self, kid: str | None) -> Mapping[str, Any] | None:
        """The JWK for ``kid`` (None: the issuer's only key), fetching as the module says.
        None when the issuer does not have it; ``JwksUnavailable`` when it cannot be asked."""
        if self._keys is None:
            self._refresh()
        jwk = self._find(kid)
        if jwk is None and self._clock() - self._fetched_at >= self._refetch_interval:
            self._refresh()
            jwk = self._find(kid)
        return jwk

    def _find(self, kid: str | None) -> Mapping[str, Any] | None:
        keys = self._keys or {}
        if kid is None:
            # A token without ``kid`` names no key: only an issuer with exactly one key can sign it.
            return next(iter(keys.values())) if len(keys) == 1 else None
        return keys.get(kid)

    def _refresh(self) -> None:
        self._fetched_at = self._clock()  # failures count too: at most one attempt per interval
        self.fetches += 1
        jwks_uri = self._jwks_uri or self._discover()
        document = _json_object(self._fetch(jwks_uri, FETCH_TIMEOUT_SECONDS), "jwks")
        raw_keys = document.get("keys")
        if not isinstance(raw_keys, list):
            raise JwksUnavailable("jwks_without_keys")
        keys: dict[str | None, Mapping[str, Any]] = {}
        for jwk in raw_keys:
            if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig" or not isinstance(jwk.get("kty"), str):
                continue  # encryption keys and junk are not signing keys
            if not _PRIVATE_MEMBERS.isdisjoint(jwk):
                continue  # a published private key (or HMAC secret) lets anyone sign: trust nothing it signs
            kid = jwk.get("kid")
            if kid is not None and not isinstance(kid, str):
                continue
            keys.setdefault(kid, jwk)
        self._keys = keys
        self._jwks_uri = jwks_uri

    def _discover(self) -> str:
        url = self._spec.url.rstrip("/") + DISCOVERY_PATH
        document = _json_object(self._fetch(url, FETCH_TIMEOUT_SECONDS), "discovery")
        # OpenID Connect Discovery §4.3: the document's issuer is the issuer URL (a trailing
        # slash aside: tokens are held to the exact URL anyway); another issuer's document is
        # a misconfiguration, never a source of keys.
        issuer = document.get("issuer")
        if issuer is not None and (not isinstance(issuer, str) or issuer.rstrip("/") != self._spec.url.rstrip("/")):
            raise JwksUnavailable("discovery_issuer_mismatch")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or url_problem(jwks_uri) is not None:
            raise JwksUnavailable("discovery_bad_jwks_uri")
        # Loopback is for local testing: a document from a remote issuer must not send the
        # function to its own loopback services (the Lambda runtime API listens there).
        if _is_loopback_url(jwks_uri) and not _is_loopback_url(self._spec.url):
            raise JwksUnavailable("discovery_bad_jwks_uri")
        return jwks_uri


def _is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname  # a URL that passed url_problem
    return host is not None and is_loopback_host(host)
