"""Where every function of a package runs from, compared with its files as they are on disk.

Used by driver.py in the child process of test_thirdparty_packages (loaded by file path:
this folder is not a package). `check_lines` compiles each file and compares every
function reachable from the package's modules with the code of the same qualified name:
its first line and the lines of its instructions and inner code (`lines`), and, where
those agree, the code itself (`code`: what a fresh import of the files would run).
"""

from __future__ import annotations

import collections.abc
import dis
import functools
import importlib.util
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, Iterator


def read_text(path: str | Path) -> str:
    """A source file as the import system reads it (encoding declaration, universal newlines)."""
    return importlib.util.decode_source(Path(path).read_bytes())


def real(path: str) -> str:
    return os.path.realpath(path)


def in_package(name: Any, package: str) -> bool:
    return isinstance(name, str) and (name == package or name.startswith(package + "."))


def package_modules(package: str) -> dict[str, types.ModuleType]:
    return {
        name: module for name, module in sorted(sys.modules.items())
        if in_package(name, package) and isinstance(module, types.ModuleType)
    }


def reachable_functions(package: str) -> list[tuple[str, types.FunctionType]]:
    """(how it was reached, function) for every Python function reachable from the package's
    modules: module globals, classes defined in the package (nested ones too), static and
    class methods, properties, cached properties, partials, `__wrapped__` chains,
    singledispatch registries, closure cells, wrapper objects of the package (curry) and
    typing.overload stubs (3.11+)."""
    found: dict[int, tuple[str, types.FunctionType]] = {}
    seen: dict[int, Any] = {}  # holding each object keeps its id from being reused
    get_overloads = getattr(typing, "get_overloads", None)

    def visit(obj: Any, where: str, stub: bool = False) -> None:
        if obj is None or id(obj) in seen or isinstance(obj, types.ModuleType):
            return
        seen[id(obj)] = obj
        if isinstance(obj, types.FunctionType):
            found[id(obj)] = (where, obj)
            attributes = obj.__dict__
            if "__wrapped__" in attributes:
                visit(attributes["__wrapped__"], f"{where}.__wrapped__")
            registry = attributes.get("registry")
            if isinstance(registry, collections.abc.Mapping):
                for key, value in list(registry.items()):
                    visit(value, f"{where}.registry[{getattr(key, '__name__', key)}]")
            for name, cell in zip(obj.__code__.co_freevars, obj.__closure__ or ()):
                try:
                    contents = cell.cell_contents
                except ValueError:
                    continue
                visit(contents, f"{where}<closure {name}>")
            if get_overloads is not None and not stub:
                for number, overload in enumerate(get_overloads(obj)):
                    visit(overload, f"{where}<overload {number}>", stub=True)
        elif isinstance(obj, (staticmethod, classmethod, types.MethodType)):
            visit(obj.__func__, where)
        elif isinstance(obj, property):
            for accessor in ("fget", "fset", "fdel"):
                visit(getattr(obj, accessor), f"{where}.{accessor}")
        elif isinstance(obj, (functools.cached_property, functools.partial)):
            visit(obj.func, f"{where}.func")
        elif isinstance(obj, type):
            if in_package(obj.__module__, package):
                for name, value in list(vars(obj).items()):
                    visit(value, f"{obj.__module__}.{obj.__qualname__}.{name}")
        else:
            attributes = getattr(obj, "__dict__", None)
            if isinstance(attributes, dict) and "__wrapped__" in attributes:  # lru_cache and the like
                visit(attributes["__wrapped__"], f"{where}.__wrapped__")
            if in_package(type(obj).__module__, package):  # the package's own wrappers (toolz.curry)
                try:
                    inner = getattr(obj, "func", None)
                except Exception:
                    inner = None
                visit(inner, f"{where}.func")

    for name, module in package_modules(package).items():
        for key, value in list(vars(module).items()):
            visit(value, f"{name}.{key}")
    return list(found.values())


def nested_codes(code: types.CodeType) -> Iterator[types.CodeType]:
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield const
            yield from nested_codes(const)


def line_shape(code: types.CodeType) -> tuple[Any, ...]:
    """Where a code's lines are, whatever its exact bytecode: its first line, the lines its
    instructions are on in order (repeats folded), and the same for the code nested in it."""
    lines: list[int] = []
    for _, _, line in code.co_lines():
        if line is not None and (not lines or lines[-1] != line):
            lines.append(line)
    nested = tuple(line_shape(c) for c in code.co_consts if isinstance(c, types.CodeType))
    return (code.co_name, code.co_firstlineno, tuple(lines), nested)


def same_body(running: types.CodeType, expected: types.CodeType) -> bool:
    """The same code wherever it sits: bytecode, names and constants, nested code alike."""
    if (running.co_code, running.co_names, running.co_varnames, running.co_freevars) != (
        expected.co_code, expected.co_names, expected.co_varnames, expected.co_freevars
    ) or len(running.co_consts) != len(expected.co_consts):
        return False
    for a, b in zip(running.co_consts, expected.co_consts):
        if isinstance(a, types.CodeType) and isinstance(b, types.CodeType):
            if not same_body(a, b):
                return False
        elif type(a) is not type(b) or a != b:
            return False
    return True


