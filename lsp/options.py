"""The server's initialization options: camelCase on the wire, snake_case here.

Sent by the client as `initializationOptions` in `initialize`. Unknown keys and bad
values are reported to the user (window/showMessage) and replaced by the defaults,
never fatal: a misconfigured editor still gets a working server.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

import cattrs


@dataclass
class Options:
    """`initializationOptions` of the livefix language server (see docs/lsp.md)."""

    # Directories (relative to each workspace folder, or absolute) that module names
    # are computed from; default: `src` if present, then the folder itself.
    module_roots: list[str] = field(default_factory=list)
    # Publish drift diagnostics on definitions whose running code differs from the file.
    drift_diagnostics: bool = True


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _strict_converter() -> cattrs.Converter:
    converter = cattrs.Converter()

    # cattrs would turn "no" into True and 3 into "3": refuse instead.
    def exact(kind: type) -> Any:
        def structure(value: Any, _: Any) -> Any:
            if type(value) is not kind:
                raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
            return value

        return structure

    converter.register_structure_hook(bool, exact(bool))
    converter.register_structure_hook(str, exact(str))

    # ...and would turn the string "src" into the list ["s", "r", "c"].
    def structure_list(value: Any, kind: Any) -> Any:
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(kind) or (Any,)
        return [converter.structure(element, item) for element in value]

    converter.register_structure_hook_func(lambda kind: typing.get_origin(kind) is list, structure_list)
    return converter


def parse_options(raw: Any) -> tuple[Options, list[str]]:
    """The options from the wire, and a description of every problem found."""
    options = Options()
    if raw is None:
        return options, []
    if not isinstance(raw, dict):
        return options, [f"initializationOptions must be an object, not {type(raw).__name__}"]
    converter = _strict_converter()
    problems: list[str] = []
    known = {_camel(f.name): f for f in dataclasses.fields(Options)}
    hints = typing.get_type_hints(Options)
    for key, value in raw.items():
        spec = known.get(key)
        if spec is None:
            problems.append(f"unknown option `{key}` (known: {', '.join(sorted(known))})")
            continue
        try:
            setattr(options, spec.name, converter.structure(value, hints[spec.name]))
        except Exception as exc:  # cattrs raises a variety of errors for bad shapes
            problems.append(f"option `{key}` ignored: {_first_line(exc)}")
    return options, problems


def _first_line(exc: Exception) -> str:
    if isinstance(exc, cattrs.BaseValidationError) and exc.exceptions:
        return _first_line(exc.exceptions[0])
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__

