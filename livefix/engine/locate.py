"""Finding modules and definitions: a module by name or file, a definition by qualified
name in a source text, and the text with one definition replaced (or inserted)."""

from __future__ import annotations

import ast
import os
import sys
import types
from dataclasses import dataclass

from livefix.engine import compiler
from livefix.errors import LivefixError

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def find_module(module: str | types.ModuleType | None, path: str | None) -> types.ModuleType:
    return find_modules(module, path)[0]


def find_modules(module: str | types.ModuleType | None, path: str | None) -> list[types.ModuleType]:
    """The module a change names; by path, every module loaded from that file. A module
    name that is not loaded falls back to the path (an editor's guess at the name of a
    script that runs as `__main__`)."""
    if isinstance(module, types.ModuleType):
        return [module]
    if module and module in sys.modules and sys.modules[module] is not None:
        return [sys.modules[module]]
    if path:
        wanted = os.path.realpath(path)
        found = [
            candidate
            for candidate in list(sys.modules.values())
            if isinstance(candidate, types.ModuleType)
            and getattr(candidate, "__file__", None)
            and os.path.realpath(candidate.__file__) == wanted
        ]
        if found:
            return found
        raise LivefixError("notFound", f"no module loaded in this process comes from {path}", path=path, module=module)
    if module:
        raise LivefixError("notFound", f"module {module!r} is not loaded in this process", module=module)
    raise LivefixError("invalid", "a change must name a module or a path")


@dataclass
class Located:
    """A definition's place in a text: lines [first, last] (1-based, first includes decorators)."""

    first: int
    last: int
    indent: str
    node: ast.stmt


def parse_text(text: str, filename: str) -> ast.Module:
    try:
        return ast.parse(text, filename=filename)
    except SyntaxError as error:
        raise LivefixError(
            "syntax",
            f"the running source of {filename} does not parse ({error.msg} at line {error.lineno})",
            path=filename, line=error.lineno,
        ) from None


def find_definition(tree: ast.Module, text_lines: list[str], qualname: str, prefer: str | None = None,
                    near_line: int | None = None) -> Located | None:
    """The definition `qualname` (e.g. `Class.Inner.method`) in a parsed text."""
    parts = qualname.split(".")
    body: list[ast.stmt] = tree.body
    for part in parts[:-1]:
        owner = next((n for n in body if isinstance(n, ast.ClassDef) and n.name == part), None)
        if owner is None:
            return None
        body = owner.body
    candidates = [n for n in body if isinstance(n, _DEFS) and n.name == parts[-1]]
    if not candidates:
        return None
    if prefer is not None:
        preferred = [n for n in candidates if _accessor_of(n) == prefer]
        candidates = preferred or candidates
    if near_line is not None:
        node = min(candidates, key=lambda n: abs(compiler.first_line_node(n).lineno - near_line))
    else:
        node = candidates[-1]
    first = compiler.first_line_node(node).lineno
    line = text_lines[first - 1] if first - 1 < len(text_lines) else ""
    indent = line[: len(line) - len(line.lstrip(" \t"))]
    return Located(first=first, last=node.end_lineno or node.lineno, indent=indent, node=node)


def find_class_body_end(tree: ast.Module, text_lines: list[str], class_path: list[str]) -> tuple[int, str] | None:
    """Where to insert a new member of class `class_path` ([] = the module): the line after
    its last statement, and the indentation of its body."""
    body: list[ast.stmt] = tree.body
    owner: ast.ClassDef | None = None
    for part in class_path:
        owner = next((n for n in body if isinstance(n, ast.ClassDef) and n.name == part), None)
        if owner is None:
            return None
        body = owner.body
    if owner is None:
        return (len(text_lines), "")
    last = owner.body[-1]
    first_member = owner.body[0]
    line = text_lines[first_member.lineno - 1]
    indent = line[: len(line) - len(line.lstrip(" \t"))]
    return (last.end_lineno or last.lineno, indent)


def _accessor_of(node: ast.stmt) -> str:
    for decorator in getattr(node, "decorator_list", []):
        if isinstance(decorator, ast.Attribute) and decorator.attr in ("setter", "deleter", "getter"):
            return decorator.attr
    return "getter"


def check_definition_source(source: str, qualname: str, filename: str, first_line: int) -> ast.stmt:
    """The one definition a change's source must contain, named like the qualname's last part."""
    if not source.strip():
        raise LivefixError("invalid", f"the new source of {qualname} is empty", qualname=qualname)
    tree = _parse_definition(source, filename, first_line, qualname)
    definitions = list(tree.body)
    name = qualname.rsplit(".", 1)[-1]
    if len(definitions) != 1 or not isinstance(definitions[0], _DEFS):
        found = ", ".join(_describe(n) for n in definitions) or "nothing"
        raise LivefixError(
            "invalid",
            f"the new source of {qualname} must be exactly one def or class statement; it contains {found}",
            qualname=qualname,
        )
    if definitions[0].name != name:
        raise LivefixError(
            "invalid",
            f"the new source defines `{definitions[0].name}`, not `{name}` (qualname {qualname})",
            qualname=qualname, defines=definitions[0].name,
        )
    return definitions[0]


