"""Session-scoped pytest fixture for a LocalStack host process.

Import it into a conftest.py or a test module:

    from credvend_local.fixtures import localstack  # noqa: F401

`localstack` gives a launcher.LocalStack with .endpoint ("http://127.0.0.1:<port>"), .port,
.region, .env() (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3, test credentials, region) and .log_path.

Every module that imports the fixture registers its own copy with pytest; all copies share one
LocalStack per test process, stopped when the last of them is torn down (and, failing that, at
exit or when the test process dies). Set CREDVEND_LOCALSTACK_ENDPOINT=http://127.0.0.1:<port>
to use an already running LocalStack (e.g. from `launcher.py start`); it is left running.
"""

import os
import threading
from urllib.parse import urlsplit

import pytest

from credvend_local import launcher

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
