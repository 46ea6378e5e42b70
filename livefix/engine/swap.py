"""Giving a running function new code while it keeps its identity, and finding every
function object a module owns (through wrappers, descriptors and registries)."""

from __future__ import annotations

import functools
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
    mutations = [atomic.set_attribute(old, "__code__", new.__code__, where)]
    for name in ("__defaults__", "__kwdefaults__", "__annotations__", "__doc__"):
        value = getattr(new, name)
        if not _same(getattr(old, name), value):  # an equal value changes nothing: not kept either
            mutations.append(atomic.set_attribute(old, name, value, where))
    return mutations


def _same(old: Any, new: Any) -> bool:
    """Equal values of a function attribute, told apart by type too (1 == True, 0.0 == 0)."""
    if old is new:
        return True
    try:
        return type(old) is type(new) and bool(old == new) and _same_types(old, new)
    except Exception:  # an annotation or default whose __eq__ raises: assign it
        return False


def _same_types(old: Any, new: Any) -> bool:
    if isinstance(old, tuple):
        return len(old) == len(new) and all(type(a) is type(b) and (a is b or _plain(a)) for a, b in zip(old, new))
    if isinstance(old, dict):
        return all(type(old[k]) is type(new[k]) and (old[k] is new[k] or _plain(old[k])) for k in old)
    return True


def _plain(value: Any) -> bool:
    """Values whose equality means sameness (a default list must stay the same object)."""
    return isinstance(value, (str, bytes, int, float, complex, bool, type(None)))


def has_function(value: Any, name: str) -> bool:
    return codeutil.unwrap_function(value, name) is not None


_CONTAINERS = (dict, list, tuple, set, frozenset)


def container_functions(values: Iterable[Any], limit: int = 10_000) -> list[types.FunctionType]:
    """Functions held directly in a module's plain containers (`HANDLERS = {"neg": lambda x: -x}`,
    a list of callbacks): one level deep, small containers only."""
    found: list[types.FunctionType] = []
    for value in list(values):
        if type(value) in _CONTAINERS and len(value) <= limit:
            items = value.values() if type(value) is dict else value
            found.extend(item for item in list(items) if type(item) is types.FunctionType)
    return found


def functions_of(values: Iterable[Any], module_name: str, seen: set[int], depth: int = 0) -> Iterable[types.FunctionType]:
    """The function objects reachable from `values` (a module's or a class's namespace):
    functions, what descriptors and wrappers hold (staticmethod, classmethod, property,
    bound methods, functools.wraps and lru_cache, singledispatch, partial, partialmethod,
    cached_property, singledispatchmethod, curry-style objects that keep it in `func`), and
    the members of the module's own classes. Callers keep those whose code is in the
    module's file, so this may also yield other modules' functions.

    Objects of other kinds are looked into through at most 8 of them in a row (`depth`
    counts them): a property can make a new object each time it is read."""
    for value in list(values):
        if value is None or id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, types.FunctionType):
            yield value
            if value.__dict__ or value.__closure__:  # most functions wrap nothing: no call
                inner = [found for found in _wrapped_functions(value) if id(found) not in seen]
                if inner:
                    yield from functions_of(inner, module_name, seen, depth)
        elif isinstance(value, (staticmethod, classmethod, types.MethodType)):
            yield from functions_of([value.__func__], module_name, seen, depth)
        elif isinstance(value, property):
            yield from functions_of([value.fget, value.fset, value.fdel], module_name, seen, depth)
        elif isinstance(value, type):
            if value.__module__ == module_name:
                yield from functions_of(value.__dict__.values(), module_name, seen, depth)
        elif isinstance(value, (int, float, complex, str, bytes, tuple, list, dict, set, frozenset, types.ModuleType,
                                types.BuiltinFunctionType, types.GetSetDescriptorType, types.MemberDescriptorType,
                                types.WrapperDescriptorType, types.MethodDescriptorType, types.MethodWrapperType)):
            continue  # data, C code, the slots of a class's __dict__: not wrappers
        elif depth < 8:
            inner = [found for found in _wrapped_functions(value) if id(found) not in seen]
            if inner:
                yield from functions_of(inner, module_name, seen, depth + 1)


def _wrapped_functions(value: Any) -> list[Any]:
    """What a wrapper holds: `__wrapped__` (functools.wraps, lru_cache), `func` (partial,
    partialmethod, cached_property, singledispatchmethod, curry-style objects, even behind a
    property), the functions among a partial's arguments, singledispatch implementations,
    and what a wrapper function made without functools.wraps closes over.

    An attribute of an object of another kind is read only where its class or its own
    dictionary defines it, never through a `__getattr__` fallback: proxies, mocks and RPC
    stubs answer every name (with a new object each time; a mock would grow a child). A read
    that raises (a `func` property of a proxy used outside its context) counts as absent."""

    def defines(obj: Any, name: str) -> bool:
        try:
            return any(name in klass.__dict__ for klass in type(obj).__mro__) or name in object.__getattribute__(obj, "__dict__")
        except Exception:  # no __dict__, or an odd class
            return False

    inner: list[Any] = []
    if isinstance(value, types.FunctionType):
        attributes = value.__dict__
        inner.extend(found for found in (attributes.get("__wrapped__"), attributes.get("func")) if found is not None)
        registry = attributes.get("registry")  # functools.singledispatch implementations
        if isinstance(registry, (dict, types.MappingProxyType)):
            inner.extend(registry.values())
        for cell in value.__closure__ or ():
            try:
                contents = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if isinstance(contents, (types.FunctionType, staticmethod, classmethod, types.MethodType, functools.partial,
                                     functools.partialmethod, functools.cached_property, functools.singledispatchmethod)):
                inner.append(contents)
            elif not isinstance(contents, type) and (defines(contents, "__wrapped__") or defines(contents, "func")):
                inner.append(contents)  # a wrapper object the decorator closes over (a curry)
        return inner
    if isinstance(value, (functools.partial, functools.partialmethod, functools.cached_property, functools.singledispatchmethod)):
        inner.append(value.func)
        if isinstance(value, functools.singledispatchmethod):
            inner.append(value.dispatcher)  # a function: its registry holds the registered methods
        elif not isinstance(value, functools.cached_property):
            arguments = [*value.args, *(value.keywords or {}).values()]
            inner.extend(argument for argument in arguments if isinstance(argument, types.FunctionType))
        return inner
    for name in ("__wrapped__", "func"):
        try:
            found = getattr(value, name) if defines(value, name) else None
        except Exception:
            continue
        if found is not None:
            inner.append(found)
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