def _parse_definition(source: str, filename: str, first_line: int, qualname: str) -> ast.Module:
    """Parse a definition's source; a syntax error is named at its line in the file, with
    the text and column of the source as sent (CPython would read the text from the file on
    disk at the line number counted inside the source, and clip the column to that line)."""
    if not isinstance(source, str) or "\x00" in source:
        return compiler.parse(source, filename, first_line, what=f"source of {qualname}")  # the usual refusal
    dedented = compiler.dedent_definition(source)
    try:
        return compiler.parse(dedented, "<livefix definition>", first_line, what=f"source of {qualname}")
    except LivefixError as error:
        if error.kind != "syntax" or "line" not in error.details:
            raise LivefixError(error.kind, error.message.replace("<livefix definition>", filename),
                               **{**error.details, "path": filename}) from None
        inner = error.details["line"] - first_line + 1
        sent, cut = source.splitlines(), dedented.splitlines()
        text = sent[inner - 1] if 0 < inner <= len(sent) else error.details.get("text", "")
        removed = len(text) - len(cut[inner - 1]) if 0 < inner <= len(cut) and len(sent) == len(cut) else 0
        column = (error.details.get("column") or 0) + max(removed, 0)
        message = error.message.split(": ", 1)[-1]
        raise LivefixError(
            "syntax", f"{filename}:{error.details['line']}:{column}: {message}",
            path=filename, line=error.details["line"], column=column, text=text, qualname=qualname,
        ) from None


def _describe(node: ast.stmt) -> str:
    if isinstance(node, _DEFS):
        return f"`{node.name}`"
    return type(node).__name__.lower()


def reindent(source: str, indent: str) -> list[str]:
    """The definition's lines, dedented, then indented by `indent`, each ending in a newline."""
    lines = compiler.dedent_definition(source).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return [(indent + line if line.strip() else "") + "\n" for line in lines]


def span_from_code(lines: list[str], first: int, name: str) -> Located | None:
    """The definition starting at line `first` (its running code's co_firstlineno), found
    without parsing the whole file: it ends before the next line indented no deeper than
    it. Checked by parsing just that span; None when the check fails."""
    if not 1 <= first <= len(lines):
        return None
    head = lines[first - 1]
    indent = head[: len(head) - len(head.lstrip(" \t"))]
    last = first
    for number in range(first + 1, len(lines) + 1):
        line = lines[number - 1]
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if len(line) - len(line.lstrip(" \t")) <= len(indent) and not stripped.startswith((")", "]", "}")):
            break
        last = number
    span = compiler.dedent_definition("".join(lines[first - 1 : last]))
    try:
        tree = ast.parse(span)
    except SyntaxError:
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], _DEFS) or tree.body[0].name != name:
        return None
    return Located(first=first, last=last, indent=indent, node=tree.body[0])


def splice(
    text: str, qualname: str, source: str, filename: str, near_line: int | None = None, running_line: int | None = None
) -> tuple[str, tuple[int, int]]:
    """`text` with the definition `qualname` replaced by `source` (or inserted where it
    belongs when absent). Returns the new text and the lines [first, last] the definition
    occupies in it.

    `running_line` is where the running code says the definition starts: then only that
    definition is parsed, not the whole file."""
    lines = text.splitlines(True)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    prefer = _accessor_of(check_definition_source(source, qualname, filename, near_line or 1))
    name = qualname.rsplit(".", 1)[-1]
    located = span_from_code(lines, running_line, name) if running_line else None
    if located is not None and _accessor_of(located.node) != prefer:
        located = None  # a property's other accessor: find the right one below
    tree = None
    if located is None:
        tree = parse_text(text, filename)
        located = find_definition(tree, [l.rstrip("\r\n") for l in lines], qualname, prefer=prefer, near_line=near_line)
    if located is not None:
        new_lines = [l.replace("\n", newline) if newline != "\n" else l for l in reindent(source, located.indent)]
        span = (located.first, located.first + len(new_lines) - 1)
        return "".join(lines[: located.first - 1] + new_lines + lines[located.last :]), span
    parts = qualname.split(".")
    tree = tree or parse_text(text, filename)
    place = find_class_body_end(tree, [l.rstrip("\r\n") for l in lines], parts[:-1])
    if place is None:
        raise LivefixError(
            "notFound",
            f"class {'.'.join(parts[:-1])} is not defined in {filename}; cannot add {qualname}",
            qualname=qualname, path=filename,
        )
    after, indent = place
    head = lines[:after]
    if head and not head[-1].endswith("\n"):
        head[-1] += newline
    new_lines = [l.replace("\n", newline) if newline != "\n" else l for l in reindent(source, indent)]
    separator = [newline] if indent else [newline, newline]
    first = after + len(separator) + 1
    return "".join(head + separator + new_lines + lines[after:]), (first, first + len(new_lines) - 1)
