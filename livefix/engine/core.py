"""The Engine: prepare a generation, commit it atomically, verify it, keep the history, roll back.

One Engine per process (`default_engine()`); it owns the running texts of modules
(`SourceStore`) and the generations. Preparing touches nothing; committing runs every
mutation of the generation at once (see `atomic`); a failed commit or verify restores
everything. Operations on the process are serialised: a second one while one is in
progress is refused with `busy` rather than queued behind an unknown amount of work.

A module the program re-imports itself (`importlib.reload(m)`, or imported anew) runs its
file again, outside livefix: new function and class objects, made from the file. The
generations that changed it stay active, since the old objects (`from m import f` copies,
callbacks, instances of the old classes) still run them, and record that `m` was re-imported
since (`Generation.reimported`, `history()`). Their text patch of `m` is dropped: it was
taken from a text that no longer runs, and the running text is now the file's. Rolling one
back restores what it swapped in the old objects and leaves the module running its file:
the names the re-import bound in the module's namespace stay as it bound them.
"""

from __future__ import annotations

import ast
import os
import sys
import textwrap
import threading
import time
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from livefix.engine import atomic, codeutil, frames, instances, locate, pending, script_guard, status, watches
from livefix.engine.plan import Change, ChangeResult, Plan, summary
from livefix.engine import planner as planner_module
from livefix.engine.planner import Edit, ModulePlan, ModulePlanner, Placement
from livefix.engine.sources import ModuleSource, SourceStore, module_file, read_source, replace
from livefix.engine.statements import mangle, pair_statements
from livefix.engine.textdiff import diff_texts, find_hunks
from livefix.engine.unpersisted import Unpersisted, UnpersistedFinder
from livefix.errors import LivefixError

ThreadIdMap = Callable[[int], int]
DEFAULT_HISTORY_LIMIT = 100
REIMPORT_WAIT_SECONDS = 30.0  # a re-import waits this long for a livefix operation in progress
_MISSING = object()


@dataclass
class TextChange:
    """How a generation changed one module's running text, kept as a patch (memory in
    proportion to the change, not to the module): pieces of the text after it, each with
    what stood there before, by offset in the text after.

    "The text after it" is the module's running text for as long as the generation is the
    newest active one that changed the module; a text adopted without a generation (a
    comment-only reload) rebases the patch onto itself (`rebased`); a re-import of the
    module by the program drops the patch (`Engine._reimporting`)."""

    before: ModuleSource  # its `text` dropped (None): the patch recreates it
    pieces: list[tuple[int, str, str]]  # (offset in the text after, old piece, new piece)

    @classmethod
    def between(cls, before: ModuleSource, after_text: str | None) -> "TextChange":
        old = before.text
        if old is None or after_text is None:
            return cls(before, [])  # nothing to patch: kept whole (rare: no text known)
        pieces = [(n_start, old[o_start:o_end], after_text[n_start:n_end])
                  for o_start, o_end, n_start, n_end in find_hunks(old, after_text)]
        return cls(replace(before, text=None), pieces)

    def text_before(self, after_text: str | None) -> str | None:
        if after_text is None or (not self.pieces and self.before.text is not None):
            return self.before.text
        parts: list[str] = []
        position = 0
        for offset, old_piece, new_piece in self.pieces:
            parts.append(after_text[position:offset])
            parts.append(old_piece)
            position = offset + len(new_piece)
        parts.append(after_text[position:])
        return "".join(parts)

    def rebased(self, after_text: str | None, adopted_text: str | None) -> "TextChange":
        """The same change, from `adopted_text` (which replaced `after_text` as the running
        text without a generation) to the text before it: the offsets of the pieces hold
        only in the text they were taken from, and the whole texts are not kept."""
        return TextChange.between(replace(self.before, text=self.text_before(after_text)), adopted_text)


@dataclass
class Generation:
    number: int
    time: float
    action: str
    edits: list[Edit]
    undo: list["atomic.Mutation | atomic.Shift"]  # what undoes it, in the order it was applied
    texts: dict[str, TextChange]  # module -> how its running text changed
    new_codes: dict[types.CodeType, str]
    verify: str | None = None
    status: str = "active"
    rolled_back_at: float | None = None
    from_file: frozenset[str] = frozenset()  # modules whose new text was read from their file
    # Modules the program re-imported while the generation was active (module -> when): they
    # run their files' code, not this generation's; only objects held from before still do.
    reimported: dict[str, float] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "generation": self.number,
            "time": self.time,
            "action": self.action,
            "changes": [edit.to_wire() for edit in self.edits],
            "status": self.status,
        }
        if self.verify:
            entry["verify"] = self.verify
        if self.rolled_back_at is not None:
            entry["rolledBackAt"] = self.rolled_back_at
        if self.reimported:
            entry["reimported"] = sorted(self.reimported)
        return entry


