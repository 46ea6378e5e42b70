"""Writes a running definition back into a document: libcst builds, a line diff trims.

`ast` finds the definition (and decides whether the request is ambiguous); libcst,
whose concrete tree reproduces source byte for byte, parses the module-level
statement holding it and regenerates that statement with only the definition
replaced (or the new one inserted); a line diff then turns old and new statement
into the one minimal edit, which is checked to stay inside the definition before it
is returned. Deliberate choices (see docs/lsp.md):

- The replaced text runs from the first decorator to the last line of the body,
  the same span the "Apply" action sends. Comments and blank lines *above* the
  definition belong to the file and are kept; comment lines at the top of the new
  source are added just above its first decorator unless the file already has them
  there. Comments after the body (indented deeper, which libcst attaches to the body)
  are kept too.
- The new definition is re-indented to the target's nesting in the file's own
  indentation (tabs or spaces) and line breaks (CRLF or LF); the body keeps the
  replaced body's indentation unit; lines inside multi-line strings keep their bytes.
- A qualname absent from the file is inserted at the end of its class, or at the
  end of the module (before a trailing `if __name__ == "__main__":` block).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Iterator, Sequence, Union

import libcst as cst

from livefix.errors import LivefixError
from livefix.lsp.definitions import Definition, DefinitionIndex, is_target_qualname
from livefix.lsp.text import Lines, dedent_code, normalize_newlines, split_lines

DefNode = Union[cst.FunctionDef, cst.ClassDef]
# (parent node, field name, index in that field's sequence or None) from the module down.
Path = list[tuple[cst.CSTNode, str, Union[int, None]]]


@dataclass(frozen=True)
class TextChange:
    """Replace `text[start:end]` with `new_text` (offsets in Python characters)."""

    start: int
    end: int
    new_text: str


def persist_change(text: str, qualname: str, source: str, index: DefinitionIndex | None = None) -> TextChange | None:
    """The minimal change that makes `text` define `qualname` as `source`.

    `index` is `text`'s definition index if the caller has it (the server caches one
    per document version). None when the document already has exactly that text.
    Raises `LivefixError` (`syntax`, `notFound`, `invalid`) and changes nothing when
    it cannot be done safely.
    """
    if not is_target_qualname(qualname):
        raise LivefixError(
            "invalid",
            f"`{qualname}` is not a module-level or class-level definition, so it cannot be persisted",
            qualname=qualname,
        )
    try:
        index = index or DefinitionIndex.parse(text)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line}: {getattr(exc, 'msg', exc)})" if line else ""
        raise LivefixError("syntax", f"the document does not parse{where}; fix it before persisting", line=line) from None
    lines = Lines(text)
    style = _Style(indent=_indent_unit(lines, index), newline=lines.newline())
    new = _NewDefinition.parse(source, qualname, style.newline)
    target = _choose_target(index, qualname, new)
    scope = qualname.rpartition(".")[0]
    if target is None and not scope:
        inserted = _insert_in_module(text, lines, index, new, style)
        _verify(inserted.new_text, qualname)
        _check_bounds(text, qualname, inserted, None, None)
        return inserted

    # libcst parses only the module-level statement holding the definition (or its
    # class): a top-level statement parses on its own, and this keeps persisting a
    # 5,000-line file far below the cost of a whole-file libcst parse.
    if target is not None:
        anchor = target
    else:
        classes = [d for d in index.by_qualname.get(scope, []) if d.kind == "class"]
        if len(classes) != 1:
            problem = "not defined" if not classes else f"defined {len(classes)} times"
            raise LivefixError(
                "notFound" if not classes else "invalid",
                f"`{qualname}` is not in this file and its class `{scope}` is {problem} here; persist it by hand",
                qualname=qualname,
            )
        anchor = classes[0]
    first, last = index.statement_containing(anchor.first_line) or (anchor.first_line, anchor.end_line)
    begin, end = lines.offset(first), lines.offset(last + 1)
    piece = text[begin:end]
    config = cst.PartialParserConfig(default_indent=style.indent, default_newline=style.newline)
    try:
        tree = cst.parse_module(piece, config)
    except cst.ParserSyntaxError as exc:
        raise LivefixError(
            "syntax", f"the document does not parse (line {first + exc.raw_line}); fix it before persisting"
        ) from None
    if tree.code != piece:  # libcst promises a byte-exact round trip; never edit if it did not hold
        raise LivefixError("internal", "libcst did not reproduce the document exactly; nothing was changed")
    # Ordinals count definitions of the same qualname from the top of the file.
    before = sum(1 for d in index.by_qualname.get(anchor.qualname, []) if d.first_line < first)
    keep: tuple[int | None, int | None] = (None, None)
    if target is not None:
        # Above a module-level definition the comments are outside the parsed piece.
        above = _comments_above(lines, target.first_line) if first == target.first_line else []
        new_tree = _replace(tree, target, target.ordinal - before, new, above)
        keep = (lines.offset(target.first_line), lines.offset(target.end_line + 1))
    else:
        new_tree = _insert_in_class(tree, anchor, anchor.ordinal - before, new)
    new_piece = new_tree.code
    # Whole module-level statements replaced by whole statements: if the new piece
    # parses, so does the file, without parsing all of it again.
    _verify(new_piece, qualname)
    local = minimal_change(piece, new_piece)
    change = None if local is None else TextChange(begin + local.start, begin + local.end, local.new_text)
    _check_bounds(text, qualname, change, *keep)
    return change


@dataclass(frozen=True)
class _Style:
    indent: str
    newline: str


def _indent_unit(lines: Lines, index: DefinitionIndex) -> str:
    """The file's indentation unit, as libcst would infer it from the whole file."""
    if index.indent_sample is not None:
        outer, inner = (lines.line(n) for n in index.indent_sample)
        outer_ws = outer[: len(outer) - len(outer.lstrip(" \t"))]
        inner_ws = inner[: len(inner) - len(inner.lstrip(" \t"))]
        if inner_ws.startswith(outer_ws) and len(inner_ws) > len(outer_ws):
            return inner_ws[len(outer_ws) :]
    return "    "


