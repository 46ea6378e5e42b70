"""Restart frame and rerun, the CPython side: what a paused frame allows, read from its bytecode.

Standard library only; no pydevd. Used inside the debuggee by `livefix_frame_requests.py`,
on the paused thread or on pydevd's reader thread while that thread waits (the frame's
function and the call that runs it again are in `livefix_frame_call.py`). What each CPython allows, and why, is in
docs/adapter.md ("Restart frame"); in short:

- A frame's code cannot be swapped (`f_code` is read-only and the frame's value stack and
  locals are laid out for that code object), so a restarted frame always runs the code it
  started with. Restarting is offered only while that code is still the function's code;
  once a fix replaced it, the honest alternative is to call the function again (`rerun`).
- Restart = jump to the first line of the body (`f_lineno`, allowed from the trace or
  monitoring callback the thread is paused in) and give the locals the state of a fresh
  call. It is refused where that state cannot be rebuilt or the jump would skip code the
  function guarantees to run: inside a `with` block or a `try` with `finally` (the jump
  skips `__exit__`/`finally`), an argument the body rebinds (its entry value is gone),
  generators and coroutines, module and class bodies, and on 3.12+ code that could see
  a local left bound from the first run (CPython 3.12+ cannot unbind locals).
"""

from __future__ import annotations

import dis
import functools
import inspect
import sys
import types
from dataclasses import dataclass
from typing import Any

V = sys.version_info[:2]

_CO_OPTIMIZED = inspect.CO_OPTIMIZED
_CO_NEWLOCALS = inspect.CO_NEWLOCALS
_CO_SUSPENDABLE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR | inspect.CO_ITERABLE_COROUTINE
_STORES = {
    "STORE_FAST", "DELETE_FAST", "STORE_DEREF", "DELETE_DEREF",
    "STORE_FAST_STORE_FAST", "STORE_FAST_LOAD_FAST", "STORE_FAST_MAYBE_NULL",  # 3.13
}
# Instructions that load an exception type before CHECK_EXC_MATCH (`except (A, mod.B):`).
_LOADS = {
    "LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_ATTR", "LOAD_CONST",
    "BUILD_TUPLE", "NOP", "CACHE", "LOAD_FROM_DICT_OR_DEREF", "LOAD_FROM_DICT_OR_GLOBALS",
}

@dataclass(frozen=True)
class Refusal:
    """Why a frame cannot be restarted: `reason` is a stable word, `message` says it to a person."""

    reason: str
    message: str


# -- the code as a whole ------------------------------------------------------------------


def argument_names(code: types.CodeType) -> tuple[str, ...]:
    """Parameters in `co_varnames` order: positional, keyword-only, *args, **kwargs."""
    count = code.co_argcount + code.co_kwonlyargcount
    count += bool(code.co_flags & inspect.CO_VARARGS) + bool(code.co_flags & inspect.CO_VARKEYWORDS)
    return code.co_varnames[:count]


def _names(argval: Any) -> tuple[str, ...]:
    # 3.13 superinstructions (STORE_FAST_STORE_FAST) carry a pair of names.
    return tuple(argval) if isinstance(argval, tuple) else (argval,)


def rebound_arguments(code: types.CodeType) -> list[str]:
    """Parameters the body assigns or deletes: their value in a paused frame may not be the
    one they were called with (CPython keeps no copy of the arguments)."""
    arguments = set(argument_names(code))
    found: list[str] = []
    for instruction in _instructions(code):
        if instruction.opname in _STORES:
            for name in _names(instruction.argval):
                if name in arguments and name not in found:
                    found.append(name)
    return found


def code_refusal(code: types.CodeType) -> Refusal | None:
    """What rules out restarting any frame of `code`, wherever it is paused."""
    if not (code.co_flags & _CO_OPTIMIZED and code.co_flags & _CO_NEWLOCALS):
        return Refusal("notFunction", f"{code.co_name} is module or class code, not a function: only function frames restart")
    if code.co_flags & _CO_SUSPENDABLE:
        return Refusal(
            "generator",
            f"{code.co_name} is a generator or coroutine: restarting it would replay values its consumer already took",
        )
    rebound = rebound_arguments(code)
    if rebound:
        return Refusal(
            "argumentsRebound",
            f"{code.co_name} assigns its argument(s) {', '.join(rebound)} in its body, so the values it was called with "
            "are gone (CPython keeps no copy); rerun the call instead, with the values shown",
        )
    if V >= (3, 12):
        stale = _possibly_stale_reads(code)
        if stale:
            return Refusal(
                "staleLocals",
                f"{code.co_name} can see a local before assigning it ({', '.join(stale)}), and Python {V[0]}.{V[1]} "
                "cannot unbind a local of a running frame: a restart would see the first run's value where a new call "
                "would fail",
            )
    return None