class Engine:
    """livefix inside one process."""

    def __init__(self) -> None:
        if not atomic.gil_is_enabled():
            raise RuntimeError("livefix needs the GIL for atomic swaps; free-threaded builds are not supported")
        self.sources = SourceStore()
        self._lock = threading.Lock()
        self._owner: int | None = None  # the thread holding `_lock` for an operation
        self._generations: list[Generation] = []
        self._next_number = 1
        self._state_version = 0
        # Rolled-back generations kept in the history (the active chain is always kept: it
        # is what rollback(to=N) undoes); older ones are pruned and counted.
        self.history_limit = DEFAULT_HISTORY_LIMIT
        self._pruned_count = 0
        self._pruned_span: tuple[int, int] = (0, 0)  # the oldest and newest pruned generation
        # Live evidence: replaced functions counted before/after, canaries judged and rolled back.
        self.watches = watches.Watches(self._canary_rollback)
        # Changes to modules not imported yet (a fleet worker before its app loads), applied at import.
        self.pending = pending.PendingChanges(self)
        self.sources.import_listeners.append(self.pending.imported)
        self.sources.on_reimport = self._reimporting
        # What the active generations run that the files do not say (status, persist).
        self._unpersisted = UnpersistedFinder(self.sources, lambda: self._generations)
        self._touched: tuple[int, dict[tuple[str, str], int]] = (-1, {})

    # -- state -----------------------------------------------------------------------

    @property
    def generation(self) -> int:
        """The newest generation still active (0: the process runs what it loaded)."""
        for generation in reversed(self._generations):
            if generation.status == "active":
                return generation.number
        return 0

    def install(self) -> None:
        self.sources.install()

    # -- prepare -----------------------------------------------------------------------

    def prepare(
        self,
        changes: Any,
        *,
        action: str = "apply",
        thread_id: ThreadIdMap | None = None,
        migrate: Any = None,
        canary: Any = None,
    ) -> Plan:
        """Parse, compile and check every change, compute its impact; touch nothing.

        `migrate`: per class (qualname in a changed module, or `module:qualname`), defaults for
        attributes its live instances lack, or `def migrate(obj)` source / a callable."""
        canary_spec = watches.CanarySpec.coerce(canary)  # checked first: a bad canary changes nothing
        if isinstance(changes, (Change, dict)):
            changes = [changes]
        if not isinstance(changes, (list, tuple)) or not changes:
            raise LivefixError("invalid", "`changes` must be a non-empty list of changes")
        coerced = [Change.coerce(change) for change in changes]
        grouped: dict[str, tuple[types.ModuleType, list[Change]]] = {}
        for change in coerced:
            # A file can run as several modules (a script that is also imported as `app`):
            # a change named by its path reaches every one of them.
            for module in locate.find_modules(change.module, change.path):
                grouped.setdefault(module.__name__, (module, []))[1].append(change)
        version = self._state_version
        warnings: list[str] = []
        module_plans = []
        for module, module_changes in grouped.values():
            path = module_file(module)
            if path is None:
                raise LivefixError(
                    "unsupported",
                    f"module {module.__name__} was not loaded from Python source "
                    f"({getattr(module, '__file__', None) or 'built in'}): there is no Python code to replace",
                    module=module.__name__,
                )
            running = self.sources.get(module)
            old_text = running.text if running is not None else None
            working = old_text
            placements: dict[str, Placement] = {}
            file_text: list[str | None] = []  # read once, when a definition is looked up in it
            for change in module_changes:
                if change.qualname is None:
                    if not change.source.strip() and old_text and old_text.strip():
                        raise LivefixError(
                            "invalid", f"the new source of module {module.__name__} is empty", module=module.__name__
                        )
                    working = change.source
                    placements.clear()
                    continue
                if working is None:
                    working = self._disk_text(module, path)
                    old_text = working
                    warnings.append(
                        f"livefix had no record of the source {module.__name__} was loaded from; "
                        f"assumed it matches {path} apart from {change.qualname}"
                    )
                current = _check_qualname(change.qualname, module)
                _refuse_change_of_kind(module.__name__, change, current, path)
                # Where the running code starts is where the running text has it, unless a
                # change earlier in this request moved things or the text is not exact.
                running_line = None
                if working is old_text and (running is None or running.exact):
                    function = codeutil.unwrap_function(current, change.qualname.rsplit(".", 1)[-1])
                    if function is not None and function.__code__.co_filename == path:
                        running_line = function.__code__.co_firstlineno
                # Where the definition is in the file (the editor's `line`, or its text found
                # in the saved file): its new code runs there, and errors are named there.
                file_line = change.line or _line_in_file(path, change.source, file_text, running_line)
                try:
                    working, spliced = locate.splice(
                        working, change.qualname, change.source, path, file_line or running_line, running_line
                    )
                except LivefixError as error:
                    if error.kind != "syntax" or file_line:
                        raise
                    # The broken text is not in the file (not saved): name the error where the
                    # file has that definition, as the editor shows it.
                    where = _definition_line_in_file(path, change.qualname, file_text) or running_line
                    if not where:
                        raise
                    locate.check_definition_source(change.source, change.qualname, path, where)
                    raise
                placements.pop(change.qualname, None)
                if file_line and file_line != spliced[0]:
                    placements[change.qualname] = Placement(spliced[0], spliced[1], file_line - spliced[0])
            saved = _file_text(path, file_text) if placements else None
            if saved and working and _same_code(working, saved, path):
                # The saved file differs from what will run only in comments and blank lines
                # (notes added above the fix): run everything at the file's lines.
                working, placements = file_text[0], {}
            stale = running.stale if running is not None else frozenset()
            running_lines = running.running_lines if running is not None else {}
            plan = ModulePlanner(
                module, path, old_text, working or "", stale, execute=False,
                running_lines=running_lines, placements=placements,
            ).run()
            module_plans.append(plan)
            warnings.extend(plan.warnings)
            if running is not None and running.orphans and action == "reload":
                warnings.append(
                    f"{module.__name__}: {', '.join(running.orphans)} run{'s' if len(running.orphans) == 1 else ''} "
                    f"but {path} does not define {'it' if len(running.orphans) == 1 else 'them'} (livefix arrived after "
                    "the file was edited); left as running"
                )
        warnings.extend(self._reimport_warnings(module_plans))
        plan = self._make_plan(action, [c.to_wire() for c in coerced], module_plans, version, warnings, thread_id)
        self._plan_instances(plan, migrate)
        plan.canary = canary_spec
        self.watches.prepared(plan)
        return plan

    def _reimport_warnings(self, module_plans: list[ModulePlan]) -> list[str]:
        """A change reaches a re-imported module's objects only: copies of the objects an active
        generation changed before the re-import are others, and go on running that generation."""
        warnings = []
        edited = {(edit.module, edit.qualname) for plan in module_plans for edit in plan.edits}
        for generation in list(self._generations):
            if generation.status != "active":
                continue
            for module in sorted(generation.reimported):
                changed = {edit.qualname for edit in generation.edits if edit.module == module}
                names = sorted(qualname for qualname in changed if (module, qualname) in edited)
                if names:
                    warnings.append(
                        f"{module} was re-imported after generation {generation.number} changed {', '.join(names)}: "
                        f"this change reaches the re-imported {'ones' if len(names) > 1 else 'one'}; copies taken "
                        f"before the re-import (`from {module} import ...`, callbacks) are other objects, which run "
                        f"generation {generation.number} until it is rolled back"
                    )
        return warnings

    def _plan_instances(self, plan: Plan, migrate: Any) -> None:
        """Which live instances the new code will find lacking, and the migrations given."""
        plan.migrations = instances.coerce_migrations(migrate, [p.module for p in plan.module_plans])
        for module_plan in plan.module_plans:
            name = module_plan.module.__name__
            module_plan.migrated = frozenset(q for (m, q) in plan.migrations if m == name)
            changed = [e.qualname for e in module_plan.edits if e.kind != "removed" and e.note != "statement"]
            if changed:
                plan.gaps.extend(instances.find_gaps(module_plan.module, module_plan.old_text, module_plan.new_text, changed))

    def prepare_reload(
        self,
        modules: list[str] | None = None,
        package: str | None = None,
        sources: dict[str, str] | None = None,
        thread_id: ThreadIdMap | None = None,
        migrate: Any = None,
        canary: Any = None,
    ) -> Plan:
        """A generation bringing modules in line with their files (or `sources`), in dependency order."""
        watches.CanarySpec.coerce(canary)
        names = self._reload_targets(modules, package, sources)
        changes = []
        held: list[str] = []
        from_file: set[str] = set()
        for name in _dependency_order(names):
            module = sys.modules[name]
            path = module_file(module)
            if path is None:
                raise LivefixError("unsupported", f"module {name} was not loaded from Python source", module=name)
            if sources and name in sources:
                text = sources[name]
            else:
                text = self._disk_text(module, path)
                from_file.add(name)
            if name == "__main__":
                text = self._hold_script_code(module, path, text, held)
            changes.append({"module": name, "source": text})
        if not changes:
            if migrate:
                instances.coerce_migrations(migrate, [])  # names a class nothing changes: refused
            return self._make_plan("reload", [], [], self._state_version, [], thread_id)
        plan = self.prepare(changes, action="reload", thread_id=thread_id, migrate=migrate, canary=canary)
        plan.warnings.extend(held)
        plan.from_file = frozenset(from_file)
        return plan

    def _hold_script_code(self, module: types.ModuleType, path: str, text: str, held: list[str]) -> str:
        """The running script's text to reload: its changed top-level program code (a main
        block, a loop) stays as it runs, or it would start the program again (script_guard)."""
        running = self.sources.get(module)
        if running is None or running.text is None:
            return text
        guarded = script_guard.hold_top_level(running.text, text)
        if guarded.refused:
            raise LivefixError("unsupported", f"{path}: {guarded.refused}", module="__main__", path=path,
                               line=guarded.lines[0] if guarded.lines else None)
        if guarded.lines:
            held.append(script_guard.HELD_WARNING.format(lines=", ".join(map(str, guarded.lines))))
        return guarded.text

    def _reload_targets(self, modules: list[str] | None, package: str | None, sources: dict[str, str] | None) -> list[str]:
        if modules:
            for name in modules:
                if name not in sys.modules:
                    raise LivefixError("notFound", f"module {name!r} is not loaded in this process", module=name)
            return list(modules)
        if package:
            if package not in sys.modules:
                raise LivefixError("notFound", f"package {package!r} is not loaded in this process", module=package)
            return [
                name for name, module in list(sys.modules.items())
                if (name == package or name.startswith(package + ".")) and module is not None and module_file(module)
            ]
        if sources:
            return list(sources)
        return [entry["name"] for entry in self.modified_modules()]

    def _disk_text(self, module: types.ModuleType, path: str) -> str:
        try:
            return read_source(path)
        except (OSError, UnicodeDecodeError, SyntaxError) as error:
            raise LivefixError(
                "notFound", f"cannot read the file of {module.__name__} ({path}): {error}", module=module.__name__, path=path
            ) from None

    def _make_plan(
        self,
        action: str,
        changes: list[dict[str, Any]],
        module_plans: list[Any],
        version: int,
        warnings: list[str],
        thread_id: ThreadIdMap | None,
    ) -> Plan:
        edits = [edit for plan in module_plans for edit in plan.edits]
        codes = {code: f"{edit.module}.{edit.qualname}" for edit in edits for code in edit.old_codes}
        impact = {
            "threads": frames.threads_executing(codes, thread_id),
            "signatureChanges": [f"{e.module}.{e.qualname}" for e in edits if e.signature_changed],
            "removals": [f"{e.module}.{e.qualname}" for e in edits if e.kind == "removed"],
        }
        return Plan(
            action=action,
            changes=changes,
            module_plans=module_plans,
            impact=impact,
            state_version=version,
            generation=self.generation,
            warnings=warnings,
        )

    # -- commit ------------------------------------------------------------------------

    def commit(self, plan: Plan, verify: Any = None) -> ChangeResult:
        """Apply a prepared plan as one generation, atomically; verify; roll back on failure."""
        if plan.canary is not None and plan.canary.before > 0 and plan.watched:
            # The canary's "before" window: real traffic on the old code, counted since prepare.
            threading.Event().wait(max(plan.canary.before - (time.time() - plan.created), 0))
        if not self._acquire():
            raise LivefixError("busy", "another livefix operation is in progress in this process; try again")
        try:
            return self._commit_locked(plan, verify)
        finally:
            self._release()

    def _commit_locked(self, plan: Plan, verify: Any) -> ChangeResult:
        if plan.state_version != self._state_version:
            raise LivefixError(
                "busy",
                "the process changed since this change was prepared (another generation was applied or rolled back); "
                "prepare it again",
                reason="stale",
            )
        # Only now does the new code run (in scratch namespaces): decorators, defaults, class
        # bodies and changed module statements; a failure here still changes nothing.
        pending: dict[str, dict[str, Any]] = {}
        executed = []
        for module_plan in plan.module_plans:  # in dependency order: what a module imports first
            module_plan = module_plan.executing(pending)
            pending[module_plan.module.__name__] = module_plan.bindings
            executed.append(module_plan)
        plan.module_plans = executed
        for module_plan in plan.module_plans:
            plan.warnings.extend(w for w in module_plan.warnings if w not in plan.warnings)
        if not plan.mutations and not plan.migrations:
            # Nothing to change in the process (comments, blank lines, a branch that did not
            # run): what runs matches the new text as well, so the new text is what runs.
            for module_plan in plan.module_plans:
                before = self.sources.current(module_plan.module.__name__)
                if before is not None and not module_plan.edits and (
                    before.text != module_plan.new_text or before.cache_older
                ):
                    self._adopt(before, _after(before, module_plan))
            return ChangeResult(
                action=plan.action,
                generation=self.generation,
                edits=[],
                impact=plan.impact,
                report=f"Nothing to {plan.action}: the running code already matches",
                warnings=list(plan.warnings),
            )
        mutations = plan.mutations
        texts_before: dict[str, ModuleSource] = {}
        texts_after: dict[str, ModuleSource] = {}
        for p in plan.module_plans:
            name = p.module.__name__
            before = self.sources.current(name) or ModuleSource(name, p.path, None)
            texts_before[name] = before
            texts_after[name] = _after(before, p)
        migration = instances.InstanceMigration.for_plan(
            plan.migrations, [c for p in plan.module_plans for c in p.field_changes]
        )
        if migration is not None:
            migration.start()  # before the swap; a failure restored the instances and raised
            mutations = [*mutations, migration.mutation()]  # the catch-up runs last, in the window
        try:
            atomic.apply_all(mutations)
        except LivefixError:
            raise
        except Exception as error:
            raise LivefixError(
                "failed", f"applying the change failed ({type(error).__name__}: {error}); everything was restored"
            ) from None
        finally:
            if migration is not None:
                migration.end()
        self._set_texts(texts_after)
        for module_plan in plan.module_plans:
            planner_module.remember_removed(module_plan)
        number = self._next_number
        check = _describe_check(verify)
        outcome = None
        if verify is not None:
            try:
                outcome = self._verify(verify, plan)
            except BaseException:  # SystemExit, KeyboardInterrupt from the check: undo, then let it go on
                self._undo_failed(mutations, texts_before, texts_after)
                raise
            if not outcome["passed"]:
                self._undo_failed(mutations, texts_before, texts_after)
                raise LivefixError(
                    "verifyFailed",
                    f"verify {check} {'raised ' + outcome['error'] if 'error' in outcome else 'was false'}; "
                    f"the change was rolled back and the process runs generation {self.generation}",
                    verify=outcome,
                    applied=plan.planned(),
                )
        new_codes = _new_codes(mutations)
        now = time.time()
        reimported = _replaced_texts(self.sources, texts_after)  # by the verify: the module runs its file
        self._generations.append(
            Generation(
                number=number,
                time=now,
                action=plan.action,
                edits=plan.edits,
                undo=atomic.kept(mutations if migration is None else [*mutations[:-1], migration.kept()]),
                texts={name: TextChange.between(texts_before[name], texts_after[name].text)
                       for name in texts_before if name not in reimported},
                new_codes=new_codes,
                verify=check,
                from_file=plan.from_file,
                reimported=dict.fromkeys(sorted(reimported), now),
            )
        )
        self._prune()
        self._next_number += 1
        self._state_version += 1
        pairs = _replaced_pairs(mutations)
        self.watches.follow(pairs)
        evidence = self.watches.committed(plan, number, pairs)
        report = plan.report_before() + "\n" + summary(plan.action, number, plan.edits, outcome, plan.shifted)
        migrated = migration.summary() if migration is not None else []
        if plan.canary is not None and evidence is not None:
            report += (f"\ncanary: judging the new code for {plan.canary.window:g} s; it rolls back by itself "
                       "if worse (the verdict: evidence())")
        for entry in migrated:
            report += (
                f"\nmigrated {entry['instances']} live {entry['class']} instance{'s' if entry['instances'] != 1 else ''}"
                + (f" ({', '.join(entry['attributes'])})" if entry["attributes"] else "")
                + (" with the new fields' defaults" if entry["migration"] != "given" else "")
            )
        sources = [
            {
                "module": e.module,
                "path": texts_after[e.module].path,
                "qualname": e.qualname,
                "source": e.source if e.kind != "removed" else None,
                "generation": number,
            }
            for e in plan.edits
            if e.note != "statement"
        ]
        return ChangeResult(
            action=plan.action,
            generation=number,
            edits=plan.edits,
            impact=plan.impact,
            report=report,
            warnings=list(plan.warnings),
            verify=outcome,
            sources=sources,
            migrated=migrated,
            evidence=evidence,
        )

    def _verify(self, verify: Any, plan: Plan) -> dict[str, Any]:
        check = _describe_check(verify)
        try:
            if callable(verify):
                value = verify()
            elif isinstance(verify, str):
                first = plan.module_plans[0].module if plan.module_plans else sys.modules["__main__"]
                value = eval(compile(verify, "<livefix verify>", "eval", dont_inherit=True), first.__dict__)
            else:
                return {"check": check, "passed": False, "error": "verify must be an expression or a callable"}
            passed = bool(value)  # a __bool__ that raises is a failed check too
        except Exception as error:
            return {"check": check, "passed": False, "error": f"{type(error).__name__}: {error}"}
        return {"check": check, "passed": passed}

    def _undo_failed(
        self, mutations: list[Any], texts_before: dict[str, ModuleSource], texts_after: dict[str, ModuleSource]
    ) -> None:
        """Undo a commit whose verify failed. A module the verify re-imported keeps the text
        and the names the re-import gave it."""
        reimported = _replaced_texts(self.sources, texts_after)
        if reimported:
            ((mutations, _),) = _without_overridden([(mutations, reimported)])
        atomic.undo(mutations)
        self._set_texts({name: source for name, source in texts_before.items() if name not in reimported})

    def _acquire(self, timeout: float = 0.0) -> bool:
        """Take the operation lock (without waiting unless `timeout`), noting which thread holds it."""
        acquired = self._lock.acquire(timeout=timeout) if timeout > 0 else self._lock.acquire(blocking=False)
        if acquired:
            self._owner = threading.get_ident()
        return acquired

    def _release(self) -> None:
        self._owner = None
        self._lock.release()

    def _reimporting(self, module: types.ModuleType, record: Callable[[], None]) -> None:
        """The import hook: `module` is about to execute again (importlib.reload, or imported
        anew), and `record` makes its file's text the running text. Done between operations:
        a rollback must not splice a patch into the text while it changes."""
        if self._owner == threading.get_ident():
            # This thread's own operation is running it (a verify that reloads the module):
            # it holds the lock, and the commit checks the module's text after the verify.
            self._note_reimport(module.__name__, record)
            return
        # The import holds the module's import lock meanwhile: an operation that waits for
        # that lock (one importing the module) gets it after this gives up waiting.
        # Past that wait (an operation stuck, or waiting for this very import), it goes on
        # without the lock: never hold up the program's import for livefix.
        acquired = self._lock.acquire(timeout=REIMPORT_WAIT_SECONDS)
        try:
            self._note_reimport(module.__name__, record)
        finally:
            if acquired:
                self._lock.release()

    def _note_reimport(self, name: str, record: Callable[[], None]) -> None:
        now = time.time()
        try:
            for generation in self._generations:
                if generation.status == "active" and name in generation.texts:
                    # New dicts, not changed ones: status reads them without the lock.
                    generation.texts = {m: change for m, change in generation.texts.items() if m != name}
                    generation.reimported = {**generation.reimported, name: generation.reimported.get(name, now)}
        finally:
            record()
            # A change prepared against the module as it ran before is refused at commit.
            self._state_version += 1

    def _adopt(self, before: ModuleSource, after: ModuleSource) -> None:
        """`after` becomes the running text of its module without a generation. The newest
        active generation that changed the module's text keeps its patch from the text
        running now (rollback splices it into that text): rebased onto the adopted text, so
        that rolling it back still returns exactly the text before it."""
        for generation in reversed(self._generations):
            change = generation.texts.get(before.name) if generation.status == "active" else None
            if change is not None:
                generation.texts[before.name] = change.rebased(before.text, after.text)
                break
        self.sources.restore(after)

    def _set_texts(self, texts: dict[str, ModuleSource]) -> None:
        for source in texts.values():
            self.sources.restore(source)

    def _prune(self) -> None:
        """Keep the active chain and the newest `history_limit` rolled-back generations."""
        inactive = [g for g in self._generations if g.status != "active"]
        excess = len(inactive) - max(self.history_limit, 0)
        if excess <= 0:
            return
        dropped = inactive[:excess]
        numbers = [g.number for g in dropped]
        if self._pruned_count:
            numbers += list(self._pruned_span)
        self._pruned_count += len(dropped)
        self._pruned_span = (min(numbers), max(numbers))
        ids = {id(g) for g in dropped}
        self._generations = [g for g in self._generations if id(g) not in ids]
        self.watches.forget([g.number for g in dropped])

    # -- convenience: prepare + commit ---------------------------------------------------

    def apply(
        self, changes: Any, verify: Any = None, dry_run: bool = False, thread_id: ThreadIdMap | None = None,
        migrate: Any = None,
        canary: Any = None,
    ) -> ChangeResult:
        plan = self.prepare(changes, action="apply", thread_id=thread_id, migrate=migrate, canary=canary)
        return self._finish(plan, verify, dry_run)

    def reload_module(
        self, module: Any, source: str | None = None, verify: Any = None, dry_run: bool = False, migrate: Any = None,
        canary: Any = None,
    ) -> ChangeResult:
        by_path = isinstance(module, str) and module not in sys.modules and (os.sep in module or module.endswith(".py"))
        target = locate.find_module(None, module) if by_path else locate.find_module(module, None)
        name = target.__name__
        plan = self.prepare_reload(
            modules=[name], sources={name: source} if source is not None else None, migrate=migrate, canary=canary
        )
        return self._finish(plan, verify, dry_run)

    def reload_modules(
        self, modules: list[str] | None = None, package: str | None = None, verify: Any = None, dry_run: bool = False,
        migrate: Any = None,
        canary: Any = None,
    ) -> ChangeResult:
        plan = self.prepare_reload(modules=modules, package=package, migrate=migrate, canary=canary)
        return self._finish(plan, verify, dry_run)

    def _finish(self, plan: Plan, verify: Any, dry_run: bool) -> ChangeResult:
        if dry_run:
            body = plan.dry_run_body()
            return ChangeResult(
                action=plan.action, generation=body["generation"], edits=plan.edits, impact=plan.impact,
                report=body["report"], warnings=body["warnings"], dry_run=True,
            )
        return self.commit(plan, verify=verify)

    # -- rollback ----------------------------------------------------------------------

    def rollback(self, to: int | None = None, thread_id: ThreadIdMap | None = None) -> ChangeResult:
        if not self._acquire():
            raise LivefixError("busy", "another livefix operation is in progress in this process; try again")
        try:
            # Changes kept for a module's import on top of the generation returned to are
            # withdrawn too (they would otherwise land at the import after the rollback):
            # once the rollback is done, or when it had no generation to undo.
            try:
                result = self._rollback_locked(to, thread_id)
            except LivefixError as error:
                withdrawn = self.pending.withdraw(self.generation if to is None else to) \
                    if error.kind == "nothingToRollBack" else []
                if not withdrawn:
                    raise
                return self._withdrawn_result(withdrawn)
            withdrawn = self.pending.withdraw(result.generation)
            if withdrawn:
                result.report += "\n" + self._withdrawn_result(withdrawn).report
            return result
        finally:
            self._release()

    def _withdrawn_result(self, withdrawn: list[dict[str, Any]]) -> ChangeResult:
        modules = ", ".join(sorted({entry["module"] for entry in withdrawn}))
        return ChangeResult(
            action="rollback", generation=self.generation, edits=[],
            impact={"threads": [], "signatureChanges": [], "removals": []},
            report=f"Withdrew the change kept for the import of {modules} (it never ran)", warnings=[],
        )

    def _rollback_locked(self, to: int | None, thread_id: ThreadIdMap | None) -> ChangeResult:
        active = [g for g in self._generations if g.status == "active"]
        if to is not None and (to < 0 or to >= self._next_number):
            raise LivefixError(
                "notFound", f"there is no generation {to} (generations so far: 0..{self._next_number - 1})", to=to
            )
        targets = active[-1:] if to is None else [g for g in active if g.number > to]
        if not targets:
            raise LivefixError(
                "nothingToRollBack",
                "nothing to roll back: the process already runs "
                + ("the code it loaded" if self.generation == 0 else f"generation {self.generation}"),
                generation=self.generation,
            )
        codes: dict[types.CodeType, str] = {}
        for generation in targets:
            codes.update(generation.new_codes)
        impact = {
            "threads": frames.threads_executing(codes, thread_id),
            "signatureChanges": [],
            "removals": [f"{e.module}.{e.qualname}" for g in targets for e in g.edits if e.kind == "added"],
        }
        self.watches.rolled_back([g.number for g in targets])
        # A module re-imported since keeps what the re-import bound in its namespace.
        kept = _without_overridden([(generation.undo, set(generation.reimported)) for generation in targets])
        backward, redo = atomic.undo_steps([m for undo, _ in kept for m in undo])
        try:
            atomic.run_atomically(backward)
        except Exception as error:
            # put back the generations we were undoing, exactly as they were
            for step in redo:
                try:
                    step()
                except (AttributeError, KeyError, TypeError):
                    pass
            raise LivefixError("failed", f"rolling back failed ({type(error).__name__}: {error}); nothing changed") from None
        now = time.time()
        for generation in reversed(targets):
            for name, change in generation.texts.items():
                current = self.sources.current(name)
                text = change.text_before(current.text if current is not None else None)
                self.sources.restore(replace(change.before, text=text))
            generation.status = "rolledBack"
            generation.rolled_back_at = now
        self._state_version += 1
        self._prune()
        # One entry per definition, as the oldest undone generation found it (undoing several
        # generations of fixes to one function restores it once).
        by_name: dict[tuple[str, str], Edit] = {}
        for generation in targets:
            for e in generation.edits:
                by_name.setdefault((e.module, e.qualname), Edit(
                    e.module, e.qualname, {"added": "removed", "removed": "added"}.get(e.kind, "replaced"), note=e.note
                ))
        edits = list(by_name.values())
        sources = status.running_sources(edits, self.sources, self.generation)
        undone = _ranges([g.number for g in targets])
        lines = [f"Rolling back generation{'s' if len(targets) > 1 else ''} {undone}"]
        if impact["threads"]:
            lines.append(
                f"{len(impact['threads'])} thread(s) executing the rolled-back code will finish on it: "
                + ", ".join(f"{t['name']} in {', '.join(t['qualnames'])}" for t in impact["threads"])
            )
        lines.append(summary("rollback", self.generation, edits, None))
        notes = _reimported_notes(targets, [left for _, left in kept])
        return ChangeResult(
            action="rollback",
            generation=self.generation,
            edits=edits,
            impact=impact,
            report="\n".join(lines + notes),
            warnings=notes,
            sources=sources,
        )

    # -- queries -----------------------------------------------------------------------

    def history(self) -> dict[str, Any]:
        body: dict[str, Any] = {"generation": self.generation, "generations": [g.to_wire() for g in self._generations]}
        for entry in body["generations"]:
            evidence = self.watches.generation(entry["generation"])
            if evidence is not None:
                entry["evidence"] = evidence
        if self._pruned_count:
            first, last = self._pruned_span
            body["pruned"] = {
                "count": self._pruned_count,
                "first": first,
                "last": last,
                "limit": self.history_limit,
                "reason": f"{self._pruned_count} rolled-back generation{'s' if self._pruned_count != 1 else ''} "
                f"older than the newest {self.history_limit} were dropped from the history",
            }
        return body

    # -- live evidence -------------------------------------------------------------------

    def evidence(self, generation: int | None = None) -> dict[str, Any]:
        """Before/after figures of the functions generation N (default: the newest watched one)
        replaced, its watch window and its canary's verdict."""
        numbers = [g.number for g in self._generations if self.watches.generation(g.number) is not None]
        if generation is None:
            if not numbers:
                raise LivefixError(
                    "notFound",
                    "no fix has been watched in this process yet"
                    + (" (a fix is watched from its commit)" if self.watches.window > 0 else
                       ": a fix is watched when it has a canary (canary=) or with watch(), or for every fix after "
                       "install(evidence_window=SECONDS) (off by default before Python 3.12, where counting slows "
                       "every call in the process)"),
                )
            generation = numbers[-1]
        body = self.watches.generation(generation)
        if body is None:
            raise LivefixError(
                "notFound", f"generation {generation} has no evidence"
                + (f" (watched: {', '.join(map(str, numbers))})" if numbers else " (no fix has been watched yet)"),
                generation=generation,
            )
        return body

    def watch(self, target: Any) -> dict[str, Any]:
        """Count calls, errors and latency of a function ("module:qualname" or the function)
        until `unwatch`, following it across fixes."""
        label, function = _watch_target(target)
        self.watches.watch(label, function.__code__)
        return self.watched()

    def unwatch(self, target: Any = None) -> dict[str, Any]:
        """Stop counting; the figures counted until now are returned."""
        labels = list(self.watches.explicit()) if target is None else [_watch_target(target)[0]]
        counted = self.watched()["functions"]
        for label in labels:
            if not self.watches.unwatch(label):
                raise LivefixError("notFound", f"{label} is not watched", qualname=label)
        return {"functions": {label: counted.get(label, []) for label in labels}}

    def watched(self) -> dict[str, Any]:
        """What `watch` counts: per function, the figures of each version of its code that ran."""
        return {"functions": {label: versions for label, versions in self.watches.explicit().items()}}

    def _canary_rollback(self, number: int) -> ChangeResult:
        # The canary's own thread: wait for an operation in progress rather than give up.
        if not self._acquire(timeout=30):
            raise LivefixError("busy", "another livefix operation held the process for 30 s")
        try:
            if self.generation != number:
                newer = self.generation
                raise LivefixError(
                    "notLatest",
                    f"generation {newer} was applied after it; roll back to {number - 1} by hand to undo both"
                    if newer > number else f"generation {number} is no longer active",
                )
            return self._rollback_locked(None, None)
        finally:
            self._release()

    def capture_frames(
        self,
        thread_ids: list[int] | None = None,
        max_frames: int | None = None,
        include_locals: bool = False,
        thread_id: ThreadIdMap | None = None,
    ) -> dict[str, Any]:
        return frames.capture(thread_ids, max_frames, include_locals, thread_id)

    def modified_modules(self, modules: list[str] | None = None, include_libraries: bool = False) -> list[dict[str, Any]]:
        return status.modified_modules(self.sources, modules, include_libraries)

    def unpersisted(self, modules: list[str] | None = None) -> list[Unpersisted]:
        """The definitions active generations changed that their files do not say (the running
        sources included, for `livefix persist`): see engine/unpersisted.py."""
        return self._unpersisted.find(self._touched_definitions(), modules)

    def _touched_definitions(self) -> dict[tuple[str, str], int]:
        """(module, qualname) -> the newest active generation that changed it other than from
        its file; computed again only when a generation was applied or rolled back."""
        current = self._state_version  # read first: a commit meanwhile makes the result stale, not wrong
        version, touched = self._touched
        if version == current:
            return touched
        touched = {}
        for generation in list(self._generations):
            if generation.status != "active":
                continue
            for edit in generation.edits:
                if edit.note == "statement":
                    continue  # module-level statements: not a definition a file can be given
                key = (edit.module, edit.qualname)
                if edit.module in generation.from_file or edit.module in generation.reimported:
                    touched.pop(key, None)  # it now runs what the file said (or the module was re-imported)
                else:
                    touched[key] = generation.number
        self._touched = (current, touched)
        return touched


