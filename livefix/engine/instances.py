"""Live instances of a changed class: what the new code needs that they lack, and migrations.

Common Lisp has `update-instance-for-redefined-class`, Erlang `code_change`; Python
reloaders leave existing objects as they were, so a new `__init__` that sets `self.discount`
makes every method reading it raise AttributeError on the instances made before the fix.

- `find_gaps` (prepare): attributes the changed methods read or set on `self` that the
  old class never set and the class does not provide, counted on the live instances that
  lack them. Said in words and counted as a risk until a migration covers the class.
- `Migrations` (validated at prepare): per class, defaults (`{"discount": 0}`, set where an
  instance lacks the attribute) or a function `migrate(obj)` run on every live instance of
  the class and its subclasses.
- `InstanceMigration` (commit): finds the instances and migrates them before the code swap,
  then, inside the swap's atomic window, the ones made in between; a failing migration
  restores every instance it touched; rollback restores their previous attributes.

Finding instances walks the collector's objects once (`gc.get_objects()`); the cyclic
collector stays off from that walk to the swap, so every object made in between is still in
its youngest generation and the in-window catch-up walks only that (a collection run by hand
in between is noticed through `gc.callbacks`, and the catch-up walks everything again).
"""

from __future__ import annotations

import ast
import gc
import sys
import textwrap
import time
import types
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from livefix.engine import atomic
from livefix.engine.dataclass_fields import Factory, FieldChange
from livefix.errors import LivefixError

_ABSENT = object()


# -- what the new code needs -----------------------------------------------------------


@dataclass
class ClassGap:
    """Attributes a changed class's new code uses that its live instances lack."""

    module: str
    qualname: str
    instances: int
    lacking: dict[str, int]  # attribute -> live instances (the class's and its subclasses') lacking it

    def describe(self) -> str:
        most = max(self.lacking.values())
        names = ", ".join(f"`{name}`" for name in self.lacking)
        return (
            f"{most} live `{self.qualname}` instance{'s' if most != 1 else ''} lack{'' if most != 1 else 's'} {names}; "
            "pass a migration or they will raise AttributeError"
        )

    def to_wire(self) -> dict[str, Any]:
        return {"module": self.module, "qualname": self.qualname, "instances": self.instances, "lacking": dict(self.lacking)}


def find_gaps(module: types.ModuleType, old_text: str | None, new_text: str, changed: Iterable[str]) -> list[ClassGap]:
    """The gaps of the classes of `module` whose methods `changed` (qualnames) names."""
    by_class: dict[str, set[str]] = {}
    for qualname in changed:
        owner, _, name = qualname.rpartition(".")
        if owner:
            by_class.setdefault(owner, set()).add(name)
    classes = {q: c for q in by_class if isinstance(c := _lookup(module, q), type)}
    if not classes:
        return []
    new_nodes = _class_nodes(new_text)
    old_nodes = _class_nodes(old_text) if old_text else {}
    needed: dict[str, tuple[type, list[str]]] = {}
    for qualname, cls in classes.items():
        node = new_nodes.get(qualname)
        if node is None:
            continue
        used: set[str] = set()
        for member in node.body:
            if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)) and member.name in by_class[qualname]:
                loads, stores = _self_attributes(member)
                used |= loads | (stores if member.name == "__init__" else set())
        known = set(getattr(cls, "__static_attributes__", ()))  # 3.13: every `self.x =` of the class body
        old = old_nodes.get(qualname)
        if old is not None:
            for member in ast.walk(old):
                if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    known |= _self_attributes(member)[1]
        provided = _bound_in_body(node)
        names = sorted(n for n in used if n not in known and n not in provided and not _class_provides(cls, n))
        if names:
            needed[qualname] = (cls, names)
    if not needed:
        return []
    found = live_instances([cls for cls, _ in needed.values()])
    gaps = []
    for qualname, (cls, names) in needed.items():
        objects = found.get(cls, [])
        lacking = {}
        for name in names:
            count = sum(1 for obj in objects if name not in _dict_of(obj))
            if count:
                lacking[name] = count
        if lacking:
            gaps.append(ClassGap(module.__name__, qualname, len(objects), lacking))
    return gaps