def _possibly_stale_reads(code: types.CodeType) -> list[str]:
    """3.12+: locals a restarted frame could read before assigning them. The compiler emits
    an unchecked LOAD_FAST only where a local is bound on every path from the start, so a
    value left from the first run is invisible except to LOAD_FAST_CHECK, `del` and cells
    (LOAD_DEREF always checks, and a cell cannot be emptied from Python)."""
    arguments = set(argument_names(code))
    found: list[str] = []
    for instruction in _instructions(code):
        if instruction.opname in ("LOAD_FAST_CHECK", "DELETE_FAST"):
            for name in _names(instruction.argval):
                if name not in arguments and name not in found:
                    found.append(name)
    found.extend(name for name in code.co_cellvars if name not in arguments and name not in found)
    found.extend(f"{name}()" for name in ("locals", "vars") if name in code.co_names)  # they list every bound local
    return found


def first_body_line(code: types.CodeType) -> int | None:
    """The line a restart jumps to: the first line of the body (after RESUME on 3.11+)."""
    lines = _line_table(code)
    started = V < (3, 11)
    for instruction in _instructions(code):
        if not started:
            started = instruction.opname == "RESUME"
            continue
        line = lines.get(instruction.offset)
        if line is not None:
            return line
    return None


def _line_table(code: types.CodeType) -> dict[int, int]:
    """Line of every instruction offset (co_lines, 3.10+)."""
    table: dict[int, int] = {}
    for start, end, line in code.co_lines():
        if line is not None:
            for offset in range(start, end, 2):
                table[offset] = line
    return table


# -- where the frame is paused ------------------------------------------------------------


def position_refusal(code: types.CodeType, offset: int, line: int) -> Refusal | None:
    """What rules out leaving the instruction at `offset` (on `line`) for the first line.

    Every enclosing construct counts: `with` (its `__exit__` would be skipped), `try` with
    `finally` and the finally clause itself (the rest of it would be skipped), and on 3.10 an
    except clause (CPython 3.10 refuses to jump out of one). A try body with only except
    clauses, an except clause on 3.11+ (the jump restores the exception state) and loops
    are left as a new call would never have entered them.
    """
    blocks = _blocks_311(code, offset) if V >= (3, 11) else _blocks_310(code, offset)
    if "with" in blocks:
        return Refusal("withBlock", "paused inside a with block: restarting would skip its __exit__ (a lock stays held, a file open)")
    if "finally" in blocks or "finallyBody" in blocks or line in _finally_lines(code):
        return Refusal("finallyBlock", "paused inside a try...finally: restarting would skip (the rest of) its finally clause")
    if "unknown" in blocks:
        return Refusal(
            "protectedBlock",
            "paused inside a block CPython protects with a handler livefix cannot classify (a comprehension, except*...)",
        )
    if "except" in blocks and V < (3, 11):
        return Refusal("exceptBlock", "paused inside an except clause: Python 3.10 cannot jump out of one")
    return None


@functools.lru_cache(maxsize=64)  # a stackTrace asks about the same few codes again and again
def _instructions(code: types.CodeType) -> tuple[dis.Instruction, ...]:
    return tuple(dis.get_instructions(code))


