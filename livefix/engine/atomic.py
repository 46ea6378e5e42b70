"""Primitive mutations and their all-or-nothing application.

Why this is atomic for other Python threads: a thread can only lose the GIL inside the
bytecode evaluation loop (or in C code that releases it explicitly). The commit runs
every mutation from one C-level iteration (`map` over `functools.partial` objects wrapping
C setters such as `object.__setattr__`, `type.__setattr__`, `dict.__setitem__`), with the
cyclic GC paused so that no finalizer (Python code) runs in between, and with every old
value kept alive by the undo record so no deallocation runs user code either. So no other
thread runs a bytecode between the first and the last mutation of a generation.
(Free-threaded 3.13t builds have no GIL; livefix refuses to run there.)
"""

from __future__ import annotations

import collections
import functools
import gc
import operator
import sys
import types
from itertools import repeat
from typing import Any, Callable, NamedTuple

from livefix.engine import codeutil

_call = operator.methodcaller("__call__")
_MISSING = object()


class Mutation(NamedTuple):  # a plain tuple: cheap to make, a change makes one per attribute
    """One reversible assignment: `forward` applies it, `backward` restores the old value."""

    forward: functools.partial
    backward: functools.partial
    label: str


class Shift(NamedTuple):
    """Functions whose code moved `delta` lines; undone by moving them back. A generation
    keeps one of these per run of moves, not a code object per function (memory in
    proportion to the change, not to the module)."""

    functions: tuple[Any, ...]
    delta: int


class Moves:
    """Line moves of many functions at once (code below an edit that changed the line count):
    kept as three parallel lists rather than a Mutation each, and turned into C-level steps
    only when applied or undone."""

    __slots__ = ("functions", "deltas", "old_codes", "new_codes", "made")

    def __init__(self) -> None:
        self.functions: list[Any] = []
        self.deltas: list[int] = []
        self.old_codes: list[Any] = []
        self.new_codes: list[Any] = []
        self.made: dict[tuple[int, int], Any] = {}  # one moved copy per code object

    def add(self, function: Any, delta: int) -> None:
        code = function.__code__
        self.functions.append(function)
        self.deltas.append(delta)
        self.old_codes.append(code)
        self.new_codes.append(codeutil.shift_lines(code, delta, self.made))

    def forward_steps(self) -> list[functools.partial]:
        return list(map(functools.partial, repeat(object.__setattr__), self.functions, repeat("__code__"), self.new_codes))

    def backward_steps(self) -> list[functools.partial]:
        return list(map(functools.partial, repeat(object.__setattr__), self.functions, repeat("__code__"), self.old_codes))

    def kept(self) -> list["Shift"]:
        """Runs of (functions, delta): no code object is kept (recreated when undone)."""
        runs: list[Shift] = []
        start = 0
        for index in range(1, len(self.deltas) + 1):
            if index == len(self.deltas) or self.deltas[index] != self.deltas[start]:
                runs.append(Shift(tuple(self.functions[start:index]), self.deltas[start]))
                start = index
        return runs


def forward_steps(mutations: list["Mutation | Moves"]) -> list[functools.partial]:
    steps: list[functools.partial] = []
    for mutation in mutations:
        if isinstance(mutation, Moves):
            steps.extend(mutation.forward_steps())
        else:
            steps.append(mutation.forward)
    return steps


def backward_steps(mutations: list["Mutation | Moves"]) -> list[functools.partial]:
    """The undo steps of `mutations` (applied in order), newest first."""
    steps: list[functools.partial] = []
    for mutation in reversed(mutations):
        if isinstance(mutation, Moves):
            steps.extend(reversed(mutation.backward_steps()))
        else:
            steps.append(mutation.backward)
    return steps


def kept(mutations: list["Mutation | Moves"]) -> list["Mutation | Shift"]:
    """What a generation keeps to undo `mutations`: line moves as runs of (functions, delta),
    with no code object (recreated when undone); anything else with its old value."""
    result: list[Mutation | Shift] = []
    for mutation in mutations:
        if isinstance(mutation, Moves):
            result.extend(mutation.kept())
        else:
            result.append(mutation)
    return result


