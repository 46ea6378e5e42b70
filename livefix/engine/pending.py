"""Changes to modules this process has not imported yet, applied the moment each is imported.

A fleet's change is a fact about a module (`shop.pricing.total` is fixed), not an event a
worker must witness: a worker that has not imported `shop.pricing` yet (a pre-fork worker
before its app loaded, a worker respawned after the apply) accepts the change as pending,
and applies it when the import completes, before the importer gets the module back. Code
the module runs at import time itself (module-level calls) runs the file's version.

A pending change that fails at import (the worker's file differs, a syntax error) never
breaks the import: the outcome says why, and `pending()`/the outcomes list report it by name.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import threading
import time
import types
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from livefix.engine import file_facts
from livefix.errors import LivefixError

if TYPE_CHECKING:
    from livefix.engine.core import Engine

Outcome = dict[str, Any]
BUSY_WAIT_SECONDS = 30.0  # an import waits this long for another livefix operation to finish


@dataclass
class PendingChange:
    """Changes to one module, waiting for its import."""

    module: str
    changes: list[dict[str, Any]]
    label: str  # what the change is, for people: "fleet generation 3"
    migrate: Any = None
    verify: str | None = None
    since: float = field(default_factory=time.time)
    on_done: Callable[[Outcome], None] | None = None
    after: int = 0  # the engine generation it was kept at: a rollback to or below it withdraws it
    fleet_generation: int | None = None  # the fleet generation it belongs to, if a fleet sent it

    def to_wire(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "qualnames": [c.get("qualname") or "<module>" for c in self.changes],
            "label": self.label,
            "since": self.since,
            **({"fleetGeneration": self.fleet_generation} if self.fleet_generation is not None else {}),
        }


class PendingChanges:
    """One per engine: what waits for which import, and what happened at import."""

    def __init__(self, engine: "Engine") -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._waiting: dict[str, list[PendingChange]] = {}
        self.outcomes: list[Outcome] = []  # newest last, bounded

    def defer(
        self,
        changes: list[dict[str, Any]],
        label: str,
        migrate: Any = None,
        verify: str | None = None,
        on_done: Callable[[Outcome], None] | None = None,
        fleet_generation: int | None = None,
    ) -> list[str]:
        """Keep `changes` (each naming a module not imported yet) until their modules are
        imported; the modules. Refused, keeping nothing, when a change names a loaded module,
        a module this process cannot find, or a source that does not parse."""
        by_module = self.check(changes)
        with self._lock:
            for name, module_changes in by_module.items():
                self._waiting.setdefault(name, []).append(
                    PendingChange(name, module_changes, label, migrate, verify, on_done=on_done,
                                  after=self._engine.generation, fleet_generation=fleet_generation)
                )
        return sorted(by_module)

    def withdraw(self, to: int) -> list[dict[str, Any]]:
        """A rollback to engine generation `to`: the changes kept on top of it are undone too
        (they never ran); what was withdrawn."""
        withdrawn = []
        with self._lock:
            for name in list(self._waiting):
                keep = [entry for entry in self._waiting[name] if entry.after < to]
                withdrawn += [entry.to_wire() for entry in self._waiting[name] if entry.after >= to]
                if keep:
                    self._waiting[name] = keep
                else:
                    del self._waiting[name]
        return withdrawn

    def withdraw_fleet(self, to: int) -> list[dict[str, Any]]:
        """A fleet rollback to fleet generation `to`: the changes kept for later fleet
        generations are withdrawn (they never ran). Needed apart from `withdraw`: a worker
        whose fleet changes all wait for an import has no engine generation to roll back."""
        withdrawn = []
        with self._lock:
            for name in list(self._waiting):
                later = [e for e in self._waiting[name] if e.fleet_generation is not None and e.fleet_generation > to]
                if not later:
                    continue
                withdrawn += [entry.to_wire() for entry in later]
                keep = [e for e in self._waiting[name] if e not in later]
                if keep:
                    self._waiting[name] = keep
                else:
                    del self._waiting[name]
        return withdrawn

    def check(self, changes: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        """What `defer` would keep, per module (raises what it would refuse); keeps nothing."""
        by_module: dict[str, list[dict[str, Any]]] = {}
        for change in changes:
            name = change.get("module")
            if not isinstance(name, str) or not name:
                raise LivefixError("invalid", "a change kept until its module's import must name the module")
            if name in sys.modules and not importing(name):
                raise LivefixError("invalid", f"module {name} is already imported: apply the change instead",
                                   module=name, reason="alreadyImported")
            if not importable(name):
                raise LivefixError("notFound", f"module {name!r} cannot be imported in this process", module=name)
            try:
                ast.parse(change.get("source", ""))
            except SyntaxError as error:
                raise LivefixError("syntax", f"the change to {name} does not parse: {error.msg}", module=name,
                                   line=error.lineno) from None
            by_module.setdefault(name, []).append(change)
        return by_module

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [entry.to_wire() for entries in self._waiting.values() for entry in entries]

    def imported(self, module: types.ModuleType) -> None:
        """Called by the import hook once `module` has executed: apply what waits for it."""
        if not self._waiting:  # the common case: one dict check per import
            return
        with self._lock:
            entries = self._waiting.pop(module.__name__, [])
        for entry in entries:
            self._record(entry, self._apply(entry, module))

    def _apply(self, entry: PendingChange, module: types.ModuleType | None = None) -> Outcome:
        verdict = superseded_by_file(entry.changes, module)
        if verdict is not None:
            return {**verdict, "module": entry.module, "label": entry.label}
        deadline = time.monotonic() + BUSY_WAIT_SECONDS
        pause = threading.Event()
        while True:
            try:
                result = self._engine.apply(entry.changes, verify=entry.verify, migrate=entry.migrate)
            except LivefixError as error:
                if error.kind == "busy" and time.monotonic() < deadline:
                    pause.wait(0.02)  # another livefix operation holds the engine: retry shortly
                    continue
                return {"status": "failed", "module": entry.module, "label": entry.label, "error": error.to_dict()}
            except Exception as error:  # never break the import because of livefix
                return {"status": "failed", "module": entry.module, "label": entry.label,
                        "error": {"kind": "internal", "message": f"{type(error).__name__}: {error}"}}
            return {"status": "applied", "module": entry.module, "label": entry.label, "generation": result.generation,
                    "report": result.report.splitlines()[-1] if result.report else ""}

    def _record(self, entry: PendingChange, outcome: Outcome) -> None:
        outcome["time"] = time.time()
        with self._lock:
            self.outcomes.append(outcome)
            del self.outcomes[:-100]
        if entry.on_done is not None:
            try:
                entry.on_done(outcome)
            except Exception:  # the listener's failure is its own
                pass


def superseded_by_file(changes: list[dict[str, Any]], module: types.ModuleType | None) -> dict[str, str] | None:
    """Why changes recorded against another version of `module`'s file are not applied to it
    (None when they are): a fleet's change carries `fileHash`, the digest of the code of the
    file it was made against. After a deploy (or an edit of code) the file differs, and
    replaying an old fix over new code would run the old fix's idea of that code (found:
    every request failing on a name the deploy had renamed). `status` is `inFile` when the
    file already says what the changes say (persisted, then deployed), else `superseded`."""
    if module is None:
        return None
    recorded = {c.get("fileHash") for c in changes if c.get("fileHash")}
    if not recorded:
        return None
    path = getattr(module, "__file__", None)
    now = file_facts.code_digest(path)
    if now is None or now in recorded:
        return None
    return file_verdict(path, changes)


def file_verdict(path: str | None, changes: list[dict[str, Any]]) -> dict[str, str]:
    """The outcome for changes whose file's code differs from the code they were made against."""
    if file_facts.says_already(path, changes):
        return {"status": "inFile", "reason": f"{path} already has this change (persisted or deployed)"}
    return {"status": "superseded",
            "reason": f"{path} changed since this change was made against it (a deploy or an edit of its code): this "
                      "process runs the file, not the change"}


def importing(name: str) -> bool:
    """Is `name` in `sys.modules` but still executing its import (its code not all run yet)?
    The import hook applies kept changes once it completes."""
    spec = getattr(sys.modules.get(name), "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


def importable(name: str) -> bool:
    """Can this process import `name`? Checked without importing anything: a dotted name
    whose parent package is not imported yet is taken on trust (finding it would run the
    package's `__init__`)."""
    parent = name.rpartition(".")[0]
    if parent and parent not in sys.modules:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
