"""Reload the modules whose files were saved, as one generation, and say what happened in one
line per module: what watch mode prints to stderr and the notebook prints before a cell.

Several files saved together are one generation (all or nothing). When one of them cannot be
reloaded (a syntax error, a change CPython cannot make in place) its error is reported with
file:line and the others are reloaded without it: the program keeps running the code that
file had, and the next save of it is tried again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from livefix.engine import Engine
from livefix.engine.sources import module_file, read_source
from livefix.errors import LivefixError
from livefix.engine.script_guard import HELD_WARNING

HELD_PREFIX = HELD_WARNING.split("{", 1)[0]

Approval = Literal["never", "risky"]


@dataclass
class Outcome:
    """What one reload did: lines for a person, and the generation it made (None: none)."""

    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    generation: int | None = None


class Reloader:
    """Reloads saved modules into one engine, reporting each in a line."""

    def __init__(
        self,
        engine: Engine,
        verify: Any = None,
        approval: Approval = "never",
        approve_hint: Callable[[list[str], list[str]], str] | None = None,
        display: Callable[[str], str] | None = None,
    ) -> None:
        self.engine = engine
        self.verify = verify
        self.approval = approval
        self.approve_hint = approve_hint  # how to apply a change held for approval, given its modules
        self.display = display or _relative

    def reload(self, names: list[str]) -> Outcome:
        outcome = Outcome()
        pending = list(dict.fromkeys(names))
        while pending:
            try:
                plan = self.engine.prepare_reload(modules=pending)
            except LivefixError as error:
                failing = error.details.get("module")
                outcome.errors.append(self.describe_error(error, failing))
                if failing in pending and len(pending) > 1:
                    pending.remove(failing)  # the others are still reloaded, without it
                    continue
                return outcome
            risks = plan.risks()
            gaps = [gap.qualname for gap in plan.unmigrated_gaps()]
            if self.approval == "risky" and risks:
                files = ", ".join(self.display(p.path) for p in plan.module_plans)
                outcome.errors.append(
                    f"livefix: {files}: not applied, it needs approval: {'; '.join(risks)}"
                    + (f" ({self.approve_hint([p.module.__name__ for p in plan.module_plans], gaps)})"
                       if self.approve_hint else "")
                )
                return outcome
            try:
                result = self.engine.commit(plan, verify=self.verify)
            except LivefixError as error:
                where = error.details.get("module") or (plan.module_plans[0].module.__name__ if len(plan.module_plans) == 1 else None)
                outcome.errors.append(self.describe_error(error, where))
                return outcome
            outcome.generation = result.generation if result.edits or plan.mutations else None
            # The engine holds back the running script's changed top-level code (script_guard):
            # said on the script's own line rather than as a warning of its own.
            held = [w for w in result.warnings if w.startswith(HELD_PREFIX)]
            for module_plan in plan.module_plans:
                script = module_plan.module.__name__ == "__main__"
                outcome.lines.append(self._line(module_plan, result.generation, held if script else []))
            for thread in plan.impact["threads"] if result.edits else ():
                outcome.lines.append(f"livefix:   thread {thread['name']} is still running the old "
                                     f"{', '.join(thread['qualnames'])}; new calls use the new code")
            outcome.lines.extend(
                f"livefix:   {gap.describe()} (to set it on them: livefix reload {os.getpid()} {gap.module} "
                f"--migrate '{gap.qualname}={{\"ATTRIBUTE\": VALUE}}', after saving the file back)"
                for gap in plan.unmigrated_gaps())
            outcome.lines.extend(f"livefix:   {warning}" for warning in result.warnings if warning not in held)
            return outcome
        return outcome

    def _line(self, module_plan: Any, generation: int, held: list[str]) -> str:
        by_kind: dict[str, list[str]] = {}
        for edit in module_plan.edits:
            by_kind.setdefault(edit.kind, []).append(edit.qualname)
        parts = [f"{_names(names)} {kind}" for kind, names in by_kind.items()]
        if module_plan.shifted:
            parts.append(f"{module_plan.shifted} moved")
        parts.extend(held)
        where = self.display(module_plan.path)
        if not module_plan.edits and not module_plan.shifted:
            return f"livefix: {where}: nothing to change (no definition differs)" + (f"; {parts[-1]}" if held else "")
        return f"livefix: {where}: {', '.join(parts)} (gen {generation})"

    def describe_error(self, error: LivefixError, module: str | None) -> str:
        path = error.details.get("path")
        line = error.details.get("line")
        if not path and module:
            import sys

            loaded = sys.modules.get(module)
            path = module_file(loaded) if loaded is not None else None
        where = self.display(path) if path else (module or "reload")
        if line:
            where += f":{line}"
        kind = {"syntax": "syntax error", "verifyFailed": "verify failed"}.get(error.kind, error.kind)
        message = error.message
        if path and message.startswith(str(path)):
            message = message[len(str(path)):].lstrip(":0123456789 ")
        return f"livefix: {where}: {kind}: {message} (still running the code it had)" if error.kind != "verifyFailed" \
            else f"livefix: {where}: {kind}: {message}"


def _names(names: list[str]) -> str:
    if len(names) <= 3:
        return ", ".join(names)
    return f"{', '.join(names[:2])} and {len(names) - 2} more"


def _relative(path: str) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return relative if not relative.startswith("..") else path


def file_differs(engine: Engine, name: str) -> bool:
    """Does the module's file already differ from the text it runs (saved after its import,
    before a watcher looked at it)? False when livefix cannot tell."""
    import sys

    module = sys.modules.get(name)
    path = module_file(module) if module is not None else None
    running = engine.sources.snapshot(name)
    if path is None or running is None:
        return False
    try:
        return read_source(path) != running
    except (OSError, UnicodeDecodeError, SyntaxError):
        return False
