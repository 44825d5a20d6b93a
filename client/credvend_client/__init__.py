"""The ``credvend`` command: get credentials from a credvend endpoint, for people, scripts and SDKs.

- :mod:`credvend_client.api` signs requests (SigV4, ``execute-api``) and retries;
- :mod:`credvend_client.cache` decides when a sidecar goes upstream (pure, fake-clock tested);
- :mod:`credvend_client.sidecar` serves the SDKs' container-credentials protocol on loopback;
- :mod:`credvend_client.cli` is the command line.
"""

__version__ = "0.1.0"
