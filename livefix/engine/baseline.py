"""What a module runs, derived from its running code objects when livefix did not see the
text it was imported from (livefix arrived after the import, or the file is a library's).

A file's text is only a candidate: it may have been edited after the module was loaded,
and neither its modification time nor a bytecode cache can tell (containers set
PYTHONDONTWRITEBYTECODE; a cache is rewritten by any other import). So the text is
compiled and every function it defines is compared with the function that runs under the
same qualified name: equal code runs as written; code equal but for its position (lines
were inserted above it) runs elsewhere in the file; anything else runs another version.
"""

from __future__ import annotations

import ast
import importlib.machinery
import os
import sys
import types
from dataclasses import dataclass, field
from typing import Any, Iterator

from livefix.engine import codeutil
from livefix.engine.swap import container_functions, functions_of

_OPTIMIZED = 0x1  # CO_OPTIMIZED: a function's code; a class body's code lacks it
_LAMBDA = "<lambda>"


@dataclass
class Baseline:
    """How the running code of a module relates to a candidate text of it."""

    # Definitions whose running code differs from the text (or that the text defines and
    # nothing runs under their name): a reload must give them the text's code.
    stale: frozenset[str] = frozenset()
    # The stale ones the text defines and nothing runs under their name (added since load).
    missing: frozenset[str] = frozenset()
    # Where the running code of definitions starts, where that differs from the text's line
    # for them: qualname -> ((the text's first line of one, its running co_firstlineno), ...).
    running_lines: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    # Functions that run but that the text does not define (deleted or renamed since load).
    orphans: tuple[str, ...] = ()

    @property
    def exact(self) -> bool:
        return not self.stale and not self.running_lines and not self.orphans


