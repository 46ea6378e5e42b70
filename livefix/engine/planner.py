"""From an old and a new text of one module to the mutations that bring the running module
in line with the new text, keeping everything whose own statement did not change.

Changed functions and methods keep their identity and get the new code (`__code__`,
defaults, kwdefaults, annotations, doc); changed classes keep their identity and are
patched member by member; new definitions are added, removed ones deleted; changed
module-level statements are re-executed and rebind only the names they bind; code
after the change whose lines moved gets its line numbers moved. Nothing is mutated
here: the result is a list of `atomic.Mutation`s for the commit.
"""

from __future__ import annotations

import ast
import collections
import dataclasses
import enum
import gc
import importlib.util
import re
import sys
import types
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterable

from livefix.engine import atomic, codeutil, compiler, dataclass_fields
from livefix.engine.statements import (
    COMPOUND, DEFS, Pair, accessor, bound_names, branches, decorators_of, dedent_lines, mangle, owners, pair_statements, same_shape,
)
from livefix.engine.baseline import overload_stubs
from livefix.engine.imports import import_prelude, module_level_imports
from livefix.engine.swap import (
    codes_of, container_functions, functions_of, has_function, inner_code_pairs, swap_function,
)
from livefix.engine.textdiff import Chunk, TextDiff, diff_texts, statement_text, whole_file_diff
from livefix.errors import LivefixError

CodeType = types.CodeType
_DEFS = DEFS
_C_CALLABLES = (types.BuiltinFunctionType, types.MethodDescriptorType, types.WrapperDescriptorType)
_IGNORED_CLASS_NAMES = frozenset({"__module__", "__qualname__", "__classcell__", "__firstlineno__", "__static_attributes__"})


@dataclass
class Edit:
    """One definition-level change, as reported to people and clients."""

    module: str
    qualname: str
    kind: str  # replaced | added | removed
    source: str | None = None
    signature_changed: bool = False
    old_codes: tuple[types.CodeType, ...] = ()
    note: str | None = None

    def to_wire(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"module": self.module, "qualname": self.qualname, "kind": self.kind}
        if self.signature_changed:
            entry["signatureChanged"] = True
        return entry