def _replaced_texts(store: SourceStore, texts: dict[str, ModuleSource]) -> set[str]:
    """The modules whose running text is no longer the one set (re-imported since)."""
    return {name for name, source in texts.items() if store.current(name) is not source}


def _without_overridden(
    batches: list[tuple[list[Any], set[str]]],
) -> list[tuple[list[Any], list[str]]]:
    """Undo records (per generation, oldest first, each with the modules re-imported since
    it) without the assignments to a re-imported module's namespace that its re-import
    overrode (importlib.reload runs the file in the same namespace: a name it bound again
    holds the file's object, which stays; a name it left holds what the generation put
    there, which is undone). Per batch: the records kept, and the names left ("m.name")."""
    namespaces: dict[int, str] = {}
    for _, names in batches:
        for name in names:
            module = sys.modules.get(name)
            if module is not None:
                namespaces[id(module.__dict__)] = name
    if not namespaces:
        return [(undo, []) for undo, _ in batches]
    holds: dict[tuple[int, str], Any] = {}  # what an entry holds once the newer records are undone
    result: list[tuple[list[Any], list[str]]] = []
    for undo, names in reversed(batches):  # newest first, as the undo runs
        kept: list[Any] = []
        left: list[str] = []
        for mutation in reversed(undo):
            assignment = _namespace_assignment(mutation)
            if assignment is not None and id(assignment[0]) in namespaces:
                namespace, key, put, restores = assignment
                module = namespaces[id(namespace)]
                now = holds.get((id(namespace), key), namespace.get(key, _MISSING))
                if module in names and now is not put:
                    left.append(f"{module}.{key}")
                    continue
                holds[(id(namespace), key)] = restores
            kept.append(mutation)
        kept.reverse()
        left.reverse()
        result.append((kept, left))
    result.reverse()
    return result