def _insert_in_module(
    text: str, lines: Lines, index: DefinitionIndex, new: "_NewDefinition", style: _Style
) -> TextChange:
    """Insert a new module-level definition before a final `__main__` block, or at the end."""
    node = new.node.with_changes(leading_lines=tuple(new.comments))
    code = cst.Module(body=[node], default_indent=style.indent, default_newline=style.newline).code
    nl = style.newline
    if index.main_guard_line is not None:
        at = index.main_guard_line
        while at > 0 and lines.line(at - 1).lstrip().startswith("#"):
            at -= 1  # the comments just above the guard stay with it
        blank_above = 0
        while blank_above < at and not lines.line(at - 1 - blank_above).strip():
            blank_above += 1
        offset = lines.offset(at)
        return TextChange(offset, offset, nl * max(2 - blank_above, 0) + code + nl + nl)
    stripped = text.rstrip(" \t\r\n")
    if not stripped:
        return TextChange(0, len(text), code)
    # Two blank lines before a module-level definition (PEP 8), counting those already there.
    tail = text[len(stripped) :]
    blank_lines = max(len(split_lines(tail.lstrip(" \t"))) - 1, 0) if tail else 0
    prefix = ("" if text.endswith(("\n", "\r")) else nl) + nl * max(2 - blank_lines, 0)
    return TextChange(len(text), len(text), prefix + code)


class _NewDefinition:
    """The definition to write, parsed with libcst in the document's line breaks."""

    def __init__(self, node: DefNode, comments: list[cst.EmptyLine], decorators: tuple[str, ...]) -> None:
        self.node = node
        self.comments = comments
        self.decorators = decorators

    @classmethod
    def parse(cls, source: str, qualname: str, newline: str) -> "_NewDefinition":
        code = dedent_code(normalize_newlines(source)).strip("\n") + "\n"
        try:
            statements = ast.parse(code).body
            module = cst.parse_module(normalize_newlines(code, newline))
        except (SyntaxError, ValueError, cst.ParserSyntaxError) as exc:
            raise LivefixError(
                "syntax", f"the source to persist for `{qualname}` does not parse: {exc}", qualname=qualname
            ) from None
        name = qualname.rpartition(".")[2]
        if (
            len(statements) != 1
            or len(module.body) != 1
            or not isinstance(module.body[0], (cst.FunctionDef, cst.ClassDef))
            or module.body[0].name.value != name
        ):
            raise LivefixError(
                "invalid", f"the source to persist must be exactly one definition of `{name}`", qualname=qualname
            )
        node = module.body[0]
        comments = [line for line in (*module.header, *node.leading_lines) if line.comment is not None]
        decorators = tuple(ast.dump(d) for d in getattr(statements[0], "decorator_list", []))
        return cls(node.with_changes(leading_lines=()), comments, decorators)