def _handler_kind_311(code: types.CodeType, target: int) -> str:
    """The construct an exception-table handler at `target` belongs to: `try` (a try body
    with except clauses), `finally`, `with`, `cleanup` (the handler of code that is itself
    a handler: an except or finally clause, a with exit) or `unknown`."""
    following = [i for i in _instructions(code) if i.offset >= target][:12]
    names = [i.opname for i in following]
    if names[:2] == ["COPY", "POP_EXCEPT"]:
        return "cleanup"
    if not names or names[0] != "PUSH_EXC_INFO":
        return "unknown"  # 3.12+ inlined comprehensions restore their variable here
    rest = names[1:]
    if "WITH_EXCEPT_START" in rest[:2]:
        return "with"
    if rest and rest[0] == "POP_TOP":
        return "try"  # a bare `except:` drops the exception first
    for name in rest:
        if name == "CHECK_EXC_MATCH":
            return "try"
        if name == "CHECK_EG_MATCH":
            return "unknown"  # except*: not worth reasoning about
        if name not in _LOADS:
            break
    return "finally"


@functools.lru_cache(maxsize=64)
def _entries_311(code: types.CodeType) -> tuple[Any, ...]:
    return tuple(dis.Bytecode(code).exception_entries)


def _blocks_311(code: types.CodeType, offset: int) -> list[str]:
    """3.11+: every construct enclosing `offset`, innermost first. The exception table maps
    an offset to its innermost handler only; the constructs around that one are found by
    following handlers outwards (an inner construct's handler code is covered by the next
    handler out)."""
    entries = _entries_311(code)
    kinds: list[str] = []
    seen: set[int] = set()
    at = offset
    while at not in seen:
        seen.add(at)
        entry = next((e for e in entries if e.start <= at < e.end), None)
        if entry is None:
            break
        kind = _handler_kind_311(code, entry.target)
        kinds.append(_running_handler_311(code, entries, entry) if kind == "cleanup" else kind)
        at = entry.target
    return kinds


def _running_handler_311(code: types.CodeType, entries: tuple[Any, ...], cleanup: Any) -> str:
    """Code under a cleanup entry is the handler of some construct (the one whose handler
    starts in the entry's range): an except clause, a finally clause or a with exit."""
    for entry in entries:
        if cleanup.start <= entry.target < cleanup.end:
            kind = _handler_kind_311(code, entry.target)
            if kind in ("try", "finally", "with"):
                return {"try": "except", "finally": "finallyBody", "with": "with"}[kind]
    return "unknown"


def _finally_lines(code: types.CodeType) -> set[int]:
    """Lines of every finally clause. CPython compiles a finally body twice, inline for the
    normal path and as the handler: the inline copy is covered by no handler, so it is found
    by the lines it shares with the handler copy."""
    lines = _line_table(code)
    found: set[int] = set()
    instructions = _instructions(code)
    for handler in _finally_handlers(code):
        for instruction in instructions:
            if instruction.offset < handler:
                continue
            if instruction.opname == "RERAISE" and instruction.offset > handler:
                break
            if instruction.opname not in ("PUSH_EXC_INFO", "DUP_TOP", "POP_TOP") and instruction.offset in lines:
                found.add(lines[instruction.offset])
    return found


def _finally_handlers(code: types.CodeType) -> list[int]:
    if V >= (3, 11):
        return [e.target for e in _entries_311(code) if _handler_kind_311(code, e.target) == "finally"]
    return [i.argval for i in _instructions(code) if i.opname == "SETUP_FINALLY" and _handler_kind_310(code, i.argval) == "finally"]


def _handler_kind_310(code: types.CodeType, target: int) -> str:
    names = [i.opname for i in _instructions(code) if i.offset >= target][:8]
    if names[:3] == ["POP_TOP", "POP_TOP", "POP_TOP"]:
        return "except"  # bare `except:`
    if names and names[0] == "DUP_TOP":
        for name in names[1:]:
            if name == "JUMP_IF_NOT_EXC_MATCH":
                return "except"
            if name not in _LOADS:
                break
    return "finally"


