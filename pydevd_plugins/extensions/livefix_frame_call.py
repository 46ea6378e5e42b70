"""Rerun, the CPython side: the function a paused frame runs, and the call that runs it again.

Standard library only (plus `livefix.engine.frames` for 3.10 qualnames); no pydevd. A
frame does not say which function object it runs (3.10 frames do not hold it; 3.11+ hold
it internally, out of Python's reach), so it is found by the frame's module and qualified
name, or else among the functions whose `__code__` is the frame's. A function livefix
fixed keeps its identity with a new `__code__`: that is how a frame is known to run code a
fix replaced. The call passes the frame's argument values as they are now: CPython keeps
no copy of what a frame was called with, so an argument the body rebinds is reported.
"""

from __future__ import annotations

import gc
import inspect
import reprlib
import sys
import types
from dataclasses import dataclass
from typing import Any, Iterable

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 200
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxdict = 20
_repr.maxlevel = 3


def safe_repr(value: Any) -> str:
    try:
        return _repr.repr(value)
    except Exception as error:  # a user __repr__ that raises must not fail the request
        return f"<repr failed: {type(error).__name__}>"


def _analysis() -> Any:
    return sys.modules["pydevd_plugins.extensions.livefix_frame_analysis"]  # loaded first, by path


@dataclass
class Call:
    """A call of the function a frame runs, with the frame's argument values."""

    function: types.FunctionType
    name: str  # module.qualname
    fixed: bool  # the function's code is not the frame's (a fix replaced it)
    args: list[Any]
    kwargs: dict[str, Any]
    shown: dict[str, str]  # parameter -> repr of the value passed
    rebound: list[str]  # parameters the frame's code rebinds (their value may not be the one passed)


class NotCallable(Exception):
    """The frame's function cannot be called again; the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def qualname(frame: types.FrameType) -> str:
    name = getattr(frame.f_code, "co_qualname", None)
    if name:
        return name
    from livefix.engine.frames import qualname_of  # 3.10 has no co_qualname

    return qualname_of(frame)


def function_of(frame: types.FrameType, replaced: Iterable[tuple[str, str]] = ()) -> tuple[types.FunctionType | None, bool]:
    """(the function object `frame` runs or None, whether a fix replaced the frame's code).

    By qualified name from the frame's module first: a function livefix fixed keeps its
    identity with a new `__code__`, so the name finds it holding other code than the
    frame's; that counts as fixed only when `replaced` ((module, qualname) of active
    generations) lists it, so that another function of the same name is never taken for
    it. Otherwise (nested functions, lambdas) the functions whose `__code__` is the frame's:
    exactly one is the frame's; several closures share it (current code, but which one?);
    none means no function runs that code any more (a running frame keeps its function
    alive, on 3.10 from the caller's stack), so a fix replaced it.
    """
    code = frame.f_code
    name = qualname(frame)
    candidate = _resolve(frame.f_globals, name, code.co_name)
    if candidate is not None:
        if candidate.__code__ is code:
            return candidate, False
        if (frame.f_globals.get("__name__", ""), name) in set(replaced):
            return candidate, True
    sharing = [f for f in gc.get_referrers(code) if isinstance(f, types.FunctionType) and f.__code__ is code]
    return (sharing[0] if len(sharing) == 1 else None), not sharing


def _resolve(namespace: dict[str, Any], name: str, code_name: str) -> types.FunctionType | None:
    parts = name.split(".")
    if "<locals>" in parts or "<lambda>" in parts:
        return None  # not reachable by name: found by its code instead
    value: Any = namespace.get(parts[0])
    for part in parts[1:]:
        members = getattr(value, "__dict__", None)  # a class's own members (a mappingproxy)
        value = members.get(part) if hasattr(members, "get") else None
    return _unwrap(value, code_name)


def _unwrap(value: Any, code_name: str) -> types.FunctionType | None:
    for _ in range(10):  # decorators: staticmethod, classmethod, property, functools.wraps
        if isinstance(value, types.FunctionType) and value.__code__.co_name == code_name:
            return value
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        elif isinstance(value, property):
            accessors = (value.fget, value.fset, value.fdel)
            value = next((f for f in accessors if getattr(getattr(f, "__code__", None), "co_name", None) == code_name), None)
        elif hasattr(value, "__wrapped__"):
            value = value.__wrapped__
        else:
            return None
    return None


def call_of(frame: types.FrameType, replaced: Iterable[tuple[str, str]] = ()) -> Call:
    """The call that runs `frame`'s function again (its current code) with the frame's argument values."""
    code = frame.f_code
    where = f"{frame.f_globals.get('__name__', '?')}.{qualname(frame)}"
    refusal = _analysis().code_refusal(code)
    if refusal is not None and refusal.reason == "notFunction":
        raise NotCallable(refusal.reason, f"{where} is module or class code, not a function: there is no call to run again")
    if refusal is not None and refusal.reason == "generator":
        raise NotCallable(refusal.reason, f"{where} is a generator or coroutine: calling it again would only create another one")
    function, fixed = function_of(frame, replaced)
    if function is None:
        raise NotCallable(
            "functionNotFound",
            f"cannot find the function object {where} runs: a nested function or lambda that nothing refers to any more, "
            "or one of several closures sharing its code",
        )
    values = frame.f_locals
    names = _analysis().argument_names(code)
    missing = [name for name in names if name not in values]
    if missing:
        raise NotCallable("argumentsUnbound", f"{where}: argument(s) {', '.join(missing)} are unbound in the paused frame")
    positional = list(names[: code.co_argcount])
    keyword_only = list(names[code.co_argcount : code.co_argcount + code.co_kwonlyargcount])
    rest = names[code.co_argcount + code.co_kwonlyargcount :]
    args = [values[name] for name in positional]
    kwargs = {name: values[name] for name in keyword_only}
    shown = {name: safe_repr(values[name]) for name in names}
    if code.co_flags & inspect.CO_VARARGS:
        args.extend(values[rest[0]])
        rest = rest[1:]
    if code.co_flags & inspect.CO_VARKEYWORDS:
        kwargs.update(values[rest[0]])
    try:
        inspect.signature(function).bind(*args, **kwargs)
    except TypeError as error:
        raise NotCallable("signature", f"{where} now takes other arguments than the paused frame has: {error}") from None
    except ValueError:
        pass  # no signature to check against
    return Call(function, where, fixed, args, kwargs, shown, _analysis().rebound_arguments(code))