def derive(module: types.ModuleType, text: str, path: str) -> Baseline | None:
    """Compare `text` compiled with what `module` runs. None: the text does not compile."""
    try:
        tree = ast.parse(text, path)
        code = compile(tree, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    unconditional = set(_unconditional(tree.body, ""))
    stale: set[str] = set(_changed_docstrings(module, tree))
    written: dict[str, list[types.CodeType]] = {}
    for qualname, const in _defined(code, ""):
        written.setdefault(qualname, []).append(const)
    running: dict[str, list[types.FunctionType]] = {}
    for function in _running_functions(module, path):
        running.setdefault(_qualname_of(function), []).append(function)
    missing: set[str] = set()
    lines: dict[str, tuple[tuple[int, int], ...]] = {}
    reached = _top_level_line(module)
    for qualname, consts in written.items():
        functions = running.pop(qualname, [])
        unmatched = _match(consts, functions, qualname, lines)
        if unmatched and qualname == _LAMBDA:  # a lambda is replaced by running what holds it again
            stale.update(_holders(module, {id(code) for code in unmatched}))
        elif unmatched:
            stale.add(qualname)
        elif (
            not functions and qualname in unconditional and not _is_bound(module, qualname)
            and (reached is None or consts[0].co_firstlineno < reached)
        ):
            # Defined in the text where it always runs, yet nothing runs under that name: new.
            # (One under an `if` or `try` may just be in a branch that did not run.)
            stale.add(qualname)
            missing.add(qualname)
    orphans = tuple(sorted(q for q in running if "<" not in q))
    return Baseline(stale=frozenset(stale), missing=frozenset(missing), running_lines=lines, orphans=orphans)


def _match(
    consts: list[types.CodeType], functions: list[types.FunctionType], qualname: str,
    lines: dict[str, tuple[tuple[int, int], ...]],
) -> list[types.CodeType]:
    """Pair the text's definitions of one name with the running functions of that name.
    Records running lines that differ; True when some running function runs other code."""
    codes = sorted({id(f.__code__): f.__code__ for f in functions}.values(), key=lambda c: c.co_firstlineno)
    remaining = list(consts)
    left: list[types.CodeType] = []
    for code in codes:
        same = next((c for c in remaining if _same_code(c, code)), None)
        if same is not None:
            remaining.remove(same)
            continue
        moved = next((c for c in remaining if _equal_but_position(code, c)), None)
        if moved is not None:
            remaining.remove(moved)
            lines[qualname] = (*lines.get(qualname, ()), (moved.co_firstlineno, code.co_firstlineno))
            continue
        left.append(code)
    if not left or qualname == _LAMBDA:
        return left
    # Running code the text does not have: the text's last definitions of the name are the
    # ones that bind it (earlier ones are overload stubs or shadowed).
    for code, written in zip(reversed(left), reversed(remaining)):
        if written.co_firstlineno != code.co_firstlineno:
            lines[qualname] = (*lines.get(qualname, ()), (written.co_firstlineno, code.co_firstlineno))
    return left


def _top_level_line(module: types.ModuleType) -> int | None:
    """The line a thread runs in the module's own top-level code (a script still running its
    main loop, a module still importing): definitions below it have not run yet."""
    lines = []
    for frame in list(sys._current_frames().values()):
        while frame is not None:
            if frame.f_code.co_name == "<module>" and frame.f_globals is module.__dict__:
                lines.append(frame.f_lineno)
            frame = frame.f_back
    return min(lines) if lines else None


def _holders(module: types.ModuleType, codes: set[int]) -> list[str]:
    """Module-level names whose value is, or directly holds, a function running one of `codes`."""
    names: list[str] = []
    for name, value in list(vars(module).items()):
        held = [value] if type(value) is types.FunctionType else container_functions([value])
        if any(id(function.__code__) in codes for function in held):
            names.append(name)
    return names


def _equal_but_position(running: types.CodeType, written: types.CodeType) -> bool:
    if running.co_name != written.co_name or running.co_code != written.co_code:
        return False  # cheap checks first: shifting copies every nested code object
    return _same_code(codeutil.shift_lines(running, written.co_firstlineno - running.co_firstlineno), written)


def _same_code(a: types.CodeType, b: types.CodeType) -> bool:
    """Equal code, line tables included (3.10's code equality leaves them out)."""
    if a != b:
        return False
    if sys.version_info >= (3, 11):
        return True
    return all(x.co_linetable == y.co_linetable for x, y in zip(codeutil.nested_codes(a), codeutil.nested_codes(b)))


def _unconditional(body: list[ast.stmt], prefix: str) -> Iterator[str]:
    """Qualnames of the definitions a module or class body makes whatever happens."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + node.name
        elif isinstance(node, ast.ClassDef):
            yield from _unconditional(node.body, prefix + node.name + ".")


def _defined(code: types.CodeType, prefix: str) -> Iterator[tuple[str, types.CodeType]]:
    """Every function a module's code defines, by qualified name (class bodies walked;
    functions inside functions are part of their enclosing function's code)."""
    for const in code.co_consts:
        if not isinstance(const, types.CodeType) or (const.co_name.startswith("<") and const.co_name != _LAMBDA):
            continue  # comprehensions never outlive the statement that runs them; lambdas may
        qualname = prefix + const.co_name
        if const.co_flags & _OPTIMIZED:
            yield qualname, const
        else:
            yield from _defined(const, qualname + ".")


def _running_functions(module: types.ModuleType, path: str) -> Iterator[types.FunctionType]:
    real = os.path.realpath(path)
    values = list(vars(module).values())
    for function in functions_of([*values, *container_functions(values), *overload_stubs(module.__name__)],
                                 module.__name__, set()):
        filename = function.__code__.co_filename
        if filename == path or os.path.realpath(filename) == real:
            yield function


def overload_stubs(module_name: str, qualname: str = "") -> list[Any]:
    """The @overload stubs typing keeps (3.11+) for the definitions of a module: `qualname` and
    what it contains ("" = all). They run nowhere, but typing.get_overloads() shows them."""
    registry = getattr(sys.modules.get("typing"), "_overload_registry", None)
    by_qualname = registry.get(module_name) if isinstance(registry, dict) else None
    if not by_qualname:
        return []
    try:
        return [
            stub
            for name, stubs in list(by_qualname.items())
            if not qualname or name == qualname or name.startswith(qualname + ".")
            for stub in list(stubs.values())
        ]
    except Exception:  # a private structure of typing's: never let it break livefix
        return []


def _changed_docstrings(module: types.ModuleType, tree: ast.Module) -> Iterator[str]:
    """`__doc__` of the module and of its classes where the text's differs from the live one."""
    # Only where the text has a docstring: without one, a live __doc__ may have been made by
    # the class machinery (dataclasses, named tuples) or set by the program.
    written = ast.get_docstring(tree, clean=False)
    loader = getattr(getattr(module, "__spec__", None), "loader", None)
    if written is not None and written != module.__doc__ and isinstance(loader, importlib.machinery.SourceFileLoader):
        yield "__doc__"  # (a module made by another loader may only borrow this file's name)
    for node, qualname in _classes(tree.body, ""):
        owner: Any = module
        for part in qualname.split("."):
            owner = getattr(owner, "__dict__", {}).get(part)
        written = ast.get_docstring(node, clean=False)
        if isinstance(owner, type) and owner.__module__ == module.__name__ and written is not None:
            if written != owner.__dict__.get("__doc__"):
                yield qualname + ".__doc__"


def _classes(body: list[ast.stmt], prefix: str) -> Iterator[tuple[ast.ClassDef, str]]:
    for node in body:
        if isinstance(node, ast.ClassDef):
            yield node, prefix + node.name
            yield from _classes(node.body, prefix + node.name + ".")


def _qualname_of(function: types.FunctionType) -> str:
    code = function.__code__
    qualname = getattr(code, "co_qualname", None)  # 3.11+: fixed at compile time
    if qualname is None:  # 3.10: the function's, unless a wrapper copied another's onto it
        qualname = function.__qualname__
        if qualname.rsplit(".", 1)[-1] != code.co_name:
            return f"<wrapper {qualname}>"
    return qualname


def _is_bound(module: types.ModuleType, qualname: str) -> bool:
    owner: Any = module
    for part in qualname.split("."):
        namespace = getattr(owner, "__dict__", {})
        key = part
        if isinstance(owner, type) and part.startswith("__") and not part.endswith("__"):
            key = f"_{owner.__name__.lstrip('_')}{part}"
        if key not in namespace:
            return False
        owner = namespace[key]
    return True
