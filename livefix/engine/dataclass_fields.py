"""A live dataclass whose fields change: regenerate what `@dataclass` made, keep the class.

Every Python reloader refuses (or silently breaks) a dataclass that gains a field: the
generated `__init__`, `__repr__`, `__eq__`, `__match_args__` and `__dataclass_fields__`
were made for the old fields. livefix runs `dataclasses.dataclass` with the class's own
parameters on a scratch class built from the new body, then moves exactly what the
decorator generated onto the live class (the class keeps its identity, so `isinstance`,
pickling by reference and every held reference stay right). Live instances get the new
fields' defaults from `instances.py`, in the same generation.

A field removed or retyped changes what existing instances hold: refused unless the change
carries a migration for the class (`migrate={"Cart": ...}`), which then says what they hold.
"""

from __future__ import annotations

import dataclasses
import types
from dataclasses import dataclass
from typing import Any

from livefix.engine import atomic
from livefix.errors import LivefixError

# What `@dataclass` may generate on a class (3.10-3.13); anything the body defines itself
# is the body's, patched member by member like any class.
_GENERATED = (
    "__init__", "__repr__", "__eq__", "__lt__", "__le__", "__gt__", "__ge__", "__hash__",
    "__setattr__", "__delattr__", "__match_args__", "__replace__", "__doc__",
)


@dataclass(frozen=True)
class FieldChange:
    """What changed in one live dataclass's fields."""

    module: str
    qualname: str
    cls: type
    added: dict[str, dataclasses.Field]  # type: ignore[type-arg]
    removed: tuple[str, ...]
    retyped: tuple[str, ...]

    def defaults(self) -> dict[str, Any]:
        """The added fields every live instance receives: name -> value or a zero-argument factory
        (marked by `Factory`), for fields that have one."""
        result: dict[str, Any] = {}
        for name, spec in self.added.items():
            if spec.default is not dataclasses.MISSING:
                result[name] = spec.default
            elif spec.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                result[name] = Factory(spec.default_factory)  # type: ignore[misc]
        return result

    def without_default(self) -> list[str]:
        return [name for name, spec in self.added.items()
                if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING]  # type: ignore[misc]


@dataclass(frozen=True)
class Factory:
    """A default made per instance (`field(default_factory=list)`)."""

    make: Any


def fields_changed(cls: type, namespace: dict[str, Any]) -> bool:
    """Whether the new class body declares other fields than the live dataclass has."""
    old = {f.name: f for f in dataclasses.fields(cls)}
    annotations = namespace.get("__annotations__", {})
    own = cls.__dict__.get("__annotations__", {})
    if list(annotations) != list(own):
        return True
    for name in annotations:
        if name in old and name in namespace and _default_of(namespace[name]) != _default_of(old[name]):
            return True
        if name in old and annotations[name] != own.get(name):
            return True
    return False


def regenerate(
    cls: type, bases: tuple[Any, ...], namespace: dict[str, Any], module: str, qualname: str, migrated: bool
) -> tuple[FieldChange, list[atomic.Mutation]]:
    """The mutations that give the live dataclass `cls` the fields of its new body, or refuse."""
    label = f"{module}.{qualname}"
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    if getattr(params, "slots", False) or "__slots__" in cls.__dict__:
        raise _refuse(module, qualname, "its instances have __slots__, fixed when the class was created: restart to apply this")
    if type(cls) is not type:
        raise _refuse(module, qualname, f"its metaclass {type(cls).__qualname__} would run again for a scratch copy: restart to apply this")
    scratch = _scratch_dataclass(cls, bases, namespace, module, qualname)
    old_fields = {f.name: f for f in dataclasses.fields(cls)}
    new_fields = {f.name: f for f in dataclasses.fields(scratch)}
    added = {name: spec for name, spec in new_fields.items() if name not in old_fields}
    removed = tuple(name for name in old_fields if name not in new_fields)
    retyped = tuple(
        name for name in old_fields
        if name in new_fields and (new_fields[name].type != old_fields[name].type
                                   or _default_of(new_fields[name]) != _default_of(old_fields[name]))
    )
    change = FieldChange(module, qualname, cls, added, removed, retyped)
    if not migrated:
        problems = []
        if removed:
            problems.append(f"removes field{'s' if len(removed) > 1 else ''} {', '.join(removed)}")
        if retyped:
            problems.append(f"changes the type or default of {', '.join(retyped)}")
        if change.without_default():
            problems.append(f"adds {', '.join(change.without_default())} without a default")
        if problems:
            raise _refuse(
                module, qualname,
                f"the new body {' and '.join(problems)}: live instances hold the old fields; pass a migration for "
                f"{qualname} (migrate={{{qualname!r}: ...}}) to say what they hold, or restart",
            )
    mutations: list[atomic.Mutation] = []
    for name in (*_GENERATED, "__dataclass_fields__", "__dataclass_params__", "__annotations__"):
        generated = name in scratch.__dict__ and scratch.__dict__[name] is not namespace.get(name, _ABSENT)
        if name == "__annotations__":
            generated = "__annotations__" in namespace
        if name == "__doc__" and namespace.get("__doc__") is not None:
            continue  # a docstring of the body's own: patched with the body
        if generated:
            value = _rebind(scratch.__dict__[name], scratch, cls)
            if cls.__dict__.get(name, _ABSENT) is not value:
                mutations.append(atomic.set_attribute(cls, name, value, f"{label}.{name}"))
        elif name in cls.__dict__ and name not in namespace and name in _GENERATED and name != "__doc__":
            mutations.append(atomic.delete_attribute(cls, name, f"{label}.{name}"))
    # Class attributes holding defaults: `x: int = 0` keeps 0 on the class, a default_factory
    # field keeps nothing (dataclass deleted the Field object the body assigned).
    for name in new_fields:
        if name in scratch.__dict__:
            if namespace.get(name, _ABSENT) is scratch.__dict__[name]:
                continue  # the body's own assignment, which the class patch sets already
            if cls.__dict__.get(name, _ABSENT) is not scratch.__dict__[name]:
                mutations.append(atomic.set_attribute(cls, name, scratch.__dict__[name], f"{label}.{name}"))
        elif name in cls.__dict__ or isinstance(namespace.get(name), dataclasses.Field):
            mutations.append(_delete_later(cls, name, f"{label}.{name}"))
    return change, mutations


