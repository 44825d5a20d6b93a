"""credvend: the vending function. Entry point ``credvend.handler.handler``.

Layers: ``handler`` (Powertools, HTTP) -> ``domain`` (pure: authorize, clamp, naming,
formats, the vend orchestration) -> ``adapters`` (STS through botocore).
"""
