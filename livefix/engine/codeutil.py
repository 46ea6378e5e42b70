"""Helpers on CPython code and function objects that differ across 3.10 .. 3.13."""

from __future__ import annotations

import functools
import types
from typing import Any, Iterator

CodeType = types.CodeType
FunctionType = types.FunctionType

_VARARGS = 0x04  # inspect.CO_VARARGS
_VARKEYWORDS = 0x08  # inspect.CO_VARKEYWORDS
_GENERATOR_LIKE = 0x20 | 0x80 | 0x100 | 0x200  # generator, coroutine, iterable coroutine, async generator


def nested_codes(code: CodeType) -> Iterator[CodeType]:
    """The code object and every code object nested in its constants (lambdas, inner defs,
    comprehensions before 3.12), depth first."""
    stack = [code]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(const for const in current.co_consts if isinstance(const, CodeType))


def shift_lines(code: CodeType, delta: int, made: dict[tuple[int, int], CodeType] | None = None) -> CodeType:
    """The same code, `delta` lines further down the file.

    Since 3.10 the line table is relative to co_firstlineno, so moving co_firstlineno moves
    every line; nested code objects carry their own co_firstlineno and must move too.
    `made` keeps one moved copy per code object: closures a factory made share its inner
    code object, and must still share it once moved (a later fix of the factory finds the
    closures by that object)."""
    if delta == 0:
        return code
    key = (id(code), delta)
    if made is not None and key in made:
        return made[key]
    if CodeType not in map(type, code.co_consts):  # no nested code (most functions): one copy
        moved = code.replace(co_firstlineno=code.co_firstlineno + delta)
    else:
        consts = tuple(shift_lines(c, delta, made) if isinstance(c, CodeType) else c for c in code.co_consts)
        moved = code.replace(co_firstlineno=code.co_firstlineno + delta, co_consts=consts)
    if made is not None:
        made[key] = moved
    return moved


def signature_key(code: CodeType, defaults: Any, kwdefaults: Any) -> tuple[Any, ...]:
    """What callers depend on: parameter names and kinds, which ones have defaults."""
    positional = code.co_argcount
    names = code.co_varnames[: positional + code.co_kwonlyargcount]
    star = bool(code.co_flags & _VARARGS)
    double_star = bool(code.co_flags & _VARKEYWORDS)
    return (
        names,
        code.co_posonlyargcount,
        positional,
        star,
        double_star,
        len(defaults or ()),
        tuple(sorted(kwdefaults or {})),
    )


def describe_signature(code: CodeType) -> str:
    positional = code.co_argcount
    params = list(code.co_varnames[:positional])
    index = positional + code.co_kwonlyargcount
    if code.co_flags & _VARARGS:
        params.append("*" + code.co_varnames[index])
        index += 1
    elif code.co_kwonlyargcount:
        params.append("*")
    params.extend(code.co_varnames[positional : positional + code.co_kwonlyargcount])
    if code.co_flags & _VARKEYWORDS:
        params.append("**" + code.co_varnames[index])
    return f"({', '.join(params)})"


def is_generator_like(code: CodeType) -> bool:
    return bool(code.co_flags & _GENERATOR_LIKE)


def unwrap_function(obj: Any, name: str) -> FunctionType | None:
    """The plain Python function behind a decorated object whose definition is named `name`.

    Follows `__wrapped__` (functools.wraps, lru_cache, singledispatch), `__func__`
    (staticmethod, classmethod, bound methods), `func` (partial, partialmethod,
    cached_property, singledispatchmethod, curry-style objects, even behind a property) and
    the closure cells of wrappers made without functools.wraps, and returns the innermost
    function whose code is named `name`. Attributes are read without `__getattr__` (a
    proxy answers every name), a read that raises counts as absent, and at most 64 objects
    are looked at (a property may make a new object each time)."""

    def defines(value: Any, attr: str) -> bool:  # in its class or its own __dict__, not via __getattr__
        try:
            return any(attr in klass.__dict__ for klass in type(value).__mro__) or attr in object.__getattribute__(value, "__dict__")
        except Exception:
            return False

    seen: set[int] = set()
    candidates = [obj]
    while candidates and len(seen) < 64:
        current = candidates.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, FunctionType):
            if current.__code__.co_name == name:
                return current
            for cell in current.__closure__ or ():
                try:
                    contents = cell.cell_contents
                except ValueError:  # empty cell
                    continue
                if isinstance(contents, (FunctionType, staticmethod, classmethod, functools.partial, functools.partialmethod,
                                         functools.cached_property, functools.singledispatchmethod)):
                    candidates.append(contents)
                elif not isinstance(contents, type) and any(defines(contents, attr) for attr in ("__wrapped__", "func")):
                    candidates.append(contents)  # a wrapper object the decorator closes over (a curry)
        if isinstance(current, type):
            continue
        for attr in ("__wrapped__", "__func__", "func"):  # func: partial, cached_property, singledispatchmethod, curry
            try:
                inner = object.__getattribute__(current, attr)
            except Exception:  # absent, or a property that raised
                inner = None
            if inner is not None:
                candidates.append(inner)
    return None


def lru_wrappers(obj: Any) -> list[Any]:
    """The functools.lru_cache / functools.cache wrappers on the way from obj to its function."""
    found = []
    seen: set[int] = set()
    current = obj
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if hasattr(current, "cache_clear") and hasattr(current, "cache_info"):
            found.append(current)
        try:
            current = object.__getattribute__(current, "__wrapped__")
        except AttributeError:
            current = getattr(current, "__func__", None)
    return found
