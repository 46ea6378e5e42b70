"""Top-level and class-body statements: what each binds, how old and new ones pair up,
and whether a pair changed."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from livefix.engine import compiler
from livefix.engine.textdiff import Chunk, statement_text

DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)
_DEFS = DEFS
_ACCESSOR_SUFFIXES = {"getter": "fget", "setter": "fset", "deleter": "fdel"}


COMPOUND = (ast.If, ast.Try)


def branches(node: ast.stmt) -> list[list[ast.stmt]]:
    """The statement lists of an `if` or `try` block, in a fixed order."""
    if isinstance(node, ast.If):
        return [node.body, node.orelse]
    if isinstance(node, ast.Try):
        return [node.body, *[handler.body for handler in node.handlers], node.orelse, node.finalbody]
    return []


def bound_names(node: ast.stmt) -> list[str]:
    """Names a module- or class-level statement binds (for pairing and rebinding)."""
    names: list[str] = []
    if isinstance(node, (*_DEFS, ast.ClassDef)):
        return [node.name]
    if isinstance(node, COMPOUND):  # definitions guarded by `if` / `try: import ... except`
        for branch in branches(node):
            for inner in branch:
                names.extend(n for n in bound_names(inner) if n not in names)
        return names
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        for alias in node.names:
            if alias.name != "*":
                names.append((alias.asname or alias.name).split(".")[0])
        return names
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    for target in targets:
        for sub in ast.walk(target):
            if isinstance(sub, ast.Name):
                names.append(sub.id)
    return names


def statement_key(node: ast.stmt) -> tuple[str, ...]:
    if isinstance(node, _DEFS):
        return ("def", node.name)
    if isinstance(node, ast.ClassDef):
        return ("class", node.name)
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        names = bound_names(node)
        if names:
            return ("assign", *names)
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
        return ("docstring",)
    if isinstance(node, ast.If):  # paired by their condition and what they bind; bodies compared inside
        return ("if", ast.dump(node.test), *bound_names(node))
    if isinstance(node, ast.Try):  # told apart by what their body binds (`import x as y`...)
        body = tuple(name for inner in node.body for name in bound_names(inner))
        return ("try", *[ast.dump(h.type) if h.type is not None else "" for h in node.handlers], *body)
    return ("stmt", ast.dump(node))


def same_shape(old: ast.stmt, new: ast.stmt) -> bool:
    """Two blocks whose branches can be diffed statement by statement."""
    return isinstance(old, COMPOUND) and type(old) is type(new) and len(branches(old)) == len(branches(new))


@dataclass
class Pair:
    key: tuple[str, ...]
    old: ast.stmt | None
    new: ast.stmt | None
    changed: bool


def pair_statements(
    old: list[ast.stmt],
    old_chunk: Chunk | None,
    new: list[ast.stmt],
    new_chunk: Chunk,
    stale: frozenset[str] = frozenset(),
    prefix: str = "",
    open_classes: frozenset[str] = frozenset(),
) -> list[Pair]:
    """Pair old and new statements by key (and occurrence), in new order, removed ones last.

    `stale` definitions count as changed whatever their text; classes named in
    `open_classes` too (some member runs other code or at other lines than the text says)."""
    by_key: dict[tuple[str, ...], list[ast.stmt]] = {}
    for node in old:
        by_key.setdefault(statement_key(node), []).append(node)
    # A stale name runs the last definition of it (earlier ones are overload stubs or
    # shadowed), unless they are a property's accessors, which all run.
    binding = {node.name: id(node) for node in new if isinstance(node, _DEFS)}
    pairs: list[Pair] = []
    for node in new:
        key = statement_key(node)
        candidates = by_key.get(key)
        previous = candidates.pop(0) if candidates else None
        if previous is None:
            pairs.append(Pair(key, None, node, True))
        else:
            changed = (
                old_chunk is None
                or _differs(previous, old_chunk, node, new_chunk)
                or (isinstance(node, _DEFS) and prefix + node.name in stale
                    # (decorators read from the old side: the commit rewrites the new one's)
                    and (binding.get(node.name) == id(node) or accessor(previous) != "fget" or _is_property(previous)))
                or (isinstance(node, ast.ClassDef) and prefix + node.name in open_classes)
                or (key == ("docstring",) and prefix + "__doc__" in stale)
                or (key[0] == "assign" and any(prefix + name in stale for name in key[1:]))
            )
            pairs.append(Pair(key, previous, node, changed))
    for key, remaining in by_key.items():
        for node in remaining:
            pairs.append(Pair(key, node, None, True))
    return pairs


def _is_property(node: ast.stmt) -> bool:
    return any(isinstance(d, ast.Name) and d.id in ("property", "cached_property")
               or isinstance(d, ast.Attribute) and d.attr in ("getter", "cached_property")
               for d in getattr(node, "decorator_list", []))


def owners(qualnames: frozenset[str]) -> frozenset[str]:
    """Every class qualname that contains one of `qualnames` (`A.B.f` -> `A`, `A.B`)."""
    found: set[str] = set()
    for qualname in qualnames:
        parts = qualname.split(".")
        found.update(".".join(parts[:index]) for index in range(1, len(parts)))
    return frozenset(found)


def _differs(old: ast.stmt, old_chunk: Chunk, new: ast.stmt, new_chunk: Chunk) -> bool:
    """Definitions differ when their text does (their line table is part of what runs);
    other statements only when their syntax tree does (a comment must not reset state)."""
    if isinstance(new, (*_DEFS, ast.ClassDef)):
        return _text(old_chunk, old) != _text(new_chunk, new)
    return ast.dump(old) != ast.dump(new)


def same_but_layout(old_text: str, old: ast.stmt, new_text: str, new: ast.stmt) -> bool:
    """Are two texts of a definition the same code, comments included, but for indentation,
    trailing whitespace and line breaks? (The language server persists a running definition
    in the file's own indentation: tabs, or another unit, where the process ran spaces.)

    Line by line without the whitespace around it, and as syntax trees without positions:
    the lines alone would miss a statement moved into or out of a block, the trees alone a
    comment. Columns may differ; lines (of the definition) do not."""
    if dedent_lines(old_text) == dedent_lines(new_text):
        return True
    old_lines, new_lines = old_text.splitlines(), new_text.splitlines()
    if len(old_lines) != len(new_lines) or any(a.strip() != b.strip() for a, b in zip(old_lines, new_lines)):
        return False
    return ast.dump(old) == ast.dump(new)


def _text(chunk: Chunk, node: ast.stmt) -> str:
    return dedent_lines(statement_text(chunk, node))


def dedent_lines(text: str) -> str:
    return compiler.dedent_definition(text)


def decorators_of(node: ast.stmt) -> list[str]:
    """A definition's decorators as syntax (quotes, spacing and line breaks do not count)."""
    return [ast.dump(decorator) for decorator in getattr(node, "decorator_list", [])]


def accessor(node: ast.stmt) -> str:
    """Which property accessor a `def` is: fget unless decorated `@name.setter`/`.deleter`."""
    for decorator in getattr(node, "decorator_list", []):
        if isinstance(decorator, ast.Attribute) and decorator.attr in _ACCESSOR_SUFFIXES:
            return _ACCESSOR_SUFFIXES[decorator.attr]
    return "fget"


def mangle(owner: object, name: str) -> str:
    """The key under which a class body stores `name` (`__private` -> `_Class__private`)."""
    if not isinstance(owner, type) or not name.startswith("__") or name.endswith("__"):
        return name
    stripped = owner.__name__.lstrip("_")
    return f"_{stripped}{name}" if stripped else name