def _namespace_assignment(mutation: Any) -> tuple[dict[str, Any], str, Any, Any] | None:
    """(namespace, name, the value the mutation put there, the value its undo restores) for
    a module-level assignment or deletion (`atomic.set_global`, `delete_global`); _MISSING
    stands for "absent"."""
    if not isinstance(mutation, atomic.Mutation):
        return None
    forward, backward = mutation.forward, mutation.backward
    if len(forward.args) < 2 or not isinstance(forward.args[0], dict):
        return None
    if forward.func is dict.__setitem__ and len(forward.args) == 3:
        put = forward.args[2]
    elif forward.func is dict.pop:
        put = _MISSING
    else:
        return None
    restores = backward.args[2] if backward.func is dict.__setitem__ and len(backward.args) == 3 else _MISSING
    return forward.args[0], forward.args[1], put, restores


def _reimported_notes(targets: list[Generation], left: list[list[str]]) -> list[str]:
    """What a rollback says of each module re-imported since generations it undoes (`left`:
    per generation, the names it left as the re-import bound them)."""
    numbers: dict[str, list[int]] = {}
    kept: dict[str, list[str]] = {}
    for generation, names in zip(targets, left):
        for module in generation.reimported:
            numbers.setdefault(module, []).append(generation.number)
            own = kept.setdefault(module, [])
            own += [name for name in names if name.startswith(module + ".") and name not in own]
    notes = []
    for module, undone in numbers.items():
        note = (
            f"{module} was re-imported after generation{'s' if len(undone) > 1 else ''} {_ranges(undone)} changed it: "
            f"the module runs its file's code, which stays; copies of its functions from before the re-import "
            f"(`from {module} import ...`, callbacks) run their code from before generation {min(undone)} again"
        )
        if kept[module]:
            names = kept[module]
            note += f"; {', '.join(names)} kept as the re-import bound {'it' if len(names) == 1 else 'them'}"
        notes.append(note)
    return notes