def describe_lines(running: tuple[Any, ...], expected: tuple[Any, ...]) -> str:
    """The first place where two line shapes part, for a person to look at."""
    pairs = [(running, expected)]
    while pairs:
        (name, first, lines, nested), (_, other_first, other_lines, other_nested) = pairs.pop(0)
        if first != other_first:
            return f"{name} starts at line {first}, the file's at {other_first}"
        if lines != other_lines:
            return f"the instructions of {name} are on lines {list(lines[:8])}, the file's on {list(other_lines[:8])}"
        if len(nested) != len(other_nested):
            return f"{name} holds {len(nested)} inner code objects, the file's {len(other_nested)}"
        pairs += list(zip(nested, other_nested))
    return "their line tables differ"


def instructions(code: types.CodeType) -> list[str]:
    result = []
    for instruction in dis.get_instructions(code):
        if instruction.opcode in dis.hasjrel or instruction.opcode in dis.hasjabs:
            shown = "(jump)"  # a target offset: it moves with any longer instruction before it
        elif isinstance(instruction.argval, types.CodeType):
            shown = f"<code {instruction.argval.co_name}>"
        else:
            shown = instruction.argrepr  # 3.12+: "NULL|self + name" for an attribute loaded as a method
        result.append(f"{instruction.opname} {shown}".rstrip())
    return result


def describe_code(running: types.CodeType, expected: types.CodeType) -> str:
    """The first difference between two codes whose lines agree."""
    pairs = [(running, expected)]
    while pairs:
        a, b = pairs.pop(0)
        ours, theirs = instructions(a), instructions(b)
        for index, (x, y) in enumerate(zip(ours, theirs)):
            if x != y:
                return f"instruction {index} of {a.co_name} is {x}, the file compiles {y}"
        if len(ours) != len(theirs):
            return f"{a.co_name} has {len(ours)} instructions, the file's {len(theirs)}"
        constants = [c for c in a.co_consts if not isinstance(c, types.CodeType)]
        others = [c for c in b.co_consts if not isinstance(c, types.CodeType)]
        if constants != others:
            return f"the constants of {a.co_name} differ: {repr(constants)[:160]} vs the file's {repr(others)[:160]}"
        pairs += [(x, y) for x, y in zip(a.co_consts, b.co_consts) if isinstance(x, types.CodeType) and isinstance(y, types.CodeType)]
    return "they differ in column positions or flags only"


def check_lines(config: dict[str, Any], files: list[str]) -> dict[str, Any]:
    """Compile every file as it is on disk now and compare each reachable function's code
    with the code of the same qualified name there. `lines`: functions whose code is not
    where the file has it (first line, or the lines of its instructions and inner code);
    `code`: functions at the right lines that do not run the code the file compiles to."""
    by_file: dict[str, list[types.CodeType]] = {}
    for path in files:
        by_file[real(path)] = list(nested_codes(compile(read_text(path), path, "exec", dont_inherit=True)))
    root = Path(config["root"])
    lines: list[str] = []
    code_problems: list[str] = []
    checked: list[str] = []
    overloads: dict[str, int] = {}
    for where, function in reachable_functions(config["package"]):
        code = function.__code__
        codes = by_file.get(real(code.co_filename))
        if codes is None:
            continue  # not the package's code (functools, the standard library, generated code)
        qualname = getattr(code, "co_qualname", None)  # 3.11+; on 3.10 names must do
        candidates = [
            c for c in codes
            if c.co_name == code.co_name and (qualname is None or c.co_qualname == qualname)  # type: ignore[attr-defined]
        ]
        label = f"{qualname or function.__qualname__}, {os.path.relpath(code.co_filename, root)}"
        checked.append(where)
        if "<overload" not in where and hasattr(typing, "get_overloads"):
            count = len(typing.get_overloads(function))
            if count:
                overloads[where] = count
        shape = line_shape(code)
        placed = [c for c in candidates if line_shape(c) == shape]
        if placed:
            if not any(code == c for c in placed):
                code_problems.append(f"{where} ({label}, line {code.co_firstlineno}): " + describe_code(code, placed[0]))
            continue
        bodies = [c for c in candidates if same_body(code, c)]
        if not candidates:
            lines.append(f"{where} ({label}): the edited file has no definition of that name")
        elif not bodies and all(c.co_firstlineno != code.co_firstlineno for c in candidates):
            lines.append(
                f"{where} ({label}): runs from line {code.co_firstlineno}, the edited file defines it at line "
                f"{', '.join(str(c.co_firstlineno) for c in candidates)} (and its code is none of those)"
            )
        elif not bodies:
            match = next(c for c in candidates if c.co_firstlineno == code.co_firstlineno)
            lines.append(f"{where} ({label}): starts at the right line but " + describe_lines(shape, line_shape(match)))
        elif all(c.co_firstlineno != code.co_firstlineno for c in bodies):
            lines.append(
                f"{where} ({label}): runs from line {code.co_firstlineno}, "
                f"the edited file defines it at line {', '.join(str(c.co_firstlineno) for c in bodies)}"
            )
        else:
            match = next(c for c in bodies if c.co_firstlineno == code.co_firstlineno)
            lines.append(f"{where} ({label}): starts at the right line but " + describe_lines(shape, line_shape(match)))
    return {"checked": sorted(checked), "lines": lines, "code": code_problems, "overloads": overloads}