def undo_steps(kept: list["Mutation | Shift"]) -> tuple[list[functools.partial], list[functools.partial]]:
    """The steps that undo `kept` (applied in order), newest first, and the steps that redo
    them should the undo fail. Moves are recreated here, in the order they will run, so the
    same function moved by several generations comes back to its exact lines."""
    code_now: dict[int, Any] = {}
    made: dict[tuple[int, int], Any] = {}  # closures sharing a code object share it moved back too
    backward: list[functools.partial] = []
    forward: list[functools.partial] = []
    for item in reversed(kept):
        if isinstance(item, Shift):
            for function in reversed(item.functions):
                current = code_now.get(id(function), function.__code__)
                previous = codeutil.shift_lines(current, -item.delta, made)
                code_now[id(function)] = previous
                backward.append(functools.partial(object.__setattr__, function, "__code__", previous))
                forward.append(functools.partial(object.__setattr__, function, "__code__", current))
        else:
            backward.append(item.backward)
            forward.append(item.forward)
            target = item.backward.args[0] if item.backward.args else None
            if isinstance(target, types.FunctionType) and item.backward.args[1:2] == ("__code__",):
                code_now[id(target)] = item.backward.args[2]
    forward.reverse()
    return backward, forward


def _setter(target: Any) -> tuple[Callable[..., None], Callable[..., None]]:
    # C-level setters that bypass Python-level __setattr__ overrides (EnumType, custom
    # metaclasses), which would both run bytecode and refuse legitimate method swaps.
    if isinstance(target, type):
        return type.__setattr__, type.__delattr__
    return object.__setattr__, object.__delattr__


def set_attribute(target: Any, name: str, value: Any, label: str) -> Mutation:
    """Set `target.name = value` (function attributes, class attributes, cells)."""
    set_, del_ = _setter(target)
    if isinstance(target, type):
        old = target.__dict__.get(name, _MISSING)
    else:
        old = getattr(target, name, _MISSING)
    forward = functools.partial(set_, target, name, value)
    backward = functools.partial(del_, target, name) if old is _MISSING else functools.partial(set_, target, name, old)
    return Mutation(forward, backward, label)


def delete_attribute(target: type, name: str, label: str) -> Mutation:
    set_, del_ = _setter(target)
    old = target.__dict__[name]
    return Mutation(functools.partial(del_, target, name), functools.partial(set_, target, name, old), label)


def set_global(namespace: dict[str, Any], name: str, value: Any, label: str) -> Mutation:
    old = namespace.get(name, _MISSING)
    forward = functools.partial(dict.__setitem__, namespace, name, value)
    if old is _MISSING:
        backward = functools.partial(dict.pop, namespace, name, None)
    else:
        backward = functools.partial(dict.__setitem__, namespace, name, old)
    return Mutation(forward, backward, label)


def delete_global(namespace: dict[str, Any], name: str, label: str) -> Mutation:
    old = namespace[name]
    return Mutation(
        functools.partial(dict.pop, namespace, name, None), functools.partial(dict.__setitem__, namespace, name, old), label
    )


def call_only(forward: Callable[[], Any], backward: Callable[[], Any], label: str) -> Mutation:
    """A side step such as clearing an lru_cache (its old entries were computed by old code)."""
    return Mutation(functools.partial(forward), functools.partial(backward), label)


def gil_is_enabled() -> bool:
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


def run_atomically(steps: list[functools.partial]) -> None:
    """Run every step with no other Python thread running in between.

    If a step raises, the steps before it have run: the caller restores with `undo`."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        collections.deque(map(_call, steps), 0)
    finally:
        if gc_was_enabled:
            gc.enable()


def apply_all(mutations: list[Mutation]) -> None:
    """Apply every mutation, or none: on failure, restore everything and re-raise."""
    try:
        run_atomically(forward_steps(mutations))
    except BaseException:
        undo(mutations)
        raise


def undo(mutations: list[Mutation]) -> None:
    """Restore the old values of `mutations` (applied in order), newest first."""
    backward = backward_steps(mutations)
    try:
        run_atomically(backward)
    except BaseException:
        # Some mutation had not run (a partial forward pass): restore one by one,
        # tolerating the ones that have nothing to restore.
        for step in backward:
            try:
                step()
            except (AttributeError, KeyError, TypeError):
                pass


__all__ = [
    "Moves",
    "Mutation",
    "Shift",
    "apply_all",
    "call_only",
    "delete_attribute",
    "delete_global",
    "gil_is_enabled",
    "run_atomically",
    "set_attribute",
    "set_global",
    "kept",
    "undo",
    "undo_steps",
]
