"""What a change will do (Plan) and what it did (ChangeResult), in the words a person needs."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from livefix.engine import atomic
from livefix.engine.instances import ClassGap, Migrator
from livefix.errors import LivefixError
from livefix.protocol import as_change_args
from livefix.engine.planner import Edit, ModulePlan


@dataclass
class Change:
    """One requested change: a definition (`qualname` + its source) or a whole module (`source` only)."""

    source: str
    module: str | None = None
    path: str | None = None
    qualname: str | None = None
    line: int | None = None

    @classmethod
    def coerce(cls, raw: Any) -> "Change":
        if isinstance(raw, Change):
            as_change_args([raw.to_wire()])  # a Change built by hand gets the wire's checks too
            change = raw
        else:
            (checked,) = as_change_args([raw])
            change = cls(
                source=checked["source"],
                module=checked.get("module"),
                path=checked.get("path"),
                qualname=checked.get("qualname"),  # checked: absent (the whole module) or a name
                line=checked.get("line"),
            )
        change.check_target()
        return change

    def check_target(self) -> None:
        """A change naming a loaded module and a file of this machine must name one thing:
        refused (`invalid`) when the module runs another file, rather than guessing which.

        Either alone decides: a module name that is not loaded falls back to the path (an
        editor's guess at the name of a script running as `__main__`), and a path this
        machine lacks (an editor's own, on the far side of a path mapping) leaves the name."""
        if not self.module or not self.path:
            return
        module = sys.modules.get(self.module)
        if module is None or not os.path.exists(self.path):
            return
        loaded_from = getattr(module, "__file__", None)
        if loaded_from and os.path.realpath(loaded_from) == os.path.realpath(self.path):
            return
        raise LivefixError(
            "invalid",
            f"module {self.module} runs {loaded_from or 'no file'}, not {self.path}: the change's `module` and "
            "`path` disagree (send the module's own file, or only one of them)",
            module=self.module, path=self.path, moduleFile=loaded_from,
        )

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"source": self.source}
        for key in ("module", "path", "qualname", "line"):
            if getattr(self, key) is not None:
                wire[key] = getattr(self, key)
        return wire


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


@dataclass
class Plan:
    """A checked, compiled change that has not touched the process yet."""

    action: str
    changes: list[dict[str, Any]]
    module_plans: list[ModulePlan]
    impact: dict[str, Any]
    state_version: int
    generation: int
    warnings: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    # Live instances: attributes the new code needs that they lack, and the migrations given.
    gaps: list[ClassGap] = field(default_factory=list)
    migrations: dict[tuple[str, str], Migrator] = field(default_factory=dict)
    # Live evidence: the canary's terms (None: watched for the default window, not judged),
    # and the old code objects counted since prepare.
    canary: Any = None
    watched: list[Any] = field(default_factory=list)
    # The modules whose new text is their file's (a reload from disk): what the generation
    # runs there was in the file, so it is never "unpersisted" (see engine/unpersisted.py).
    from_file: frozenset[str] = frozenset()

    def unmigrated_gaps(self) -> list[ClassGap]:
        return [gap for gap in self.gaps if (gap.module, gap.qualname) not in self.migrations]

    @property
    def edits(self) -> list[Edit]:
        return [edit for plan in self.module_plans for edit in plan.edits]

    @property
    def mutations(self) -> list[atomic.Mutation]:
        return [m for plan in self.module_plans for m in plan.mutations]

    @property
    def empty(self) -> bool:
        return not self.edits and not self.mutations

    def risks(self) -> list[str]:
        """Why a careful policy asks before committing this ([] = nothing risky)."""
        reasons = []
        threads = self.impact["threads"]
        if threads:
            names = ", ".join(f"{t['name']} ({', '.join(t['qualnames'])})" for t in threads)
            reasons.append(f"{_plural(len(threads), 'thread')} executing code this change replaces: {names}")
        if self.impact["signatureChanges"]:
            reasons.append("it changes the signature of " + ", ".join(self.impact["signatureChanges"]))
        if self.impact["removals"]:
            reasons.append("it removes " + ", ".join(self.impact["removals"]))
        reasons.extend(gap.describe() for gap in self.unmigrated_gaps())
        whole = self.whole_modules()
        if whole:
            # One source replaces everything the module defines: what it leaves out goes.
            reasons.append(f"it replaces the whole of {', '.join(whole)} with the source sent")
        return reasons

    def whole_modules(self) -> list[str]:
        """What an apply replaces whole (changes without a qualname); a reload is not such an apply."""
        if self.action != "apply":
            return []
        named = [str(c.get("module") or c.get("path")) for c in self.changes if c.get("qualname") is None]
        return sorted(set(named))

    def planned(self) -> list[dict[str, Any]]:
        return [edit.to_wire() for edit in self.edits]

    @property
    def shifted(self) -> int:
        """How many functions only move to other lines."""
        return sum(plan.shifted for plan in self.module_plans)

    def targets(self) -> str:
        names = [f"{e.module}.{e.qualname}" for e in self.edits]
        if not names and self.mutations:
            modules = ", ".join(plan.module.__name__ for plan in self.module_plans if plan.mutations)
            return f"{modules}: its code moves to the file's lines" if modules else "nothing"
        if not names:
            return "nothing (the running code already matches)"
        return ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")

    def report_before(self) -> str:
        verb = {"apply": "Applying fix to", "reload": "Reloading", "rollback": "Rolling back"}.get(self.action, "Changing")
        lines = [f"{verb} {self.targets()}"]
        threads = self.impact["threads"]
        if threads:
            lines.append(
                f"{_plural(len(threads), 'thread')} {'is' if len(threads) == 1 else 'are'} executing the old version "
                "and will finish on it: " + ", ".join(f"{t['name']} in {', '.join(t['qualnames'])}" for t in threads)
            )
        if self.edits:
            lines.append("new calls use the new code")
        for change in self.impact["signatureChanges"]:
            lines.append(f"signature changed: {change}")
        lines.extend(gap.describe() for gap in self.unmigrated_gaps())
        for migrator in self.migrations.values():
            lines.append(f"a migration runs on every live {migrator.qualname} instance (and its subclasses')")
        lines.extend(self.warnings)
        return "\n".join(lines)

    def dry_run_body(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "applied": self.planned(),
            "impact": self.impact,
            "report": "Dry run (nothing changed):\n" + self.report_before(),
            "dryRun": True,
            "warnings": list(self.warnings),
            "instances": [gap.to_wire() for gap in self.gaps],
        }


@dataclass
class ChangeResult:
    """What a committed apply, reload or rollback did."""

    action: str
    generation: int
    edits: list[Edit]
    impact: dict[str, Any]
    report: str
    warnings: list[str]
    verify: dict[str, Any] | None = None
    dry_run: bool = False
    sources: list[dict[str, Any]] = field(default_factory=list)
    migrated: list[dict[str, Any]] = field(default_factory=list)  # live instances migrated, per class
    evidence: dict[str, Any] | None = None  # the new code is being watched: until when, the canary

    @property
    def applied(self) -> list[dict[str, Any]]:
        return [edit.to_wire() for edit in self.edits]

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "generation": self.generation,
            "applied": self.applied,
            "impact": self.impact,
            "report": self.report,
            "dryRun": self.dry_run,
            "warnings": list(self.warnings),
            "action": self.action,
            "sources": self.sources,
        }
        if self.verify is not None:
            body["verify"] = self.verify
        if self.migrated:
            body["migrated"] = self.migrated
        if self.evidence is not None:
            body["evidence"] = self.evidence
        return body

    def __repr__(self) -> str:
        return f"<ChangeResult generation={self.generation} {self.report.splitlines()[-1] if self.report else ''}>"


def summary(action: str, generation: int, edits: list[Edit], verify: dict[str, Any] | None, moved: int = 0) -> str:
    counts = {kind: sum(1 for e in edits if e.kind == kind) for kind in ("replaced", "added", "removed")}
    verb = {"apply": "Applied", "reload": "Reloaded", "rollback": "Rolled back to"}.get(action, "Applied")
    text = f"{verb} generation {generation}: {counts['replaced']} replaced, {counts['added']} added, {counts['removed']} removed"
    if moved:
        text += f", {moved} moved to the file's lines" if action == "reload" else f", {moved} moved to follow it"
    if verify is not None:
        text += "; verify passed" if verify.get("passed") else "; verify failed"
    return text