def _scratch_dataclass(cls: type, bases: tuple[Any, ...], namespace: dict[str, Any], module: str, qualname: str) -> type:
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    options: dict[str, Any] = {
        name: getattr(params, name) for name in ("init", "repr", "eq", "order", "unsafe_hash", "frozen")
    }
    for name in ("match_args", "kw_only"):  # 3.12+ records them; 3.10/3.11 are read off the class
        if hasattr(params, name):
            options[name] = getattr(params, name)
    if "match_args" not in options:
        options["match_args"] = "__match_args__" in cls.__dict__
    if "kw_only" not in options:
        own = [f for f in dataclasses.fields(cls) if f.name in cls.__dict__.get("__annotations__", {})]
        options["kw_only"] = bool(own) and all(f.kw_only is True for f in own)
    # `__classcell__` would point the body's zero-argument super() at the scratch class.
    body = {k: v for k, v in namespace.items() if k != "__classcell__"}
    body["__module__"] = module
    body["__qualname__"] = qualname
    try:
        scratch = type(cls.__name__, tuple(bases) or cls.__bases__, body)
        return dataclasses.dataclass(**options)(scratch)
    except Exception as error:
        raise _refuse(module, qualname, f"@dataclass refused the new fields: {type(error).__name__}: {error}") from None


def _rebind(value: Any, scratch: type, cls: type) -> Any:
    """Generated methods that name their class (a frozen class's __setattr__ checks
    `type(self) is cls`) must name the live class, not the scratch copy: their closure cells
    are new objects nobody else holds, so pointing them at `cls` changes nothing live."""
    function = value if isinstance(value, types.FunctionType) else None
    if function is not None and function.__closure__:
        for cell in function.__closure__:
            try:
                if cell.cell_contents is scratch:
                    cell.cell_contents = cls
            except ValueError:  # an empty cell
                continue
    if isinstance(value, dict) and value and all(isinstance(v, dataclasses.Field) for v in value.values()):
        return dict(value)
    return value


def _delete_later(cls: type, name: str, label: str) -> atomic.Mutation:
    """Delete `cls.name` at commit, whatever an earlier step of the same commit set it to
    (the class patch set the body's `Field` object); undo puts back what the step removed."""
    removed: list[Any] = []

    def forward(target: type = cls, key: str = name) -> None:
        removed[:] = [target.__dict__.get(key, _ABSENT)]
        if removed[0] is not _ABSENT:
            type.__delattr__(target, key)

    def backward(target: type = cls, key: str = name) -> None:
        if removed and removed[0] is not _ABSENT:
            type.__setattr__(target, key, removed[0])

    return atomic.call_only(forward, backward, label)


def _default_of(value: Any) -> Any:
    if isinstance(value, dataclasses.Field):
        return value.default if value.default is not dataclasses.MISSING else value.default_factory  # type: ignore[misc]
    return value


def _refuse(module: str, qualname: str, detail: str) -> LivefixError:
    return LivefixError(
        "incompatible", f"{module}.{qualname}: {detail}", module=module, qualname=qualname, reason="dataclassFields"
    )


_ABSENT = object()