def _replaced_pairs(mutations: list[Any]) -> list[watches.Pair]:
    """(function, old code, new code) for every function whose code a generation replaced."""
    pairs: dict[int, watches.Pair] = {}
    for _, function, new, old in _code_swaps(mutations):
        if isinstance(function, types.FunctionType) and isinstance(old, types.CodeType):
            pairs.setdefault(id(old), watches.Pair(f"{function.__module__}.{function.__qualname__}", old, new))
    return list(pairs.values())


def _watch_target(target: Any) -> tuple[str, types.FunctionType]:
    if isinstance(target, str):
        module_name, sep, qualname = target.partition(":")
        if not sep or not module_name or not qualname:
            raise LivefixError("invalid", f"watch names a function as module:qualname, not {target!r}")
        module = sys.modules.get(module_name)
        if module is None:
            raise LivefixError("notFound", f"module {module_name!r} is not loaded in this process", module=module_name)
        value = _check_qualname(qualname, module)
        if value is None:
            raise LivefixError("notFound", f"{module_name} has no {qualname}", module=module_name, qualname=qualname)
    else:
        value, qualname = target, getattr(target, "__qualname__", repr(target))
    function = codeutil.unwrap_function(value, qualname.rsplit(".", 1)[-1])
    if function is None:
        raise LivefixError("unsupported", f"{target!r} is not a Python function livefix can watch", qualname=str(target))
    return f"{function.__module__}.{function.__qualname__}", function