def _choose_target(index: DefinitionIndex, qualname: str, new: _NewDefinition) -> Definition | None:
    candidates = index.candidates(qualname)
    if len(candidates) > 1:
        # `@property def x` and `@x.setter def x` share a qualname: the decorators tell them apart.
        candidates = [c for c in candidates if c.decorators == new.decorators] or candidates
    if len(candidates) > 1:
        lines = ", ".join(str(c.def_line + 1) for c in candidates)
        raise LivefixError(
            "invalid",
            f"`{qualname}` is defined {len(candidates)} times in this file (lines {lines}); "
            "persist it by hand",
            qualname=qualname,
            reason="ambiguous",
        )
    return candidates[0] if candidates else None


def _comments_above(lines: Lines, line: int) -> list[str]:
    """The comment lines directly above `line`, up to the first line that is not one."""
    found: list[str] = []
    while line > 0 and lines.line(line - 1).lstrip().startswith("#"):
        found.insert(0, lines.line(line - 1).strip())
        line -= 1
    return found


def _replace(tree: cst.Module, target: Definition, ordinal: int, new: "_NewDefinition", above: list[str]) -> cst.Module:
    found = _find(tree, target.qualname, ordinal)
    if found is None:
        raise LivefixError("internal", f"libcst and ast disagree about `{target.qualname}`; nothing was changed")
    old, path = found
    node = new.node
    if isinstance(old.body, cst.IndentedBlock):
        if isinstance(node.body, cst.IndentedBlock):
            # Keep the file's body indentation and the comments libcst hangs on the body's end.
            node = node.with_changes(body=node.body.with_changes(indent=old.body.indent, footer=old.body.footer))
        elif old.body.footer:
            raise LivefixError(
                "invalid",
                f"`{target.qualname}` is followed by comments that a one-line definition cannot keep; persist it by hand",
            )
    have = above + [line.comment.value for line in old.leading_lines if line.comment is not None]
    node = node.with_changes(leading_lines=(*old.leading_lines, *_missing_comments(have, new.comments)))
    return _rebuild(path, node)


def _insert_in_class(tree: cst.Module, cls: Definition, ordinal: int, new: "_NewDefinition") -> cst.Module:
    found = _find(tree, cls.qualname, ordinal)
    if found is None or not isinstance(found[0], cst.ClassDef):
        raise LivefixError("internal", f"libcst and ast disagree about `{cls.qualname}`; nothing was changed")
    cls_node, path = found
    node = new.node.with_changes(leading_lines=(cst.EmptyLine(indent=False), *new.comments))
    if isinstance(cls_node.body, cst.IndentedBlock):
        block = cls_node.body.with_changes(body=(*cls_node.body.body, node))
    else:  # `class C: pass` becomes a block holding the old one-liner and the new method
        suite = cls_node.body
        assert isinstance(suite, cst.SimpleStatementSuite)
        block = cst.IndentedBlock(
            body=[cst.SimpleStatementLine(body=suite.body, trailing_whitespace=suite.trailing_whitespace), node]
        )
    return _rebuild(path, cls_node.with_changes(body=block))


def _missing_comments(have: list[str], comments: list[cst.EmptyLine]) -> list[cst.EmptyLine]:
    """`comments` unless the file's lines above the definition already end with them."""
    if not comments:
        return []
    want = [line.comment.value for line in comments if line.comment is not None]
    return [] if have[-len(want) :] == want else comments


# -- walking the concrete tree like definitions.py walks the ast --------------------


def _find(tree: cst.Module, qualname: str, ordinal: int) -> tuple[DefNode, Path] | None:
    seen = 0
    for found_qualname, node, path in _walk(tree, tree.body, "", []):
        if found_qualname == qualname:
            if seen == ordinal:
                return node, path
            seen += 1
    return None