def _self_attributes(function: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[set[str], set[str]]:
    """(read, set) attribute names on the method's first parameter."""
    if any(isinstance(d, ast.Name) and d.id in ("staticmethod", "classmethod") for d in function.decorator_list):
        return set(), set()
    positional = function.args.posonlyargs + function.args.args
    if not positional:
        return set(), set()
    me = positional[0].arg
    loads: set[str] = set()
    stores: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == me:
            (stores if isinstance(node.ctx, (ast.Store, ast.Del)) else loads).add(node.attr)
    return loads, stores


def _bound_in_body(node: ast.ClassDef) -> set[str]:
    names = set()
    for member in node.body:
        if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(member.name)
        elif isinstance(member, ast.Assign):
            names |= {t.id for t in member.targets if isinstance(t, ast.Name)}
        elif isinstance(member, ast.AnnAssign) and isinstance(member.target, ast.Name) and member.value is not None:
            names.add(member.target.id)
    return names


def _class_provides(cls: type, name: str) -> bool:
    return any(name in klass.__dict__ for klass in cls.__mro__) or name in ("__dict__", "__class__")


def _class_nodes(text: str | None) -> dict[str, ast.ClassDef]:
    try:
        tree = ast.parse(text or "")
    except SyntaxError:
        return {}
    found: dict[str, ast.ClassDef] = {}

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                found[prefix + node.name] = node
                visit(node.body, prefix + node.name + ".")
            elif isinstance(node, (ast.If, ast.Try)):  # classes defined under a guard
                visit(node.body, prefix)

    visit(tree.body, "")
    return found


def _lookup(module: types.ModuleType, qualname: str) -> Any:
    value: Any = module
    for part in qualname.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


def _dict_of(obj: Any) -> dict[str, Any]:
    try:
        return object.__getattribute__(obj, "__dict__")
    except AttributeError:
        return {}


def live_instances(classes: list[type]) -> dict[type, list[Any]]:
    """Every object whose type is one of `classes` or a subclass, keyed by the class asked for."""
    owners: dict[type, type] = {}
    for cls in classes:
        for klass in _with_subclasses(cls):
            owners.setdefault(klass, cls)
    found: dict[type, list[Any]] = {cls: [] for cls in classes}
    for obj in gc.get_objects():
        owner = owners.get(type(obj))
        if owner is not None:
            found[owner].append(obj)
    return found


def _with_subclasses(cls: type) -> list[type]:
    result, todo = [], [cls]
    while todo:
        klass = todo.pop()
        if klass in result:
            continue
        result.append(klass)
        try:
            todo.extend(type.__subclasses__(klass))
        except TypeError:
            pass
    return result


# -- what the user said to do ----------------------------------------------------------


@dataclass
class Migrator:
    """The migration of one class: defaults for attributes instances lack, and/or a function."""

    module: types.ModuleType
    qualname: str
    cls: type
    defaults: dict[str, Any] = field(default_factory=dict)
    function: Callable[[Any], Any] | None = None
    given: bool = True  # False: only a dataclass's new field defaults, nobody passed a migration

    @property
    def label(self) -> str:
        return f"{self.module.__name__}.{self.qualname}"


def coerce_migrations(raw: Any, modules: list[types.ModuleType]) -> dict[tuple[str, str], Migrator]:
    """Check `migrate=` against the modules the change touches; refuse before anything runs."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise LivefixError("invalid", '`migrate` must map class names to a migration: {"Cart": {"discount": 0}}')
    result: dict[tuple[str, str], Migrator] = {}
    for key, spec in raw.items():
        if not isinstance(key, str) or not key:
            raise LivefixError("invalid", f"`migrate` keys must be class names, not {key!r}")
        module_name, _, qualname = key.rpartition(":")
        candidates = [m for m in modules if not module_name or m.__name__ == module_name]
        hits = [(m, c) for m in candidates if isinstance(c := _lookup(m, qualname), type)]
        if not hits:
            where = module_name or ", ".join(m.__name__ for m in modules) or "the changed modules"
            raise LivefixError(
                "invalid", f"`migrate` names {key!r}, which is not a class in {where} (the change's modules)",
                qualname=qualname,
            )
        if len(hits) > 1:
            raise LivefixError(
                "invalid", f"`migrate` key {key!r} is a class in several changed modules "
                f"({', '.join(m.__name__ for m, _ in hits)}): write it as module:{qualname}",
            )
        module, cls = hits[0]
        migrator = Migrator(module, qualname, cls)
        if isinstance(spec, dict):
            for name in spec:
                if not isinstance(name, str) or not name.isidentifier():
                    raise LivefixError("invalid", f"`migrate[{key!r}]`: attribute names must be identifiers, not {name!r}")
            migrator.defaults = dict(spec)
        elif isinstance(spec, str):
            migrator.function = _compile_migration(spec, module, key)
        elif callable(spec):
            migrator.function = spec
        else:
            raise LivefixError(
                "invalid", f"`migrate[{key!r}]` must be attribute defaults ({{\"discount\": 0}}) or the source of "
                "`def migrate(obj): ...`",
            )
        result[(module.__name__, qualname)] = migrator
    return result


def _compile_migration(source: str, module: types.ModuleType, key: str) -> Callable[[Any], Any]:
    try:
        code = compile(textwrap.dedent(source), f"<livefix migration {key}>", "exec", dont_inherit=True)
    except SyntaxError as error:
        raise LivefixError(
            "syntax", f"the migration for {key} does not parse: {error.msg} (line {error.lineno})", qualname=key
        ) from None
    definitions = [c for c in code.co_consts if isinstance(c, types.CodeType) and c.co_name == "migrate"]
    if not definitions:
        raise LivefixError("invalid", f"the migration for {key} must define `def migrate(obj): ...`", qualname=key)
    # Defined, not run, at prepare: the function's globals are the module's, as if written there.
    scope: dict[str, Any] = {}
    exec(code, module.__dict__, scope)  # noqa: S102 - the user's own migration, like the fix itself
    function = scope.get("migrate")
    if not callable(function):
        raise LivefixError("invalid", f"the migration for {key} must define `def migrate(obj): ...`", qualname=key)
    return function


# -- running them ------------------------------------------------------------------------


@dataclass
class _Touched:
    """One migrated instance: what its attributes were and became (`_ABSENT` = not set)."""

    ref: Any  # a weak reference when the class allows one: rollback does not keep instances alive
    before: dict[str, Any]
    after: dict[str, Any]

    def target(self) -> Any:
        return self.ref() if isinstance(self.ref, weakref.ref) else self.ref


class InstanceMigration:
    """Migrates the live instances of the classes in `migrators` for one commit."""

    def __init__(self, migrators: list[Migrator]) -> None:
        self.migrators = migrators
        self.touched: list[_Touched] = []
        self.counts: dict[str, int] = {m.label: 0 for m in migrators}
        self.pause_ms = 0.0  # inside the swap's atomic window: the catch-up
        self.scan_ms = 0.0  # before the swap: every object walked, every instance migrated
        self._seen: set[int] = set()
        self._owners: dict[type, Migrator] = {}
        for migrator in migrators:
            for klass in _with_subclasses(migrator.cls):
                self._owners.setdefault(klass, migrator)
        self._collected = False
        self._gc_was_enabled = False
        self._started = False

    @classmethod
    def for_plan(cls, migrations: dict[tuple[str, str], Migrator], field_changes: list[FieldChange]) -> "InstanceMigration | None":
        merged = dict(migrations)
        for change in field_changes:
            key = (change.module, change.qualname)
            defaults = change.defaults()
            given = merged.get(key)
            if given is None:
                module = sys.modules[change.module]
                merged[key] = Migrator(module, change.qualname, change.cls, defaults, given=False)
            else:  # what the user said wins over the field's default
                given.defaults = {**defaults, **given.defaults}
        return cls(list(merged.values())) if merged else None

    # -- phases --------------------------------------------------------------------------

    def start(self) -> None:
        """Migrate every live instance now (before the swap); on failure restore them and raise."""
        self._gc_was_enabled = gc.isenabled()
        gc.disable()
        gc.callbacks.append(self._on_collection)
        self._started = True
        began = time.perf_counter()
        try:
            self._migrate(gc.get_objects())
            self.scan_ms = (time.perf_counter() - began) * 1000
        except BaseException:
            self.restore()
            self.end()
            raise

    def catch_up(self) -> None:
        """Inside the swap's atomic window: the instances made since `start`."""
        began = time.perf_counter()
        # Thread switches are rare inside, but a migration function is Python code: make
        # them rarer still, so new code meets migrated objects.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1.0)
        try:
            self._migrate(gc.get_objects() if self._collected else gc.get_objects(generation=0))
        finally:
            sys.setswitchinterval(interval)
            self.pause_ms = (time.perf_counter() - began) * 1000

    def end(self) -> None:
        if not self._started:
            return
        self._started = False
        try:
            gc.callbacks.remove(self._on_collection)
        except ValueError:
            pass
        if self._gc_was_enabled:
            gc.enable()

    def restore(self) -> None:
        """Every touched instance back to its attributes before the migration, newest first."""
        for touched in reversed(self.touched):
            obj = touched.target()
            if obj is not None:
                _assign(_dict_of(obj), touched.before)

    def reapply(self) -> None:
        for touched in self.touched:
            obj = touched.target()
            if obj is not None:
                _assign(_dict_of(obj), touched.after)

    def mutation(self) -> atomic.Mutation:
        """The step inside the swap's window (catch-up) whose undo restores every instance."""
        return atomic.call_only(self.catch_up, self.restore, "live instances")

    def kept(self) -> atomic.Mutation:
        """What the generation keeps: redo = the attributes migrated, undo = the previous ones."""
        return atomic.call_only(self.reapply, self.restore, "live instances")

    def summary(self) -> list[dict[str, Any]]:
        result = []
        for migrator in self.migrators:
            attributes = sorted({n for t in self.touched for n in t.after} if migrator.function else migrator.defaults)
            result.append({
                "class": migrator.label, "instances": self.counts[migrator.label],
                "attributes": attributes, "migration": "given" if migrator.given else "dataclass defaults",
                "scanMs": round(self.scan_ms, 3), "windowMs": round(self.pause_ms, 3),
            })
        return result

    # -- one pass ----------------------------------------------------------------------

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        self._collected = True

    def _migrate(self, objects: list[Any]) -> None:
        owners = self._owners
        for obj in objects:
            migrator = owners.get(type(obj))
            if migrator is None or id(obj) in self._seen:
                continue
            self._seen.add(id(obj))
            self._migrate_one(obj, migrator)

    def _migrate_one(self, obj: Any, migrator: Migrator) -> None:
        namespace = _dict_of(obj)
        snapshot = dict(namespace)
        try:
            for name, value in migrator.defaults.items():
                if name not in namespace:
                    namespace[name] = value.make() if isinstance(value, Factory) else value
            if migrator.function is not None:
                migrator.function(obj)
        except Exception as error:
            _assign(namespace, {k: snapshot.get(k, _ABSENT) for k in set(namespace) | set(snapshot)})
            raise LivefixError(
                "migrationFailed",
                f"the migration of {migrator.label} raised {type(error).__name__}: {error} on a live instance "
                f"({self.counts[migrator.label]} migrated before it); every instance and the code were restored",
                qualname=migrator.qualname, module=migrator.module.__name__,
            ) from None
        keys = {k for k in set(namespace) | set(snapshot) if namespace.get(k, _ABSENT) is not snapshot.get(k, _ABSENT)}
        self.counts[migrator.label] += 1
        if keys:
            try:
                ref: Any = weakref.ref(obj)
            except TypeError:
                ref = obj
            self.touched.append(_Touched(
                ref, {k: snapshot.get(k, _ABSENT) for k in keys}, {k: namespace.get(k, _ABSENT) for k in keys}
            ))


def _assign(namespace: dict[str, Any], values: dict[str, Any]) -> None:
    for name, value in values.items():
        if value is _ABSENT:
            namespace.pop(name, None)
        else:
            namespace[name] = value


__all__ = ["ClassGap", "InstanceMigration", "Migrator", "coerce_migrations", "find_gaps", "live_instances"]
