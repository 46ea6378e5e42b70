"""Giving a running function new code while it keeps its identity, and finding every
function object a module owns (through wrappers, descriptors and registries)."""

from __future__ import annotations

import types
from typing import Any, Iterable

from livefix.engine import atomic, codeutil
from livefix.errors import LivefixError


def swap_function(old: types.FunctionType, new: types.FunctionType, where: str, module: str, qualname: str) -> list[atomic.Mutation]:
    """The mutations that give `old` the behaviour of `new`, keeping `old`'s identity."""
    if old.__code__.co_freevars != new.__code__.co_freevars:
        added = sorted(set(new.__code__.co_freevars) - set(old.__code__.co_freevars))
        removed = sorted(set(old.__code__.co_freevars) - set(new.__code__.co_freevars))
        detail = []
        if "__class__" in added:
            detail.append("it now uses zero-argument super() or __class__, which needs a closure cell the running function does not have")
        other = [n for n in added if n != "__class__"] + removed
        if other:
            detail.append(f"its closure variables changed ({', '.join(other)})")
        raise LivefixError(
            "incompatible",
            f"{where}: {'; '.join(detail) or 'its closure changed'}; a running function's closure cannot be changed in place",
            module=module, qualname=qualname, reason="closure",
        )
    mutations = [
        atomic.set_attribute(old, "__code__", new.__code__, where),
        atomic.set_attribute(old, "__defaults__", new.__defaults__, where),
        atomic.set_attribute(old, "__kwdefaults__", new.__kwdefaults__, where),
        atomic.set_attribute(old, "__annotations__", new.__annotations__, where),
        atomic.set_attribute(old, "__doc__", new.__doc__, where),
    ]
    return mutations


def has_function(value: Any, name: str) -> bool:
    return codeutil.unwrap_function(value, name) is not None


def functions_of(values: Iterable[Any], module_name: str, seen: set[int]) -> Iterable[types.FunctionType]:
    for value in list(values):
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, types.FunctionType):
            yield value
            inner = _wrapped_functions(value)
            if inner:
                yield from functions_of(inner, module_name, seen)
        elif isinstance(value, (staticmethod, classmethod)):
            yield from functions_of([value.__func__], module_name, seen)
        elif isinstance(value, property):
            yield from functions_of([value.fget, value.fset, value.fdel], module_name, seen)
        elif isinstance(value, type) and value.__module__ == module_name:
            yield from functions_of(value.__dict__.values(), module_name, seen)
        elif hasattr(value, "__wrapped__") and not isinstance(value, type):
            yield from functions_of(_wrapped_functions(value), module_name, seen)


def _wrapped_functions(value: Any) -> list[Any]:
    """What a wrapper wraps: `__wrapped__`, singledispatch implementations, closure cells."""
    inner: list[Any] = []
    try:
        wrapped = value.__dict__.get("__wrapped__") if hasattr(value, "__dict__") else None
        if wrapped is None and not isinstance(value, types.FunctionType):
            wrapped = getattr(value, "__wrapped__", None)
        if wrapped is not None:
            inner.append(wrapped)
        func = getattr(value, "func", None)  # functools.cached_property, singledispatchmethod
        if func is not None:
            inner.append(func)
        registry = getattr(value, "registry", None)  # functools.singledispatch implementations
        if registry is not None and hasattr(registry, "values"):
            inner.extend(registry.values())
    except Exception:
        return inner
    for cell in getattr(value, "__closure__", None) or ():
        try:
            contents = cell.cell_contents
        except ValueError:
            continue
        if isinstance(contents, types.FunctionType):
            inner.append(contents)
    return inner


def codes_of(value: Any) -> tuple[types.CodeType, ...]:
    function = codeutil.unwrap_function(value, getattr(value, "__name__", "")) if value is not None else None
    return tuple(codeutil.nested_codes(function.__code__)) if function is not None else ()


def inner_code_pairs(old: types.CodeType, new: types.CodeType) -> list[tuple[types.CodeType, types.CodeType]]:
    """Old and new code of the functions and lambdas defined inside a replaced function,
    matched by qualified name and order (comprehension code never outlives its call)."""

    def inner(code: types.CodeType) -> dict[tuple[str, int], types.CodeType]:
        found: dict[tuple[str, int], types.CodeType] = {}
        counts: dict[str, int] = {}
        for nested in list(codeutil.nested_codes(code))[1:]:
            name = nested.co_name
            if name.startswith("<") and name != "<lambda>":
                continue
            key = getattr(nested, "co_qualname", name)
            counts[key] = counts.get(key, 0) + 1
            found[(key, counts[key])] = nested
        return found

    before, after = inner(old), inner(new)
    return [(code, after[key]) for key, code in before.items() if key in after and after[key] is not code]