def _blocks_310(code: types.CodeType, offset: int) -> list[str]:
    """3.10: the block stack at `offset`, computed as CPython's own `markblocks` does
    (Objects/frameobject.c), each block tagged with the construct it belongs to."""
    instructions = _instructions(code)
    index_of = {i.offset: n for n, i in enumerate(instructions)}
    stacks: list[tuple[str, ...] | None] = [None] * (len(instructions) + 1)
    stacks[0] = ()
    changed = True
    while changed:
        changed = False

        def flow(position: int, stack: tuple[str, ...]) -> None:
            nonlocal changed
            if stacks[position] is None:
                stacks[position] = stack
                changed = True

        for n, instruction in enumerate(instructions):
            stack = stacks[n]
            if stack is None:
                continue
            name = instruction.opname
            if name in ("SETUP_FINALLY", "SETUP_WITH", "SETUP_ASYNC_WITH"):
                target = instruction.argval
                kind = "with" if name != "SETUP_FINALLY" else ("try" if _handler_kind_310(code, target) == "except" else "finally")
                handler = {"try": "except", "finally": "finallyBody", "with": "with"}[kind]
                flow(index_of[target], stack + (handler,))
                flow(n + 1, stack + (kind,))
            elif name in ("POP_BLOCK", "POP_EXCEPT"):
                flow(n + 1, stack[:-1])
            elif name in ("GET_ITER", "GET_AITER"):
                flow(n + 1, stack + ("loop",))
            elif name == "FOR_ITER":
                flow(n + 1, stack)
                flow(index_of[instruction.argval], stack[:-1])
            elif name == "END_ASYNC_FOR":
                flow(n + 1, stack[:-2])
            elif name in ("JUMP_ABSOLUTE", "JUMP_FORWARD"):
                flow(index_of[instruction.argval], stack)
            elif name in ("POP_JUMP_IF_FALSE", "POP_JUMP_IF_TRUE", "JUMP_IF_FALSE_OR_POP", "JUMP_IF_TRUE_OR_POP", "JUMP_IF_NOT_EXC_MATCH"):
                flow(index_of[instruction.argval], stack)
                flow(n + 1, stack)
            elif name not in ("RETURN_VALUE", "RAISE_VARARGS", "RERAISE"):
                flow(n + 1, stack)
    return [kind for kind in reversed(stacks[index_of.get(offset, 0)] or ()) if kind != "loop"]


def restart_refusal(frame: types.FrameType) -> Refusal | None:
    """Everything static that rules out restarting `frame` where it is paused (None: it may)."""
    code = frame.f_code
    refusal = code_refusal(code)
    if refusal is not None and refusal.reason in ("notFunction", "generator"):
        return refusal
    if first_body_line(code) is None:
        return Refusal("noBody", f"{code.co_name} has no line to restart at")
    # Where the frame is paused first: stepping out of a with block is something to do about it.
    return position_refusal(code, frame.f_lasti, frame.f_lineno) or refusal


# -- restarting -------------------------------------------------------------------------------


def restart(frame: types.FrameType) -> None:
    """Jump `frame` to its first line and give its locals a fresh call's state (arguments as
    they are, every other local unbound). Call only from the trace or monitoring callback the
    frame's thread is paused in, after `restart_refusal` said None. Raises ValueError (from
    CPython) when the jump is refused; nothing has changed then."""
    code = frame.f_code
    target = first_body_line(code)
    arguments = set(argument_names(code))
    others = [name for name in (*code.co_varnames, *code.co_cellvars) if name not in arguments]
    if V >= (3, 12):
        # The jump binds every unbound local to None, warning on the program's stderr: bind
        # them first. If the jump is refused, those Nones stay, which no instruction can tell
        # from unbound (`code_refusal` made sure of that).
        locals_ = frame.f_locals
        for name in others:
            if name not in locals_ and name not in code.co_cellvars:
                locals_[name] = None
        _write_back(frame)
        frame.f_lineno = target
        # Drop the first run's values too: a new call would not hold them (nor keep them alive).
        locals_ = frame.f_locals
        for name in others:
            if name not in code.co_cellvars:
                locals_[name] = None
        _write_back(frame)
        return
    frame.f_lineno = target
    # 3.10/3.11: unbind every local but the arguments, cells included (a fresh call starts
    # with empty cells; closures the first run made and kept share them: documented).
    locals_ = frame.f_locals
    for name in others:
        locals_.pop(name, None)
    _write_back(frame, clear=True)


def _write_back(frame: types.FrameType, clear: bool = False) -> None:
    """Copy `frame.f_locals` into the frame's fast locals (3.10-3.12; 3.13's f_locals writes through)."""
    if V >= (3, 13):
        return
    import ctypes

    ctypes.pythonapi.PyFrame_LocalsToFast(ctypes.py_object(frame), ctypes.c_int(1 if clear else 0))
