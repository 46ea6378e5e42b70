"""A fleet's change as a fact about a module, not a replay of a file path.

Every change of a fleet apply is resolved, in each worker, to the module it changes
(`module` named, or found from `path`: a loaded module's file, else the module that file is
on `sys.path`), so that the journal records `shop.pricing`/`total` rather than a path only
some machines have, and so that a worker that has not imported the module yet can keep the
change until it does (`engine.pending`). Standard library only.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from livefix.engine import locate
from livefix.engine.pending import importable, importing
from livefix.engine import file_facts
from livefix.engine.pending import file_verdict
from livefix.errors import LivefixError


@dataclass
class Split:
    """The changes for modules this process runs, and those for modules it has not imported."""

    loaded: list[dict[str, Any]] = field(default_factory=list)
    later: list[dict[str, Any]] = field(default_factory=list)
    # The paths of changes sent with a file only, kept for the import of the module that file
    # would be: a fleet refuses them when no worker runs that module (a fix file like fix.py
    # beside the app would otherwise wait for an import of `fix` that never comes).
    later_from_path: list[str] = field(default_factory=list)

    @property
    def facts(self) -> list[dict[str, Any]]:
        """Every change as module + qualname + source, and the digest of the module's file it
        was made against (`fileHash`, when this process can read that file): what the journal
        keeps. A worker replaying it later checks the digest: after a deploy the file differs
        and the old fix is not replayed over the new code."""
        facts = []
        for change in (*self.loaded, *self.later):
            fact = _fact(change)
            digest = file_facts.code_digest(module_path(fact["module"])) if fact.get("module") else None
            if digest is not None:
                fact["fileHash"] = digest
            facts.append(fact)
        return facts

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
        if path and not change.get("module"):
            result.later_from_path.append(str(path))
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


def module_path(name: str) -> str | None:
    """The file `name` runs from, or would be imported from; None when that cannot be told
    without importing something (a package not imported yet: its `__init__` would run)."""
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__file__", None)
    parent = name.rpartition(".")[0]
    if parent and parent not in sys.modules:
        return None
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None and spec.has_location else None


def superseded(changes: list[dict[str, Any]]) -> dict[str, str] | None:
    """Why a journal entry is not replayed here (None when it is): a module it changes comes
    from a file whose code differs from the code the change was made against (a deploy, an
    edit): `{"status": "inFile" | "superseded", "reason"}`. Modules not imported yet whose file
    cannot be found without importing a package are checked at their import (`engine.pending`)."""
    by_module: dict[str, list[dict[str, Any]]] = {}
    for change in changes:
        if change.get("module") and change.get("fileHash"):
            by_module.setdefault(change["module"], []).append(change)
    verdicts = []
    for name, module_changes in by_module.items():
        path = module_path(name)
        now = file_facts.code_digest(path)
        if now is not None and now not in {c["fileHash"] for c in module_changes}:
            verdicts.append(file_verdict(path, module_changes))
    if not verdicts:
        return None
    # One module whose file moved on is enough not to replay the entry: it is one change.
    worst = next((v for v in verdicts if v["status"] == "superseded"), verdicts[0])
    return {"status": worst["status"], "reason": "; ".join(v["reason"] for v in verdicts)}


def _fact(change: dict[str, Any]) -> dict[str, Any]:
    fact = {key: change[key] for key in ("module", "qualname", "source", "fileHash") if change.get(key) is not None}
    return fact
