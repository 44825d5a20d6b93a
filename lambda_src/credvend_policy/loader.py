"""Read ``policy.yaml`` (or JSON) into a validated :class:`Policy`, or fail with paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from credvend_policy.model import Policy, consistency_problems

try:  # the C loader is ~10x faster; fall back where libyaml is missing
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]


class PolicyError(ValueError):
    """The policy file is invalid. ``problems`` holds (path, message) pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {path or '<root>'}: {message}" for path, message in problems)
        super().__init__(f"{source}: invalid policy ({len(problems)} problem(s))\n{lines}")


class _UniqueKeyLoader(_BaseLoader):
    """YAML loader that refuses duplicate keys: a second ``billing-api:`` must not win silently."""


def _mapping_without_duplicates(loader: Any, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return dict(loader.construct_mapping(node, deep=deep))


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def _dotted(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _prefixes(locs: set[tuple[int | str, ...]]) -> set[tuple[int | str, ...]]:
    return {loc[:end] for loc in locs for end in range(1, len(loc) + 1)}


def parse_policy(text: str, *, source: str = "<policy>") -> Policy:
    """Parse and validate policy text (YAML or JSON, which YAML reads too)."""
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise PolicyError(source, [("", f"not valid YAML/JSON: {exc}")]) from None
    if not isinstance(document, dict):
        raise PolicyError(source, [("", "the document must be a mapping with `version`, `roles`, `callers`")])
    try:
        policy = Policy.model_validate(document)
    except ValidationError as exc:
        errors = exc.errors()
        # pydantic re-checks a tuple's min_length on the items that validated, so one bad
        # grant also yields "at least 1 item" on its parent: report only the real problem.
        deeper = {tuple(error["loc"][:-1]) for error in errors if error["loc"]}
        problems = [
            (_dotted(error["loc"]), error["msg"].removeprefix("Value error, "))
            for error in errors
            if not (error["type"] == "too_short" and tuple(error["loc"]) in _prefixes(deeper))
        ]
        raise PolicyError(source, problems) from None
    problems = consistency_problems(policy)
    if problems:
        raise PolicyError(source, problems)
    return policy


def load_policy(path: str | Path) -> Policy:
    """Read and validate the policy file at ``path``."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(str(file), [("", f"cannot read: {exc.strerror or exc}")]) from None
    return parse_policy(text, source=str(file))
