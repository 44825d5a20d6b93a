"""Read ``policy.yaml`` (or its JSON form) into a validated :class:`Policy`, or fail with paths.

A ``.json`` file is read with the standard library's JSON parser; anything else as YAML.
PyYAML is imported only for YAML: the function's asset carries a JSON copy of the same
document (``policy.json``, written by the bundler from ``policy.yaml``), so a cold start
validates the policy without paying for a YAML parser. Both parsers refuse duplicate keys.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from credvend_policy.model import Policy, consistency_problems


class PolicyError(ValueError):
    """The policy file is invalid. ``problems`` holds (path, message) pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {path or '<root>'}: {message}" for path, message in problems)
        super().__init__(f"{source}: invalid policy ({len(problems)} problem(s))\n{lines}")


@cache
def _yaml_loader() -> Any:
    """A YAML SafeLoader that refuses duplicate keys: a second ``billing-api:`` must not win silently."""
    import yaml

    try:  # the C loader is ~10x faster; fall back where libyaml is missing
        base: Any = yaml.CSafeLoader
    except AttributeError:  # pragma: no cover
        base = yaml.SafeLoader

    def mapping_without_duplicates(loader: Any, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return dict(loader.construct_mapping(node, deep=deep))

    loader: Any = type("UniqueKeyLoader", (base,), {})
    loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping_without_duplicates)
    return loader


class _DuplicateKey(ValueError):
    pass


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise _DuplicateKey(f"duplicate key {key!r}")
        document[key] = value
    return document


def parse_document(text: str, *, source: str = "<policy>", is_json: bool = False) -> dict[str, Any]:
    """The policy document as plain data (not yet validated): YAML, or strict JSON with ``is_json``."""
    if is_json:
        try:
            document = json.loads(text, object_pairs_hook=_json_object)
        except ValueError as exc:  # JSONDecodeError and duplicate keys
            raise PolicyError(source, [("", f"not valid JSON: {exc}")]) from None
    else:
        import yaml

        try:
            document = yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as exc:
            raise PolicyError(source, [("", f"not valid YAML/JSON: {exc}")]) from None
    if not isinstance(document, dict):
        raise PolicyError(source, [("", "the document must be a mapping with `version`, `roles`, `callers`")])
    return document


def _dotted(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _prefixes(locs: set[tuple[int | str, ...]]) -> set[tuple[int | str, ...]]:
    return {loc[:end] for loc in locs for end in range(1, len(loc) + 1)}


def validate_document(document: dict[str, Any], *, source: str = "<policy>") -> Policy:
    """Validate a parsed document: the model, then the rules that span the file."""
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


def parse_policy(text: str, *, source: str = "<policy>", is_json: bool = False) -> Policy:
    """Parse and validate policy text (YAML, which reads JSON too; strict JSON with ``is_json``)."""
    return validate_document(parse_document(text, source=source, is_json=is_json), source=source)


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(str(file), [("", f"cannot read: {exc.strerror or exc}")]) from None


def load_policy(path: str | Path) -> Policy:
    """Read and validate the policy file at ``path`` (JSON if it ends in ``.json``, else YAML)."""
    file = Path(path)
    return parse_policy(_read(file), source=str(file), is_json=file.suffix.lower() == ".json")


def policy_as_json(path: str | Path) -> str:
    """The policy file at ``path`` as JSON: the same document, validated, for the function's asset.

    Fails if JSON cannot carry the document exactly (for example a YAML mapping with a
    non-string key), so the JSON copy never says something the YAML does not.
    """
    file = Path(path)
    source = str(file)
    document = parse_document(_read(file), source=source, is_json=file.suffix.lower() == ".json")
    validate_document(document, source=source)
    try:
        text = json.dumps(document, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    except (TypeError, ValueError):
        text = ""
    if not text or json.loads(text) != document:
        raise PolicyError(source, [("", "the document cannot be written as JSON without changing it")])
    return text
