"""A local credvend: LocalStack as a host process, made strict where credvend depends on AWS.

Shared by the test suite, ``make demo``, ``make local`` and service teams' own integration
tests. ``launcher`` installs/starts/stops LocalStack; ``plugin/`` is what runs inside it
(host-process Lambda executor, API Gateway SigV4 authorization, STS/IAM rules); ``deploy``
runs the real ``cdk deploy``; ``identities`` makes callers; ``fixtures`` is the pytest fixture.
"""