def _refuse_change_of_kind(module: str, change: Change, current: Any, path: str) -> None:
    """A method replaced by a class (or a class by a function) is not a fix: refused, since
    everything that holds the running object would go on holding the other kind."""
    if current is None or change.qualname is None:
        return
    name = change.qualname.rsplit(".", 1)[-1]
    if isinstance(current, type):
        running = "class"
    elif isinstance(current, (staticmethod, classmethod, property)) or codeutil.unwrap_function(current, name) is not None:
        running = "function"
    else:
        return  # a value, or something livefix cannot classify: the planner decides
    try:  # a source that does not parse is named later, at the file's line
        body = ast.parse(textwrap.dedent(change.source)).body
    except (SyntaxError, ValueError):  # ValueError: null bytes, before 3.12
        return
    if len(body) != 1 or not isinstance(body[0], (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return  # refused later, with what it contains
    sent = "class" if isinstance(body[0], ast.ClassDef) else "function"
    if sent != running:
        raise LivefixError(
            "invalid",
            f"{module}.{change.qualname} is a {running} in the running process; the new source defines a {sent}: "
            "a change of kind is not applied (reload the module instead)",
            module=module, qualname=change.qualname, reason="kindChanged",
        )


def _check_qualname(qualname: str, module: types.ModuleType) -> Any:
    """The running object `qualname` names (None when absent); raises for impossible names."""
    parts = qualname.split(".")
    if not all(part.isidentifier() for part in parts):
        raise LivefixError(
            "invalid" if "<locals>" not in qualname else "unsupported",
            f"{qualname!r} is not a qualified name livefix can replace"
            + (" (functions defined inside functions are replaced with their enclosing function)" if "<locals>" in qualname else ""),
            qualname=qualname,
        )
    owner: Any = module
    for index, part in enumerate(parts[:-1]):
        owner = owner.__dict__.get(mangle(owner, part)) if isinstance(owner, type) else getattr(owner, part, None)
        if not isinstance(owner, type):
            where = ".".join(parts[: index + 1])
            raise LivefixError(
                "notFound",
                f"{module.__name__}.{where} is not a class in the running process, so it has no {parts[index + 1]!r}",
                module=module.__name__, qualname=qualname,
            )
    return owner.__dict__.get(mangle(owner, parts[-1])) if isinstance(owner, type) else module.__dict__.get(parts[-1])


def _describe_check(verify: Any) -> str | None:
    if verify is None:
        return None
    if isinstance(verify, str):
        return verify
    return getattr(verify, "__qualname__", repr(verify))


def _code_swaps(mutations: list[Any]) -> Iterator[tuple[atomic.Mutation, Any, types.CodeType, Any]]:
    """(mutation, target, new code, old value) for every `__code__` assignment a generation
    makes (moved lines, the `Moves` batches, are not new code)."""
    for mutation in mutations:
        if isinstance(mutation, atomic.Moves):
            continue
        forward, backward = mutation.forward.args, mutation.backward.args
        if len(forward) == 3 and forward[1] == "__code__" and isinstance(forward[2], types.CodeType):
            yield mutation, forward[0], forward[2], backward[2] if len(backward) == 3 else None


def _new_codes(mutations: list[atomic.Mutation]) -> dict[types.CodeType, str]:
    """The new code a generation put in place."""
    codes: dict[types.CodeType, str] = {}
    for mutation, _, new, _ in _code_swaps(mutations):
        for code in codeutil.nested_codes(new):
            codes[code] = mutation.label
    return codes


def _after(before: ModuleSource, plan: ModulePlan) -> ModuleSource:
    """What a module runs once `plan` is committed: the new text, and what still departs from it."""
    edited = {edit.qualname for edit in plan.edits}
    done = edited | plan.resolved
    running_lines = {q: lines for q, lines in before.running_lines.items() if q not in done}
    running_lines.update(plan.placed)
    return ModuleSource(
        before.name, plan.path, plan.new_text, stale=before.stale - done, missing=before.missing - done,
        running_lines=running_lines,
        orphans=before.orphans, derived=before.derived,
    )


def _same_code(text: str, other: str, path: str) -> bool:
    """Do two texts of a module hold the same statements, but for comments and blank lines?"""
    try:
        diff = diff_texts(text, other, path)
    except SyntaxError:
        return False
    if diff is None:
        return True
    return not any(pair.changed for pair in pair_statements(diff.old.statements, diff.old, diff.new.statements, diff.new))


def _file_text(path: str, cache: list[str | None]) -> str | None:
    """The saved file's text, read once per request (None: unreadable)."""
    if not cache:
        try:
            cache.append(read_source(path))
        except (OSError, UnicodeDecodeError, SyntaxError):
            cache.append(None)
    return cache[0]


def _ranges(numbers: list[int]) -> str:
    """`1, 2, 3, 5` -> `1-3, 5`."""
    runs: list[str] = []
    for number in sorted(numbers):
        if runs and runs[-1].rpartition("-")[2] == str(number - 1):
            runs[-1] = f"{runs[-1].partition('-')[0]}-{number}"
        else:
            runs.append(str(number))
    return ", ".join(runs)


def _definition_line_in_file(path: str, qualname: str, cache: list[str | None]) -> int | None:
    """Where the saved file has the definition `qualname` (its first decorator), if it parses."""
    text = _file_text(path, cache)
    if not text:
        return None
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    found = locate.find_definition(tree, [], qualname)
    return found.first if found is not None else None


def _line_in_file(path: str, source: str, cache: list[str | None], near: int | None) -> int | None:
    """The line where the definition `source` stands in the saved file (None: it is not
    there as it is), so that its code runs at the lines the editor shows. Where the same text
    stands twice (alike methods of two classes), the one nearest `near` (where it runs now)."""
    text = _file_text(path, cache)
    if not text:
        return None
    lines = [line.strip() for line in source.strip("\n").splitlines()]
    if not lines or not lines[0]:
        return None
    head = lines[0]
    found: list[int] = []
    offset = text.find(head)
    while offset >= 0:
        start = text.rfind("\n", 0, offset) + 1
        if not text[start:offset].strip():  # the head line starts there, after indentation only
            end = start
            for _ in lines:  # just the definition's lines, not the rest of the file
                end = text.find("\n", end) + 1 or len(text)
            if [line.strip() for line in text[start:end].split("\n")[: len(lines)]] == lines:
                found.append(text.count("\n", 0, start) + 1)
        offset = text.find(head, offset + 1)
    if not found:
        return None
    return min(found, key=lambda line: abs(line - near)) if near else found[0]


def _dependency_order(names: list[str]) -> list[str]:
    """Modules others depend on first (a module depends on those whose objects it holds)."""
    if len(names) < 2:
        return list(names)
    wanted = set(names)
    depends: dict[str, set[str]] = {}
    for name in names:
        module = sys.modules.get(name)
        deps: set[str] = set()
        for value in list(getattr(module, "__dict__", {}).values()):
            other = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
            if isinstance(other, str) and other in wanted and other != name:
                deps.add(other)
        depends[name] = deps
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in ordered or name in visiting:
            return
        visiting.add(name)
        for dep in sorted(depends.get(name, ())):
            visit(dep)
        visiting.discard(name)
        ordered.append(name)

    for name in names:
        visit(name)
    return ordered


_default: Engine | None = None
_default_lock = threading.Lock()


def _after_fork_in_child() -> None:
    """A forked child (a pre-fork server's worker, a Celery pool process) inherits the
    engine but not the threads: a lock another thread held at the fork would stay held for
    good in the child, and its next fix would hang. Fresh locks, and no evidence scheduler."""
    engine = _default
    if engine is None:
        return
    engine._lock = threading.Lock()
    engine._owner = None
    engine.sources._lock = threading.Lock()
    engine.pending._lock = threading.Lock()
    engine.watches.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def default_engine() -> Engine:
    """The process's engine (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Engine()
        return _default
