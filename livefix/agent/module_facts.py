"""A fleet's change as a fact about a module, not a replay of a file path.

Every change of a fleet apply is resolved, in each worker, to the module it changes
(`module` named, or found from `path`: a loaded module's file, else the module that file is
on `sys.path`), so that the journal records `shop.pricing`/`total` rather than a path only
some machines have, and so that a worker that has not imported the module yet can keep the
change until it does (`engine.pending`). Standard library only.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

from livefix.engine import locate
from livefix.engine.pending import importable, importing
from livefix.errors import LivefixError


@dataclass
class Split:
    """The changes for modules this process runs, and those for modules it has not imported."""

    loaded: list[dict[str, Any]] = field(default_factory=list)
    later: list[dict[str, Any]] = field(default_factory=list)

    @property
    def facts(self) -> list[dict[str, Any]]:
        """Every change as module + qualname + source: what the journal keeps."""
        return [_fact(change) for change in (*self.loaded, *self.later)]

    def later_modules(self) -> list[str]:
        return sorted({change["module"] for change in self.later})


def split(changes: list[dict[str, Any]], keep_for_import: bool) -> Split:
    """Resolve each change's module; with `keep_for_import`, a module not imported yet (but
    importable here) is kept for its import rather than refused as not loaded."""
    result = Split()
    for change in changes:
        module = change.get("module")
        path = change.get("path")
        if module and module in sys.modules and not (keep_for_import and importing(module)):
            result.loaded.append(change)
            continue
        if path and not module:
            try:
                found = locate.find_module(None, path)
            except LivefixError:
                found = None
            if found is not None:
                result.loaded.append({**change, "module": found.__name__})
                continue
            module = module_on_path(path)
        if not keep_for_import or not module or not importable(module):
            result.loaded.append(change)  # the engine says what is wrong (notFound, with its hint)
            continue
        result.later.append({**_fact(change), "module": module})
    return result


def module_on_path(path: str) -> str | None:
    """The module name `path` would be imported under from this process's `sys.path`."""
    real = os.path.realpath(path)
    if not real.endswith(".py"):
        return None
    for entry in sys.path:
        root = os.path.realpath(entry or os.getcwd())
        if not real.startswith(root.rstrip(os.sep) + os.sep):
            continue
        parts = os.path.relpath(real, root)[: -len(".py")].split(os.sep)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts and all(part.isidentifier() for part in parts):
            return ".".join(parts)
    return None


def _fact(change: dict[str, Any]) -> dict[str, Any]:
    fact = {key: change[key] for key in ("module", "qualname", "source") if change.get(key) is not None}
    return fact
