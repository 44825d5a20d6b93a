"""OIDC callers (CONTRACT §10): bearer tokens verified inside the function.

Imported only by the ``/oidc/`` routes (``credvend.handler`` imports it on first use), so
the IAM path's cold start never loads PyJWT or cryptography. ``verify`` checks a token and
returns an ``OidcIdentity``; ``jwks`` keeps each issuer's keys for the container's life.
"""