def _walk(parent: cst.CSTNode, body: Sequence[cst.CSTNode], scope: str, path: Path) -> Iterator[tuple[str, DefNode, Path]]:
    for position, statement in enumerate(body):
        here: Path = [*path, (parent, "body", position)]
        if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
            qualname = f"{scope}.{statement.name.value}" if scope else statement.name.value
            yield qualname, statement, here
            if isinstance(statement, cst.ClassDef) and isinstance(statement.body, cst.IndentedBlock):
                block = statement.body
                yield from _walk(block, block.body, qualname, [*here, (statement, "body", None)])
        elif not isinstance(statement, cst.SimpleStatementLine):
            yield from _walk_compound(statement, scope, here)


def _walk_compound(node: cst.CSTNode, scope: str, path: Path) -> Iterator[tuple[str, DefNode, Path]]:
    """Descend through compound statements in source order, as `definitions._blocks` does."""
    for name in ("body", "handlers", "cases", "orelse", "finalbody"):
        value = getattr(node, name, None)
        if value is None:
            continue
        if isinstance(value, (tuple, list)):
            for position, child in enumerate(value):
                yield from _walk_compound(child, scope, [*path, (node, name, position)])
        elif isinstance(value, cst.IndentedBlock):
            yield from _walk(value, value.body, scope, [*path, (node, name, None)])
        elif isinstance(value, cst.CSTNode) and not isinstance(value, cst.SimpleStatementSuite):
            yield from _walk_compound(value, scope, [*path, (node, name, None)])  # Else, Finally, elif


def _rebuild(path: Path, node: cst.CSTNode) -> cst.Module:
    """Put `node` at the end of `path`, copying each ancestor with the new child."""
    for parent, name, position in reversed(path):
        if position is None:
            node = parent.with_changes(**{name: node})
        else:
            children = list(getattr(parent, name))
            children[position] = node
            node = parent.with_changes(**{name: children})
    assert isinstance(node, cst.Module)
    return node


# -- from two texts to one edit -----------------------------------------------------


def minimal_change(old: str, new: str) -> TextChange | None:
    """The smallest whole-line replacement turning `old` into `new`, None if equal."""
    if old == new:
        return None
    old_lines, new_lines = split_lines(old), split_lines(new)
    head = 0
    while head < min(len(old_lines), len(new_lines)) and old_lines[head] == new_lines[head]:
        head += 1
    tail = 0
    while (
        tail < min(len(old_lines), len(new_lines)) - head
        and old_lines[len(old_lines) - 1 - tail] == new_lines[len(new_lines) - 1 - tail]
    ):
        tail += 1
    start = sum(len(line) for line in old_lines[:head])
    old_tail = sum(len(line) for line in old_lines[len(old_lines) - tail :])
    new_tail = sum(len(line) for line in new_lines[len(new_lines) - tail :])
    return TextChange(start, len(old) - old_tail, new[start : len(new) - new_tail])


def _verify(code: str, qualname: str) -> None:
    """Refuse unless `code` (module-level statements) parses and defines `qualname`."""
    try:
        found = DefinitionIndex.parse(code).candidates(qualname)
    except (SyntaxError, ValueError) as exc:
        raise LivefixError(
            "internal", f"persisting `{qualname}` would break the file ({exc}); nothing was changed"
        ) from exc
    if not found:
        raise LivefixError("internal", f"persisting `{qualname}` did not produce it; nothing was changed")


def _check_bounds(
    old_text: str,
    qualname: str,
    change: TextChange | None,
    keep_before: int | None,
    keep_after: int | None,
) -> None:
    """Refuse unless the edit stays inside the definition (or only inserts)."""
    if change is None:
        return
    if keep_before is not None and keep_after is not None:
        inside = keep_before <= change.start and change.end <= keep_after
    else:  # an insertion may only rewrite a last line that had no line break
        replaced = old_text[change.start : change.end]
        inside = not replaced.strip() or (change.end == len(old_text) and len(split_lines(replaced)) == 1)
    if not inside:
        raise LivefixError("internal", f"the edit for `{qualname}` would touch text outside it; nothing was changed")
