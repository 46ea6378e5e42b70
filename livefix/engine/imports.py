"""Names a module binds by import statements at module level, found without parsing the file.

CPython 3.11+ compiles `name.attr(...)` differently when `name` was bound by an import at
module level (it assumes a module and skips the method-call optimisation). A definition
compiled alone, as livefix compiles the statements that changed, would not know, and its
bytecode would differ from the file's. So the changed statements are compiled behind an
`if 0: import ...` of these names: it emits no code, but the symbol table records them.
"""

from __future__ import annotations

import ast
import textwrap

_SCOPE_OPENERS = ("if ", "if(", "elif", "else", "try", "except", "finally", "with ", "for ", "while ", "match ")


def module_level_imports(text: str) -> frozenset[str]:
    """The names bound by `import` / `from ... import` at module level (also under `if`,
    `try` and `with` blocks there). C-speed search for "import"; each hit is looked at alone."""
    names: set[str] = set()
    position = text.find("import")
    while position >= 0:
        start = text.rfind("\n", 0, position) + 1
        end = text.find("\n", position)
        end = len(text) if end < 0 else end
        line = text[start:end]
        stripped = line.lstrip(" \t")
        if stripped.startswith("import ") or (stripped.startswith("from ") and " import " in stripped):
            if stripped is line or _at_module_level(text, start):
                names.update(_bound(text, start, end))
        position = text.find("import", end)
    return frozenset(names)


def import_prelude(names: frozenset[str], line: int) -> ast.stmt:
    """`if 0: import a, b`: binds nothing at run time, marks the names import-bound."""
    node = ast.If(test=ast.Constant(0), body=[ast.Import(names=[ast.alias(name=n) for n in sorted(names)])], orelse=[])
    for part in ast.walk(node):
        part.lineno, part.col_offset = line, 0  # type: ignore[attr-defined]
        part.end_lineno, part.end_col_offset = line, 0  # type: ignore[attr-defined]
    return node


def _at_module_level(text: str, start: int) -> bool:
    """Is the indented line at `start` inside a module-level block (not a def or class)?"""
    cursor = start
    while cursor > 0:
        cursor = text.rfind("\n", 0, cursor - 1) + 1
        first = text[cursor : cursor + 1]
        if first and first not in " \t\r\n#":
            return text.startswith(_SCOPE_OPENERS, cursor)
    return False


def _bound(text: str, start: int, end: int) -> list[str]:
    statement = text[start:end]
    if "(" in statement and ")" not in statement:  # a parenthesised list over several lines
        close = text.find(")", end)
        statement = text[start : close + 1] if close >= 0 else statement
    while statement.rstrip().endswith("\\"):
        following = text.find("\n", start + len(statement) + 1)
        statement = text[start : following if following >= 0 else len(text)]
        if following < 0:
            break
    try:
        tree = ast.parse(textwrap.dedent(statement.split(";")[0]))
    except SyntaxError:
        return []
    found: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name != "*":
                    found.append((alias.asname or alias.name).split(".")[0])
    return found