@dataclass
class ModulePlan:
    module: types.ModuleType
    path: str
    old_text: str
    new_text: str
    edits: list[Edit] = field(default_factory=list)
    mutations: list[atomic.Mutation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    shifted: int = 0
    # What the plan was made from, so that the commit can plan it again, executing this time.
    baseline: str | None = None
    stale: frozenset[str] = frozenset()
    running_lines: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    placements: dict[str, "Placement"] = field(default_factory=dict)
    executed: bool = False
    diff: TextDiff | None = None  # where the texts differ: the commit re-parses only these chunks
    pairs: "list[Pair] | None" = None  # how their top-level statements pair up (reused with `diff`)
    # Definitions this plan gives the new text's code or lines (their running code then
    # matches the new text): qualname -> the line the code runs at when not the text's.
    resolved: set[str] = field(default_factory=set)
    placed: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    # Names the commit binds anew in the module (for later modules of the same generation
    # that import them: `from .prices import discount` while prices gains discount).
    bindings: dict[str, Any] = field(default_factory=dict)
    # Top-level functions this plan removes: remembered (weakly) once committed, so that the
    # same name defined again later takes the removed function's identity back (see `revived`).
    removed_functions: dict[str, types.FunctionType] = field(default_factory=dict)
    # Classes (qualnames) the change carries a migration for: their dataclass fields may
    # change in ways live instances cannot follow by defaults alone.
    migrated: frozenset[str] = frozenset()
    field_changes: "list[dataclass_fields.FieldChange]" = field(default_factory=list)

    def executing(self, pending: dict[str, dict[str, Any]] | None = None) -> "ModulePlan":
        """The same plan with its new code executed (scratch namespace) and its mutations made:
        run under the engine's lock at commit, never at prepare, so that a dry run or a plan
        nobody approved runs no decorator and no module statement of the new code."""
        if self.executed:
            return self
        planner = ModulePlanner(
            self.module, self.path, self.baseline, self.new_text, self.stale, execute=True,
            running_lines=self.running_lines, placements=self.placements,
        )
        planner.pending = pending or {}
        planner.migrated = planner.plan.migrated = self.migrated
        # The trees are transformed by this run: hand them over once (a second commit of the
        # same plan, after a failure, diffs afresh).
        planner.known_diff, self.diff = self.diff, None
        planner.known_pairs, self.pairs = self.pairs, None
        return planner.run()


@dataclass(frozen=True)
class Placement:
    """Where an applied definition really is: in the new text at lines [first, last], in the
    file `delta` lines further (the editor's buffer, or the saved file, has other lines
    above it than the running text). Its new code is compiled at the file's lines."""

    first: int
    last: int
    delta: int


# -- functions removed, and defined again -------------------------------------------

# Per module (weakly: a module, or a removed function nobody references, goes freely), the
# top-level functions a committed generation removed: facts about module objects, whichever
# engine removed them.
_REMOVED: "weakref.WeakKeyDictionary[types.ModuleType, dict[str, weakref.ref[types.FunctionType]]]" = (
    weakref.WeakKeyDictionary()
)


def remember_removed(plan: ModulePlan) -> None:
    """After a commit: the functions `plan` removed may come back under their names later."""
    if plan.removed_functions:
        kept = _REMOVED.setdefault(plan.module, {})
        for name, function in plan.removed_functions.items():
            kept[name] = weakref.ref(function)


def revived(module: types.ModuleType, name: str, new: Any) -> types.FunctionType | None:
    """The function an earlier generation removed from `module` as `name`, still referenced
    somewhere, that `new` (a plain function defined anew under that name) can become."""
    reference = _REMOVED.get(module, {}).get(name)
    earlier = reference() if reference is not None else None
    if not isinstance(earlier, types.FunctionType) or not isinstance(new, types.FunctionType):
        return None
    if earlier.__code__.co_freevars != new.__code__.co_freevars or earlier.__closure__ or new.__closure__:
        return None  # cells cannot be swapped in place
    return earlier


# -- the planner ---------------------------------------------------------------------


class ModulePlanner:
    """Plans `old_text` -> `new_text` for one loaded module."""

    def __init__(
        self,
        module: types.ModuleType,
        path: str,
        old_text: str | None,
        new_text: str,
        stale: frozenset[str] = frozenset(),
        execute: bool = True,
        running_lines: dict[str, tuple[tuple[int, int], ...]] | None = None,
        placements: dict[str, Placement] | None = None,
    ) -> None:
        self.stale = stale
        self.running_lines = running_lines or {}
        self.placements = placements or {}
        self.execute = execute
        self.known_diff: TextDiff | None = None
        self.known_pairs: list[Pair] | None = None  # the top-level pairing prepare found
        self.module = module
        self.name = module.__name__
        self.namespace: dict[str, Any] = module.__dict__
        self.path = path
        self.old_text = old_text
        self.new_text = new_text
        self.recorder = compiler.Recorder()
        self.stand_in = compiler.StandInClass(self.recorder)
        self.plan = ModulePlan(
            module, path, old_text or "", new_text, baseline=old_text, stale=stale, executed=execute,
            running_lines=self.running_lines, placements=self.placements,
        )
        self._record_index = 0
        # (statement index in recorder) -> what to do with the recorded function
        self._swaps: list[tuple[int, Any, str, str, ast.stmt]] = []  # (index, old function, qualname, accessor, node)
        self._class_patches: list[tuple[int, type, ast.ClassDef | None, ast.ClassDef, Chunk | None, Chunk, str]] = []
        self._scratch: dict[str, Any] = {}
        self._redecorated: set[tuple[str, str]] = set()  # (class qualname, member name)
        self._class_bodies: dict[int, list[ast.stmt]] = {}  # patch target -> class body as written
        self._inner_pairs: list[tuple[types.CodeType, types.CodeType]] = []  # old -> new inner function code
        self._shifted: set[int] = set()  # ids of functions whose lines this plan moves
        self._functions: list[types.FunctionType] | None = None  # the module's own, when needed
        self._moves: atomic.Moves | None = None  # the functions whose lines this plan moves
        self.pending: dict[str, dict[str, Any]] = {}  # earlier modules' new bindings, same generation
        self.migrated: frozenset[str] = frozenset()  # classes the change carries a migration for
        self._regenerated: dict[str, list[atomic.Mutation]] = {}  # dataclass qualname -> its regeneration
        # Classes to open even where their text did not change: members run other code or lines.
        self._touched = owners(stale | frozenset(self.running_lines))

    # -- entry -------------------------------------------------------------------------

    def run(self) -> ModulePlan:
        # Planning makes many short-lived objects (syntax trees, a code object per moved
        # function) and frees nothing cyclic: the cyclic GC would only rescan the program's
        # heap again and again meanwhile (seconds on a large heap), so it waits until the end.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._run()
        finally:
            if gc_was_enabled:
                gc.enable()

    def _run(self) -> ModulePlan:
        diff = self._diff()
        if diff is None:
            return self.plan
        flags = compiler.future_flags(self.new_text)
        old_chunk = diff.old if self.old_text is not None else None
        pairs = self.known_pairs or pair_statements(
            diff.old.statements if old_chunk else [], old_chunk, diff.new.statements, diff.new, self.stale,
            open_classes=self._touched,
        )
        self.plan.pairs = list(pairs)
        executed: list[ast.stmt] = []
        rebind: list[tuple[ast.stmt, Pair]] = []
        pairs = self._expand_blocks(pairs, old_chunk, diff.new)
        for pair in pairs:
            if not pair.changed:
                if pair.key == ("docstring",) and (
                    self._first_statement(pair.old, self.old_text) != self._first_statement(pair.new, self.new_text)
                ):  # the same string, but a statement now stands above it (or no longer does)
                    self._set_module_docstring(pair)
                    continue
                self._shift_unchanged(pair, [self.namespace.get(name) for name in bound_names(pair.new)], "")  # type: ignore[arg-type]
                continue
            if pair.key == ("docstring",) and self._is_module_docstring(pair):
                self._set_module_docstring(pair)
                continue
            if pair.new is None:
                self._plan_removal(self.namespace, pair.old, old_chunk, qualprefix="")  # type: ignore[arg-type]
                continue
            node = pair.new  # parsed for this plan alone: transformed in place
            action = self._transform_top_level(node, pair, old_chunk, diff.new)
            if action is not None:
                executed.append(node)
                if action == "bind":
                    rebind.append((node, pair))
        if not self.execute:  # prepare: what would change, from the syntax alone
            self._collect_class_patches()
            return self.plan
        if executed:
            self._execute(executed, flags)
        for node, pair in rebind:
            self._bind_module_names(node, pair, diff.new)
        self._collect_swaps()
        self._collect_inner_functions()
        self._collect_class_patches()
        if self.old_text is not None and not diff.whole_file:
            self._shift_outside(diff)
        if self.running_lines:
            self._align_known_moves()
        return self.plan

    def _align_known_moves(self) -> None:
        """Functions known to run at other lines than the old text says (livefix arrived after
        lines were added above them) that no statement of the diff moved: lambdas a factory
        holds, definitions under `if`/`try`, overload stubs. Each goes to its line in the new
        text (the old text's line, moved by the changes between the texts)."""
        mapping: TextDiff | None = None
        if self.old_text is not None and self.old_text != self.new_text:
            try:
                mapping = diff_texts(self.old_text, self.new_text, self.path)
            except SyntaxError:
                return
        replaced = {id(old) for _, old, _, _, _ in self._swaps}
        by_line: dict[int, list[types.FunctionType]] = {}
        for function in self._file_functions():
            if id(function) not in self._shifted and id(function) not in replaced:
                by_line.setdefault(function.__code__.co_firstlineno, []).append(function)
        for qualname, pairs in self.running_lines.items():
            if qualname in self.plan.resolved:
                continue
            name = qualname.rsplit(".", 1)[-1]
            for written, running in pairs:
                moved = 0 if mapping is None else mapping.shift_at(written)
                if moved is None:
                    continue  # the definition itself changed: the diff's pairs handled it
                for function in by_line.get(running, ()):
                    if function.__code__.co_name == name and id(function) not in self._shifted:
                        self._shift(function, written + moved - running)
            self.plan.resolved.add(qualname)

    def _is_module_docstring(self, pair: Pair) -> bool:
        """Was or is this the module's docstring (its first statement)?"""
        return self._first_statement(pair.old, self.old_text) or self._first_statement(pair.new, self.new_text)

    @staticmethod
    def _first_statement(node: ast.stmt | None, text: str | None) -> bool:
        if node is None or text is None:
            return False
        head = text.split("\n", node.lineno - 1)[: node.lineno - 1]
        return all(not line.strip() or line.lstrip().startswith("#") for line in head)

    def _set_module_docstring(self, pair: Pair) -> None:
        # a string that is no longer first (a statement was put above it) is no docstring
        is_doc = pair.new is not None and self._first_statement(pair.new, self.new_text)
        value = pair.new.value.value if is_doc else None  # type: ignore[union-attr]
        self.plan.mutations.append(atomic.set_global(self.namespace, "__doc__", value, f"{self.name}.__doc__"))
        self.plan.edits.append(Edit(self.name, "__doc__", "replaced" if pair.new is not None else "removed", note="statement"))
        self.plan.resolved.add("__doc__")

    def _expand_blocks(self, pairs: list[Pair], old_chunk: Chunk | None, new_chunk: Chunk) -> list[Pair]:
        """Replace a changed `if`/`try` block whose shape stayed by the pairs of its branches,
        so only what changed inside runs again (not the block's other side effects)."""
        expanded: list[Pair] = []
        for pair in pairs:
            # An `if`/`try` block equal as syntax can still hold a definition whose lines
            # changed (a comment inserted in its body): its text decides whether to look inside.
            relevant = pair.changed or (
                old_chunk is not None and isinstance(pair.old, COMPOUND) and pair.new is not None
                and (statement_text(old_chunk, pair.old) != statement_text(new_chunk, pair.new)
                     or any(name in self.stale or name in self.running_lines for name in bound_names(pair.new)))
            )
            live = self._live_branches(pair.old) if relevant and pair.old is not None else None
            if live is not None and pair.new is not None and same_shape(pair.old, pair.new):  # type: ignore[arg-type]
                inner: list[Pair] = []
                for index, (old_branch, new_branch) in enumerate(zip(branches(pair.old), branches(pair.new))):  # type: ignore[arg-type]
                    if index in live:  # a branch that did not run (`if TYPE_CHECKING:`) stays not run
                        inner.extend(pair_statements(old_branch, old_chunk, new_branch, new_chunk, self.stale,
                                                     open_classes=self._touched))
                expanded.extend(self._expand_blocks(inner, old_chunk, new_chunk))
            else:
                expanded.append(pair)
        return expanded

    def _live_branches(self, node: ast.stmt) -> set[int] | None:
        """Which branches of an `if`/`try` block ran when the module was loaded (None: unknown).

        An `if` runs the branch its condition picks now (conditions are platform checks,
        TYPE_CHECKING, feature flags). A `try` ran a handler when a definition of that handler
        is what runs now, else its body, `else` and `finally`."""
        if isinstance(node, ast.If):
            try:
                expression = ast.Expression(node.test)
                ast.fix_missing_locations(expression)
                taken = bool(eval(compile(expression, self.path, "eval", dont_inherit=True), self.namespace))
            except Exception:
                return None
            return {0} if taken else {1}
        if isinstance(node, ast.Try):
            for index, handler in enumerate(node.handlers, start=1):
                for inner in handler.body:
                    if isinstance(inner, _DEFS):
                        function = codeutil.unwrap_function(self.namespace.get(inner.name), inner.name)
                        line = self._running_at(inner.name, compiler.first_line_node(inner).lineno)
                        if function is not None and function.__code__.co_firstlineno == line:
                            return {index, len(node.handlers) + 2}  # the handler and `finally`
            return {0, len(node.handlers) + 1, len(node.handlers) + 2}
        return None

    def _record(self, node: Any, index: int, keep_decorators: bool) -> None:
        if self.execute:  # prepare leaves the syntax trees as parsed, for the commit to reuse
            compiler.record_definition(node, index, keep_decorators)

    def _patch_class(self, node: ast.ClassDef, target: int) -> None:
        if self.execute:
            compiler.patch_class_statement(node, target)

    def _diff(self) -> TextDiff | None:
        if self.known_diff is not None:  # found at prepare, trees untouched: no second diff or parse
            return self.known_diff
        diff = self._find_diff()
        self.plan.diff = diff
        return diff

    def _find_diff(self) -> TextDiff | None:
        try:
            if self.old_text is None:
                return whole_file_diff("", self.new_text, self.path) if self.new_text else None
            if self.stale or self.running_lines:  # definitions anywhere may differ from what runs
                return whole_file_diff(self.old_text, self.new_text, self.path)
            diff = diff_texts(self.old_text, self.new_text, self.path)
            if diff is not None and not diff.whole_file and not self._aligned(diff.old):
                diff = whole_file_diff(self.old_text, self.new_text, self.path)
            return diff
        except SyntaxError as error:
            raise self._syntax_error(error.lineno, error.offset or 0, error.msg) from None

    def _syntax_error(self, line: int | None, column: int, message: str) -> LivefixError:
        """A syntax error in the new text, named at its line in the file, with that line's
        text (not what CPython reads from the file on disk at the new text's line number)."""
        text = ""
        if line:
            lines = self.new_text.split("\n", line)
            text = lines[line - 1].rstrip("\r") if len(lines) >= line else ""
            for placement in self.placements.values():
                if placement.first <= line <= placement.last:
                    line += placement.delta
        return LivefixError(
            "syntax", f"{self.path}:{line}:{column}: {message}",
            path=self.path, line=line, column=column, text=text, module=self.name,
        )

    def _aligned(self, chunk: Chunk) -> bool:
        """Do the chunk's definitions sit where the running code says they are? A hunk cut by
        a column-0 line inside a string (`def example():` in a docstring) can parse as code:
        then its definitions run nowhere, or somewhere else."""
        counts = collections.Counter(n.name for n in chunk.statements if isinstance(n, (*_DEFS, ast.ClassDef)))
        for node in chunk.statements:
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                if isinstance(node, ast.AnnAssign) and node.value is None:
                    continue  # `x: int` binds nothing
                if any(name not in self.namespace for name in bound_names(node)):
                    return False  # an assignment the text has (unconditionally) and nothing bound
                continue
            if not isinstance(node, (*_DEFS, ast.ClassDef)):
                continue
            if node.name not in self.namespace:
                return False  # a definition the text has (unconditionally) and nothing binds
            if counts[node.name] != 1:
                continue
            value = self.namespace.get(node.name)
            if isinstance(node, ast.ClassDef):
                continue
            function = codeutil.unwrap_function(value, node.name)
            if function is not None and function.__code__.co_filename == self.path:
                if function.__code__.co_firstlineno != compiler.first_line_node(node).lineno:
                    return False
        return True

    # -- module level ------------------------------------------------------------------

    def _transform_top_level(self, node: ast.stmt, pair: Pair, old_chunk: Chunk | None, new_chunk: Chunk) -> str | None:
        """Prepare a changed or added top-level statement; returns 'bind', 'swap' or 'patch'."""
        current = self.namespace.get(node.name) if isinstance(node, (*_DEFS, ast.ClassDef)) else None
        if isinstance(node, _DEFS) and current is not None and pair.old is not None:
            function = self._function_at(current, node.name, pair.old, node.name)
            if function is None:
                self._no_running_function(node.name, pair.old)
                return None
            same_decorators = decorators_of(pair.old) == decorators_of(pair.new)  # type: ignore[arg-type]
            index = self._next_index()
            self._record(node, index, keep_decorators=not same_decorators)
            self._swaps.append((index, function, node.name, "function", pair.new))  # type: ignore[arg-type]
            self._add_edit(node.name, "replaced", new_chunk, pair.new, function.__code__, old_node=pair.old)
            if not same_decorators:
                self.plan.warnings.append(
                    f"The decorators of {self.name}.{node.name} changed: the name now refers to the newly decorated "
                    "object; references taken earlier keep the old decorators around the new code."
                )
                return "bind"
            return "swap"
        if isinstance(node, ast.ClassDef) and isinstance(current, type) and pair.old is not None:
            self._transform_class(node, current, pair.old, old_chunk, new_chunk, node.name)  # type: ignore[arg-type]
            return "patch"
        if isinstance(node, ast.ClassDef) and isinstance(current, type) and old_chunk is None:
            self._transform_class(node, current, None, None, new_chunk, node.name)
            return "patch"
        if isinstance(node, _DEFS) and current is not None and old_chunk is None:
            function = self._existing_function(current, node.name, node.name)
            index = self._next_index()
            self._record(node, index, keep_decorators=False)
            self._swaps.append((index, function, node.name, "function", pair.new))  # type: ignore[arg-type]
            self._add_edit(node.name, "replaced", new_chunk, pair.new, function.__code__)
            return "swap"
        # new definitions and other statements: executed, their names bound
        if isinstance(node, _DEFS) and isinstance(current, _C_CALLABLES):
            self._existing_function(current, node.name, node.name)  # raises: not Python code
        if isinstance(node, (*_DEFS, ast.ClassDef)):
            self._add_edit(node.name, "added" if current is None else "replaced", new_chunk, pair.new)
        else:
            names = bound_names(node)
            if names:
                kind = "replaced" if pair.old is not None else "added"
                for name in names:
                    self._add_edit(name, kind, new_chunk, pair.new, statement=True)
        return "bind"

    def _bind_module_names(self, node: ast.stmt, pair: Pair, new_chunk: Chunk) -> None:
        for name in bound_names(node):
            if name in self._scratch:
                value = self._scratch[name]
                self.plan.bindings[name] = value
                placement = self.placements.get(name)
                if placement is not None and placement.delta and isinstance(value, types.FunctionType):
                    value.__code__ = codeutil.shift_lines(value.__code__, placement.delta)  # new, unseen
                    self.plan.placed[name] = ((placement.first, value.__code__.co_firstlineno),)
                earlier = revived(self.module, name, value) if name not in self.namespace else None
                if earlier is not None:
                    # Defined again after an earlier generation removed it: the function object
                    # that `from m import f` copies still hold gets the new code and comes back
                    # under its name, so those copies do not go on running the removed code.
                    label = f"{self.name}.{name}"
                    for attribute in ("__code__", "__defaults__", "__kwdefaults__", "__annotations__", "__doc__"):
                        self.plan.mutations.append(atomic.set_attribute(earlier, attribute, getattr(value, attribute), label))
                    self.plan.bindings[name] = value = earlier
                self.plan.mutations.append(atomic.set_global(self.namespace, name, value, f"{self.name}.{name}"))

    def _plan_removal(self, namespace: Any, node: ast.stmt, old_chunk: Chunk | None, qualprefix: str) -> None:
        for name in bound_names(node):
            qualname = qualprefix + name
            if isinstance(namespace, type):
                key = mangle(namespace, name)
                value = namespace.__dict__.get(key)
                kind = accessor(node)
                if isinstance(value, property) and kind != "fget" and getattr(value, kind) is not None:
                    # `@x.setter` / `@x.deleter` gone, the property stays, without that accessor
                    # (its getter keeps its identity; property.setter(None) would keep the old one)
                    reduced = type(value)(value.fget, None if kind == "fset" else value.fset,
                                          None if kind == "fdel" else value.fdel, value.__doc__)
                    self.plan.mutations.append(atomic.set_attribute(namespace, key, reduced, f"{self.name}.{qualname}"))
                    self.plan.edits.append(Edit(self.name, qualname, "replaced", old_codes=codes_of(getattr(value, kind))))
                    continue
                if key in namespace.__dict__:
                    value = namespace.__dict__[key]
                    self._check_removable(value, qualname)
                    self.plan.mutations.append(atomic.delete_attribute(namespace, key, f"{self.name}.{qualname}"))
                    self.plan.edits.append(Edit(self.name, qualname, "removed", old_codes=codes_of(value)))
            elif name in namespace:
                value = namespace[name]
                self._check_removable(value, qualname)
                self.plan.mutations.append(atomic.delete_global(namespace, name, f"{self.name}.{qualname}"))
                self.plan.edits.append(Edit(self.name, qualname, "removed", old_codes=codes_of(value)))
                if isinstance(value, types.FunctionType) and value.__module__ == self.name:
                    self.plan.removed_functions[name] = value
                self._warn_if_still_used(name, value)

    def _warn_if_still_used(self, name: str, value: Any) -> None:
        """A removed top-level name that the new text still mentions, or that another module
        imported (`from m import name`): calls through them fail or run the removed code."""
        users = []
        if re.search(rf"(?<![\w.]){re.escape(name)}\b", self.new_text):
            users.append(f"{self.name} still names it")
        holders = [other for other, module in list(sys.modules.items())
                   if module is not self.module and getattr(module, "__dict__", {}).get(name) is value]
        if holders:
            users.append("imported by " + ", ".join(sorted(holders)[:5]) + (" and more" if len(holders) > 5 else ""))
        if users:
            warning = (f"{self.name}.{name} is removed, but {' and '.join(users)}: calls through those raise "
                       "NameError or run the removed code")
            if warning not in self.plan.warnings:
                self.plan.warnings.append(warning)

    def _check_removable(self, value: Any, qualname: str) -> None:
        if isinstance(value, enum.Enum):
            raise LivefixError(
                "incompatible", f"{self.name}.{qualname}: removing an enum member is not possible in a running process",
                module=self.name, qualname=qualname,
            )

    # -- classes -----------------------------------------------------------------------

    def _transform_class(
        self,
        node: ast.ClassDef,
        cls: type,
        old: ast.ClassDef | None,
        old_chunk: Chunk | None,
        new_chunk: Chunk,
        qualname: str,
    ) -> None:
        if old is not None and decorators_of(old) != decorators_of(node):
            self.plan.warnings.append(
                f"The class decorators of {self.name}.{qualname} changed: a live class is patched member by member, "
                "so they were not run again (restart to apply a new class decorator such as @total_ordering)."
            )
        target = self.stand_in.add_target(cls)
        self._patch_class(node, target)
        self._class_patches.append((target, cls, old, node, old_chunk, new_chunk, qualname))
        self._class_bodies[target] = list(node.body)  # as written: the body that runs is rewritten below
        old_body = list(old.body) if old is not None else []
        pairs = pair_statements(
            old_body, old_chunk if old is not None else None, list(node.body), new_chunk, self.stale, qualname + ".",
            open_classes=self._touched,
        )
        new_body_by_id = {id(n): n for n in node.body}
        own = cls.__dict__
        for pair in pairs:
            member = pair.new
            if member is None or id(member) not in new_body_by_id:
                continue
            if isinstance(member, _DEFS):
                existing = own.get(mangle(cls, member.name))
                if existing is not None and (isinstance(existing, property) or has_function(existing, member.name)):
                    if not pair.changed and old is not None:
                        self._record(member, self._next_index(), keep_decorators=False)
                        continue
                    member_qualname = f"{qualname}.{member.name}"
                    if pair.old is not None and not isinstance(existing, property) and not self._runs_here(
                        existing, member.name, member_qualname, pair.old
                    ):
                        self._record(member, self._next_index(), keep_decorators=False)
                        self._no_running_function(member_qualname, pair.old)
                        continue
                    if (
                        pair.old is not None and old_chunk is not None
                        and decorators_of(pair.old) != decorators_of(member)
                        and not isinstance(existing, property)
                    ):
                        # New decorators (a method becoming a property, staticmethod -> classmethod,
                        # a cache added): the member is rebound to the newly decorated object.
                        # The old function gets the new code too, for whoever still holds it.
                        self._redecorated.add((qualname, member.name))
                        function = self._existing_member(existing, member.name, f"{qualname}.{member.name}", "function")
                        index = self._next_index()
                        self._record(member, index, keep_decorators=True)
                        self._swaps.append((index, function, f"{qualname}.{member.name}", "function", member))
                        self._add_edit(f"{qualname}.{member.name}", "replaced", new_chunk, member, function.__code__,
                                       old_node=pair.old)
                        self.plan.warnings.append(
                            f"The decorators of {self.name}.{qualname}.{member.name} changed: the class now holds "
                            "the newly decorated object; references taken earlier keep the old decorators around "
                            "the new code."
                        )
                        continue
                    kind = accessor(member) if isinstance(existing, property) else "function"
                    function = self._existing_member(existing, member.name, f"{qualname}.{member.name}", kind)
                    index = self._next_index()
                    self._record(member, index, keep_decorators=False)
                    # function None: a property gains an accessor
                    self._swaps.append((index, function or existing, f"{qualname}.{member.name}", kind, member))
                    if pair.changed:
                        self._add_edit(
                            f"{qualname}.{member.name}", "replaced", new_chunk, member,
                            function.__code__ if function is not None else None, old_node=pair.old,
                        )
            elif isinstance(member, ast.ClassDef):
                existing = own.get(mangle(cls, member.name))
                if isinstance(existing, type) and (pair.changed or old is None):
                    self._transform_class(member, existing, pair.old, old_chunk if pair.old is not None else None,  # type: ignore[arg-type]
                                          new_chunk, f"{qualname}.{member.name}")
        if self.execute and old is not None:
            self._keep_live_state(node, cls, pairs)

    def _keep_live_state(self, node: ast.ClassDef, cls: type, pairs: list[Pair]) -> None:
        """The class body runs again to build the changed members, but its unchanged
        statements must not make new state: `__marker = object()` would give a changed
        `def pop(self, key, default=__marker)` a sentinel the live class does not hold, and
        `render.register(float, ...)` would register twice. Unchanged assignments take the live
        class's values instead; unchanged expression statements do not run."""
        if isinstance(cls, enum.EnumMeta) or (issubclass(cls, tuple) and hasattr(cls, "_fields")):
            return  # their class machinery turned the assigned values into members and accessors
        replacement: dict[int, list[ast.stmt]] = {}
        live = cls.__dict__
        for pair in pairs:
            member = pair.new
            if member is None or pair.changed or pair.key == ("docstring",):
                continue
            if isinstance(member, ast.Expr):
                replacement[id(member)] = [ast.copy_location(ast.Pass(), member)]
            elif isinstance(member, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                names = bound_names(member)
                if not names or not all(mangle(cls, name) in live for name in names):
                    continue  # not kept by the class as such (a dataclass field factory...): runs again
                statements: list[ast.stmt] = []
                for name in names:
                    value = ast.Subscript(value=ast.Name(id=compiler.LIVE, ctx=ast.Load()),
                                          slice=ast.Constant(mangle(cls, name)), ctx=ast.Load())
                    target = ast.Name(id=name, ctx=ast.Store())
                    if isinstance(member, ast.AnnAssign) and member.simple:  # keeps __annotations__ as written
                        statement: ast.stmt = ast.AnnAssign(target=target, annotation=member.annotation, value=value, simple=1)
                    else:
                        statement = ast.Assign(targets=[target], value=value)
                    statements.append(ast.fix_missing_locations(ast.copy_location(statement, member)))
                replacement[id(member)] = statements
        if replacement:
            node.body = [new for statement in node.body for new in replacement.get(id(statement), [statement])]

    def _collect_class_patches(self) -> None:
        swapped: dict[str, set[str]] = {}  # class qualname -> its members this plan swaps / patches
        for _, _, member, _, _ in self._swaps:
            owner, _, name = member.rpartition(".")
            swapped.setdefault(owner, set()).add(name)
        patched: dict[str, set[str]] = {}
        for *_, member in self._class_patches:
            owner, _, name = member.rpartition(".")
            patched.setdefault(owner, set()).add(name)
        for target, cls, old, node, old_chunk, new_chunk, qualname in self._class_patches:
            built = self.stand_in.built.get(target)
            if built is None and self.execute:
                continue  # an enclosing statement failed before reaching this class
            if built is not None:
                self._check_class_compatible(cls, built, qualname, old, node)
            old_body = list(old.body) if old is not None else []
            pairs = pair_statements(
                old_body, old_chunk if old is not None else None, self._class_bodies.get(target, list(node.body)),
                new_chunk, self.stale, qualname + ".", open_classes=self._touched,
            )
            swapped_names = swapped.get(qualname, set())
            redecorated = {name for owner, name in self._redecorated if owner == qualname}
            patched_names = patched.get(qualname, set())
            for pair in pairs:
                if not pair.changed and old is not None:
                    if isinstance(pair.new, (*_DEFS, ast.ClassDef)):  # moved within the changed class
                        self._shift_unchanged(pair, [cls.__dict__.get(mangle(cls, pair.new.name))], qualname + ".")
                    continue
                if pair.new is None:
                    self._plan_removal(cls, pair.old, old_chunk, qualprefix=qualname + ".")  # type: ignore[arg-type]
                    continue
                for name in bound_names(pair.new) or (["__doc__"] if pair.key == ("docstring",) else []):
                    if (name in swapped_names or name in patched_names) and name not in redecorated:
                        continue
                    key = mangle(cls, name)  # the class body stored `__private` as `_Class__private`
                    if old is None and key in cls.__dict__ and not isinstance(pair.new, (*_DEFS, ast.ClassDef)):
                        continue  # no baseline text: keep existing class state
                    if built is None:  # prepare: the edit, without the value
                        if name != "__doc__" and name not in redecorated:
                            self._add_edit(f"{qualname}.{name}", "replaced" if key in cls.__dict__ else "added",
                                           new_chunk, pair.new, statement=not isinstance(pair.new, (*_DEFS, ast.ClassDef)))
                        continue
                    if key not in built.namespace:
                        continue
                    value = built.namespace[key]
                    self._check_member_assignable(cls, key, qualname)
                    if name in redecorated:
                        self._set_name(value, cls, key, qualname)
                        self.plan.mutations.append(atomic.set_attribute(cls, key, value, f"{self.name}.{qualname}.{name}"))
                        continue
                    kind = "replaced" if key in cls.__dict__ else "added"
                    self._set_name(value, cls, key, qualname)
                    self.plan.mutations.append(atomic.set_attribute(cls, key, value, f"{self.name}.{qualname}.{name}"))
                    if name != "__doc__":
                        self._add_edit(f"{qualname}.{name}", kind, new_chunk, pair.new,
                                       statement=not isinstance(pair.new, (*_DEFS, ast.ClassDef)))
                    else:  # a class docstring: said in the report, not run as code
                        self.plan.edits.append(Edit(self.name, f"{qualname}.__doc__", "replaced", note="statement"))
                        self.plan.resolved.add(f"{qualname}.__doc__")
            # After the members: what @dataclass generates from them replaces what they set.
            self.plan.mutations.extend(self._regenerated.pop(qualname, []))

    def _set_name(self, value: Any, cls: type, name: str, qualname: str) -> None:
        """What class creation does for descriptors (cached_property...): tell them their name.
        The value is new and not yet visible, so this changes nothing in the process."""
        set_name = getattr(type(value), "__set_name__", None)
        if set_name is None:
            return
        try:
            set_name(value, cls, name)
        except Exception as error:
            raise LivefixError(
                "failed", f"{self.name}.{qualname}.{name}: __set_name__ raised {type(error).__name__}: {error}; nothing was changed",
                module=self.name, qualname=f"{qualname}.{name}",
            ) from None

    def _check_class_compatible(
        self, cls: type, built: compiler.BuiltClass, qualname: str, old: ast.ClassDef | None, new: ast.ClassDef
    ) -> None:
        if old is not None and [ast.dump(b) for b in old.bases] == [ast.dump(b) for b in new.bases]:
            same_bases = True  # the statement names the same bases: nothing to compare at run time
        else:
            orig = cls.__dict__.get("__orig_bases__")
            resolved = types.resolve_bases(built.bases) if built.bases else (object,)  # Generic[T] -> Generic
            same_bases = tuple(resolved) == tuple(cls.__bases__) or (orig is not None and tuple(built.bases) == tuple(orig))
        if not same_bases:
            raise self._incompatible(
                qualname,
                f"the base classes changed ({_names(cls.__bases__)} -> {_names(built.bases)}); "
                "existing instances cannot change their layout in place: restart to apply this",
                "bases",
            )
        if "__slots__" in built.namespace and tuple(_as_tuple(built.namespace["__slots__"])) != tuple(
            _as_tuple(cls.__dict__.get("__slots__", ()))
        ):
            raise self._incompatible(
                qualname,
                "__slots__ changed; instances' memory layout is fixed when the class is created: restart to apply this",
                "slots",
            )
        if dataclasses.is_dataclass(cls) and (
            dataclass_fields.fields_changed(cls, built.namespace)
            or ("__post_init__" in built.namespace and not hasattr(cls, "__post_init__"))
        ):
            # Regenerated after the members are patched (see _collect_class_patches).
            change, mutations = dataclass_fields.regenerate(
                cls, built.bases, built.namespace, self.name, qualname, migrated=qualname in self.migrated
            )
            self.plan.field_changes.append(change)
            self._regenerated[qualname] = mutations
        fields = cls.__dict__.get("_fields")
        if isinstance(fields, tuple) and issubclass(cls, tuple):  # typing.NamedTuple / namedtuple
            annotations = built.namespace.get("__annotations__", {})
            defaults = getattr(cls, "_field_defaults", {})
            if tuple(annotations) != fields or any(
                (name in built.namespace) != (name in defaults)
                or (name in defaults and built.namespace[name] != defaults[name])
                for name in annotations
            ):
                raise self._incompatible(
                    qualname,
                    "the named tuple's fields changed; existing tuples and their __new__ depend on them: "
                    "restart to apply this",
                    "namedTupleFields",
                )
        if isinstance(cls, enum.EnumMeta):
            members = cls.__members__
            for name, value in built.namespace.items():
                if isinstance(value, enum.auto):
                    continue
                if name in members and getattr(members[name], "_value_", value) != value:
                    raise self._incompatible(
                        f"{qualname}.{name}", "enum members cannot change their value in a running process", "enumMember"
                    )
            added = [n for n, v in built.namespace.items() if not n.startswith("_") and n not in members
                     and not callable(v) and not isinstance(v, (property, staticmethod, classmethod))]
            if added:
                raise self._incompatible(
                    qualname, f"adding enum members ({', '.join(added)}) is not possible in a running process", "enumMember"
                )

    def _check_member_assignable(self, cls: type, name: str, qualname: str) -> None:
        if isinstance(cls, enum.EnumMeta) and name in cls.__members__:
            raise self._incompatible(
                f"{qualname}.{name}", "enum members cannot be replaced in a running process", "enumMember"
            )

    def _incompatible(self, qualname: str, detail: str, reason: str) -> LivefixError:
        """The refusal for a change CPython cannot make to a live class, naming the definition."""
        return LivefixError(
            "incompatible", f"{self.name}.{qualname}: {detail}", module=self.name, qualname=qualname, reason=reason
        )

    # -- functions ---------------------------------------------------------------------

    def _existing_function(self, current: Any, name: str, qualname: str) -> types.FunctionType:
        function = codeutil.unwrap_function(current, name)
        if function is None:
            if isinstance(current, (types.BuiltinFunctionType, types.MethodDescriptorType, types.WrapperDescriptorType)):
                raise LivefixError(
                    "unsupported",
                    f"{self.name}.{qualname} is a built-in (C) function, not Python code: it cannot be replaced",
                    module=self.name, qualname=qualname,
                )
            raise LivefixError(
                "unsupported",
                f"{self.name}.{qualname} is a {type(current).__name__}, not a Python function livefix can find code in",
                module=self.name, qualname=qualname,
            )
        return function

    def _function_at(self, current: Any, name: str, old_node: ast.stmt, qualname: str) -> types.FunctionType | None:
        """The running function of the definition `old_node`, checked by its first line: a name
        may be bound to the last of several definitions (singledispatch `_`, overloads)."""
        function = self._existing_function(current, name, qualname)
        line = self._running_line(qualname, old_node)
        if function.__code__.co_firstlineno == line or function.__code__.co_filename != self.path:
            return function
        for candidate in functions_of([current, *self.namespace.values()], self.name, set()):
            code = candidate.__code__
            if code.co_name == name and code.co_firstlineno == line and code.co_filename == self.path:
                return candidate
        return None

    def _runs_here(self, existing: Any, name: str, qualname: str, old_node: ast.stmt) -> bool:
        """Is the function bound to a class member the one `old_node` defined? (Overload
        stubs and shadowed definitions share the member's name but run nowhere.)"""
        function = codeutil.unwrap_function(existing, name)
        if function is None or function.__code__.co_filename != self.path:
            return True
        return function.__code__.co_firstlineno == self._running_line(qualname, old_node)

    def _running_line(self, qualname: str, old_node: ast.stmt) -> int:
        """Where the running code of `old_node` starts: the old text's line, unless known otherwise."""
        return self._running_at(qualname, compiler.first_line_node(old_node).lineno)

    def _running_at(self, qualname: str, text_line: int) -> int:
        """The running first line of the definition of `qualname` the old text has at `text_line`."""
        for written, running in self.running_lines.get(qualname, ()):
            if written == text_line:
                return running
        return text_line

    def _no_running_function(self, qualname: str, old_node: ast.stmt) -> None:
        """A definition in the old text with no function of its own running: an overload
        stub (nothing to do: typing keeps no code of it that runs) or a shadowed one."""
        if any(_is_overload(d) for d in getattr(old_node, "decorator_list", [])):
            self.plan.warnings.append(
                f"{self.name}.{qualname} (line {compiler.first_line_node(old_node).lineno}) is an @overload stub: "
                "stubs never run, so there is no code to replace (typing.get_overloads() keeps listing the old ones)."
            )
            return
        self.plan.warnings.append(
            f"{self.name}.{qualname} (line {compiler.first_line_node(old_node).lineno}) has no running "
            "function object of its own (a shadowed definition); left as it is."
        )

    def _existing_member(self, existing: Any, name: str, qualname: str, kind: str) -> types.FunctionType | None:
        if isinstance(existing, property):
            function = getattr(existing, kind)
            return None if function is None else self._existing_function(function, name, qualname)
        return self._existing_function(existing, name, qualname)

    def _collect_swaps(self) -> None:
        edits: dict[str, list[Edit]] = {}
        for edit in self.plan.edits:
            edits.setdefault(edit.qualname, []).append(edit)
        for index, old, qualname, kind, node in self._swaps:
            new = self.recorder.functions.get(index)
            if new is None:
                continue
            where = f"{self.name}.{qualname}"
            if isinstance(old, property):  # a new accessor for an existing property
                cls = self._owner_class(qualname)
                replacement = old.setter(new) if kind == "fset" else old.deleter(new) if kind == "fdel" else old.getter(new)
                self.plan.mutations.append(atomic.set_attribute(cls, mangle(cls, qualname.rsplit(".", 1)[-1]), replacement, where))
                self._add_edit(qualname, "replaced", None, node)
                continue
            placement = self.placements.get(qualname)
            if placement is not None and placement.delta:
                # compiled at the running text's lines; it runs at the file's (a fresh function
                # nobody else sees yet, so moving its code here changes nothing in the process)
                new.__code__ = codeutil.shift_lines(new.__code__, placement.delta)
                self.plan.placed[qualname] = ((placement.first, new.__code__.co_firstlineno),)
            self.plan.resolved.add(qualname)
            self.plan.mutations.extend(swap_function(old, new, where, self.name, qualname))
            self._inner_pairs.extend(inner_code_pairs(old.__code__, new.__code__))
            for edit in edits.get(qualname, ()):
                if edit.kind == "replaced" and old.__code__ in edit.old_codes:
                    edit.signature_changed = codeutil.signature_key(
                        old.__code__, old.__defaults__, old.__kwdefaults__
                    ) != codeutil.signature_key(new.__code__, new.__defaults__, new.__kwdefaults__)
            for wrapper in codeutil.lru_wrappers(self._lookup(qualname)):
                self.plan.mutations.append(atomic.call_only(wrapper.cache_clear, wrapper.cache_clear, f"{where} cache"))
            self._update_wrapper_copies(self._lookup(qualname), old, new, where)

    def _update_wrapper_copies(self, outer: Any, old: types.FunctionType, new: types.FunctionType, where: str) -> None:
        """functools.wraps copied the function's docstring and annotations onto its wrappers
        when it decorated it: a wrapper still holding the old copy gets the new one, as a fresh
        import would give it."""
        seen: set[int] = set()
        while outer is not None and outer is not old and id(outer) not in seen:
            seen.add(id(outer))
            if hasattr(outer, "__dict__") and not isinstance(outer, type):
                for name in ("__doc__", "__annotations__"):
                    copied, fresh = getattr(outer, name, None), getattr(new, name, None)
                    if copied is not fresh and copied == getattr(old, name, None) and copied != fresh:
                        self.plan.mutations.append(atomic.set_attribute(outer, name, fresh, f"{where} wrapper"))
            try:
                outer = object.__getattribute__(outer, "__wrapped__")
            except AttributeError:
                outer = getattr(outer, "__func__", None)

    def _collect_inner_functions(self) -> None:
        """Functions made by an earlier call of a replaced function (a closure the program
        kept, a handler built at start-up) share its old inner code: they get the new one.
        Finding them walks the heap, so only when the replaced code has inner functions."""
        if not self._inner_pairs:
            return
        replacements = dict(self._inner_pairs)
        for holder in gc.get_referrers(*replacements):
            if isinstance(holder, types.FunctionType) and holder.__code__ in replacements:
                new_code = replacements[holder.__code__]
                where = f"{self.name}.{holder.__qualname__}"
                if holder.__code__.co_freevars != new_code.co_freevars:
                    self.plan.warnings.append(
                        f"{where}: an inner function made before this change keeps its old code (the variables "
                        "it closes over changed); new ones get the new code."
                    )
                    continue
                self.plan.mutations.append(atomic.set_attribute(holder, "__code__", new_code, where))

    def _owner_class(self, qualname: str) -> type:
        owner: Any = self.module
        for part in qualname.split(".")[:-1]:
            owner = owner.__dict__[mangle(owner, part)] if isinstance(owner, type) else getattr(owner, part)
        return owner

    def _lookup(self, qualname: str) -> Any:
        try:
            owner: Any = self.module
            for part in qualname.split("."):
                owner = owner.__dict__[mangle(owner, part)] if isinstance(owner, type) else getattr(owner, part)
            return owner
        except (AttributeError, KeyError):
            return None

    # -- executing new code ------------------------------------------------------------

    def _execute(self, statements: list[ast.stmt], flags: int) -> None:
        if self.pending:
            statements = [new for node in statements for new in self._imports_from_pending(node)]
        imported = module_level_imports(self.new_text)
        if imported and statements:  # compile as the whole file would (see livefix.engine.imports)
            statements = [import_prelude(imported, statements[0].lineno), *statements]
        # Every node has its location: parsed ones from the file, made ones where they are made
        # (ast.fix_missing_locations over the whole tree would cost a Python step per node).
        module_ast = ast.Module(body=statements, type_ignores=[])
        try:
            code = compiler.compile_module_ast(module_ast, self.path, flags)
        except LivefixError as error:
            if error.kind == "syntax":
                raise self._syntax_error(error.details.get("line"), error.details.get("column") or 0,
                                         error.message.rsplit(": ", 1)[-1]) from None
            raise
        self._scratch = {compiler.RECORD: self.recorder, compiler.STAND_IN: self.stand_in,
                         compiler.IMPORT: self._import_pending}
        self.stand_in.scratch = self._scratch
        compiler.run_isolated(code, self.namespace, self._scratch, f"code of {self.name}")

    def _imports_from_pending(self, node: ast.stmt) -> list[ast.stmt]:
        """`from .prices import discount`, where this generation gives prices a new
        `discount`: the name is taken from what the commit will bind (the live module has
        not got it yet), by `name = __livefix_import__("pkg.prices", "discount")`."""
        if isinstance(node, (ast.If, ast.Try)):
            for branch in branches(node):
                branch[:] = [new for inner in branch for new in self._imports_from_pending(inner)]
            return [node]
        if not isinstance(node, ast.ImportFrom) or node.module is None and not node.level:
            return [node]
        try:
            source = importlib.util.resolve_name("." * node.level + (node.module or ""), self.module.__package__ or "")
        except (ImportError, ValueError):
            return [node]
        new_names = self.pending.get(source, {})
        taken = [alias for alias in node.names if alias.name in new_names]
        if not taken:
            return [node]
        result: list[ast.stmt] = []
        rest = [alias for alias in node.names if alias.name not in new_names]
        if rest:
            result.append(ast.copy_location(ast.ImportFrom(module=node.module, names=rest, level=node.level), node))
        for alias in taken:
            call = ast.Call(func=ast.Name(id=compiler.IMPORT, ctx=ast.Load()),
                            args=[ast.Constant(source), ast.Constant(alias.name)], keywords=[])
            target = ast.Name(id=alias.asname or alias.name, ctx=ast.Store())
            result.append(ast.fix_missing_locations(ast.copy_location(ast.Assign(targets=[target], value=call), node)))
        return result

    def _import_pending(self, module: str, name: str) -> Any:
        return self.pending[module][name]

    # -- line numbers of code after the change -----------------------------------------

    def _shift_outside(self, diff: TextDiff) -> None:
        """Move the code of definitions between and after the changed hunks by as many
        lines as the hunks above them added or removed."""
        if not diff.moves_lines:
            return  # every hunk kept its line count: nothing outside them moved
        skip = {id(old) for _, old, _, _, _ in self._swaps} | self._shifted
        shift_at = diff.shift_at
        for function in self._file_functions():
            if id(function) not in skip:
                delta = shift_at(function.__code__.co_firstlineno)
                if delta:
                    self._shift(function, delta)

    def _overload_stubs(self, qualname: str) -> list[Any]:
        """The @overload stubs of `qualname` and what it contains ("" = the whole module), so
        that typing.get_overloads() shows them at their lines too (3.11+)."""
        return overload_stubs(self.name, qualname)

    def _shift(self, function: types.FunctionType, delta: int) -> None:
        self._shifted.add(id(function))
        if self._moves is None:
            self._moves = atomic.Moves()
            self.plan.mutations.append(self._moves)  # type: ignore[arg-type]
        self._moves.add(function, delta)
        self.plan.shifted += 1

    def _shift_unchanged(self, pair: Pair, values: list[Any], prefix: str) -> None:
        """An unchanged definition may still have moved (a longer method above it in the
        same class, lines added above an `if` block, a definition cut and pasted elsewhere,
        or code that already ran at other lines than the old text says): its code moves
        to the new text's lines."""
        values = [value for value in values if value is not None]
        if not values or pair.old is None or pair.new is None or not self.execute:
            return  # (prepare: moving lines is for the commit alone)
        text_first = compiler.first_line_node(pair.old).lineno
        name = getattr(pair.new, "name", None)
        if name:
            values.extend(self._overload_stubs(prefix + name))
        old_first = self._running_at(prefix + name, text_first) if name else text_first
        delta = compiler.first_line_node(pair.new).lineno - old_first
        if name and old_first != text_first:
            self.plan.resolved.add(prefix + name)
        if not delta:
            return
        old_last = (pair.old.end_lineno or text_first) + old_first - text_first
        # Every function of the file whose code lies in the definition's old lines moves with
        # it, found by position: first among what the definition's name holds; when nothing
        # there lies in those lines, it is shadowed by a later one of the same name (a
        # singledispatch `_` registration) and runs under no name: the whole module is looked at.
        # Functions an earlier call of it made (closures a factory returned) lie in its lines
        # too, held anywhere: for a definition with nested code, the whole module as well.
        own = [f for f in functions_of(values, self.name, set()) if f.__code__.co_filename == self.path]
        if not any(old_first <= f.__code__.co_firstlineno <= old_last for f in own) or any(
            CodeType in map(type, f.__code__.co_consts) for f in own
        ):
            own = self._file_functions()
        for function in own:
            code = function.__code__
            if old_first <= code.co_firstlineno <= old_last and id(function) not in self._shifted:
                self._shift(function, delta)

    def _file_functions(self) -> list[types.FunctionType]:
        """Every function object the module owns whose code comes from its file, each once
        (found once per plan)."""
        if self._functions is None:
            values = list(self.namespace.values())
            found: list[types.FunctionType] = []
            seen: set[int] = set()
            others: list[Any] = [*container_functions(values), *self._overload_stubs("")]
            for value in values:
                # The common case, a plain function that wraps nothing, without the general walk.
                if type(value) is types.FunctionType and value.__closure__ is None and not value.__dict__:
                    if id(value) not in seen and value.__code__.co_filename == self.path:
                        seen.add(id(value))
                        found.append(value)
                else:
                    others.append(value)
            found.extend(f for f in functions_of(others, self.name, seen) if f.__code__.co_filename == self.path)
            self._functions = found
        return self._functions

    # -- bookkeeping -------------------------------------------------------------------

    def _next_index(self) -> int:
        self._record_index += 1
        return self._record_index

    def _add_edit(
        self,
        qualname: str,
        kind: str,
        chunk: Chunk | None,
        node: ast.stmt | None,
        old_code: types.CodeType | None = None,
        statement: bool = False,
        old_node: ast.stmt | None = None,
    ) -> None:
        # The source each definition now runs is reported by the commit (prepare needs none)
        wanted = self.execute and chunk is not None and node is not None and not statement
        source = dedent_lines(statement_text(chunk, node)) if wanted else None  # type: ignore[arg-type]
        codes = tuple(codeutil.nested_codes(old_code)) if old_code is not None else ()
        self.plan.edits.append(
            Edit(self.name, qualname, kind, source=source, old_codes=codes, note="statement" if statement else None,
                 signature_changed=_parameters(old_node) != _parameters(node) if old_node is not None else False)
        )


def _names(classes: Iterable[Any]) -> str:
    return ", ".join(getattr(c, "__qualname__", repr(c)) for c in classes) or "object"


def _as_tuple(value: Any) -> tuple[Any, ...]:
    if isinstance(value, str):
        return (value,)
    try:
        return tuple(value)
    except TypeError:
        return (value,)


def _parameters(node: ast.stmt | None) -> tuple[object, ...] | None:
    """What callers depend on in a def's signature: names and kinds, which have defaults."""
    args = getattr(node, "args", None)
    if not isinstance(args, ast.arguments):
        return None
    return (
        [a.arg for a in args.posonlyargs], [a.arg for a in args.args], args.vararg and args.vararg.arg,
        [a.arg for a in args.kwonlyargs], args.kwarg and args.kwarg.arg, len(args.defaults),
        [d is not None for d in args.kw_defaults],
    )


def _is_overload(decorator: ast.expr) -> bool:
    """`@overload` / `@typing.overload` / `@t.overload`: a stub that never runs."""
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return (isinstance(target, ast.Name) and target.id == "overload") or (
        isinstance(target, ast.Attribute) and target.attr == "overload"
    )
