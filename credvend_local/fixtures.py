"""Session-scoped pytest fixture for a LocalStack host process.

Import it into a conftest.py or a test module:

    from credvend_local.fixtures import localstack  # noqa: F401

`localstack` gives a launcher.LocalStack with .endpoint ("http://127.0.0.1:<port>"), .port,
.region, .env() (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3, test credentials, region) and .log_path.

`local_credvend` (import it the same way) is a local credvend for a service team's own tests:
the stack deployed from CREDVEND_LOCAL_POLICY (default: the repo's policy.yaml) into that
LocalStack, and a session of a caller (CREDVEND_LOCAL_CALLER, default the policy's first) as
.env (CREDVEND_ENDPOINT, AWS_ENDPOINT_URL, AWS_REGION and the caller's keys), .credentials,
.api_url, .endpoint. With CREDVEND_LOCAL_NAME=local it attaches to the one `make local` (or
`python -m credvend_local up`) left running instead, with no deploy: fast test iterations.

Every module that imports the fixture registers its own copy with pytest; all copies share one
LocalStack per test process, stopped when the last of them is torn down (and, failing that, at
exit or when the test process dies). Set CREDVEND_LOCALSTACK_ENDPOINT=http://127.0.0.1:<port>
to use an already running LocalStack (e.g. from `launcher.py start`); it is left running.
"""

import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from botocore.credentials import Credentials

from credvend_local import launcher, local

_lock = threading.Lock()
_shared = {"instance": None, "users": 0}


def _acquire() -> launcher.LocalStack:
    with _lock:
        if _shared["instance"] is None:
            # Its own name per test process, so parallel test runs do not collide.
            _shared["instance"] = launcher.start(name=f"pytest-{os.getpid()}", tie_to_parent=True, stop_at_exit=True)
        _shared["users"] += 1
        return _shared["instance"]


def _release() -> None:
    with _lock:
        _shared["users"] -= 1
        if _shared["users"] == 0 and _shared["instance"] is not None:
            instance, _shared["instance"] = _shared["instance"], None
            instance.stop()
            launcher.remove_instance(instance.name)


@pytest.fixture(scope="session")
def localstack():
    external = os.environ.get("CREDVEND_LOCALSTACK_ENDPOINT")
    if external:
        region = os.environ.get("AWS_DEFAULT_REGION", launcher.DEFAULT_REGION)
        yield launcher.LocalStack("external", urlsplit(external).port, pid=-1, region=region)
        return
    instance = _acquire()
    try:
        yield instance
    finally:
        _release()


@dataclass(frozen=True)
class LocalCredvendSession:
    """A deployed local credvend and a caller of it."""

    deployment: local.LocalCredvend
    caller: local.Caller

    @property
    def env(self) -> dict[str, str]:
        """CREDVEND_ENDPOINT, AWS_ENDPOINT_URL, AWS_REGION(+DEFAULT) and the caller's keys."""
        return local.caller_environment(self.deployment, self.caller)

    @property
    def credentials(self) -> Credentials:
        return self.caller.credentials

    @property
    def api_url(self) -> str:
        return self.deployment.api_url

    @property
    def endpoint(self) -> str:
        return self.deployment.endpoint


@pytest.fixture(scope="session")
def local_credvend(request: pytest.FixtureRequest):
    caller_name = os.environ.get("CREDVEND_LOCAL_CALLER") or None
    attach_to = os.environ.get("CREDVEND_LOCAL_NAME")
    if attach_to:
        running = local.load(attach_to)
        if running is None:
            pytest.fail(f"no local credvend {attach_to!r} is running: make local (or python -m credvend_local up)")
        yield LocalCredvendSession(running, local.open_caller_session(running, caller_name))
        return
    instance = request.getfixturevalue("localstack")
    policy = Path(os.environ.get("CREDVEND_LOCAL_POLICY") or local.DEFAULT_POLICY)
    deployed = local.deploy(instance, policy)
    try:
        yield LocalCredvendSession(deployed, local.open_caller_session(deployed, caller_name))
    finally:
        shutil.rmtree(local.state_dir(instance.name), ignore_errors=True)
