"""Which loaded modules differ from their files, and which definitions differ."""

from __future__ import annotations

import ast
import os
import sys
import types
from typing import Any

from livefix.engine import locate
from livefix.engine.planner import Edit
from livefix.engine.statements import bound_names, pair_statements, same_but_layout
from livefix.engine.sources import SourceStore, file_stamp, module_file, read_source
from livefix.engine.compiler import first_line_node
from livefix.engine.swap import functions_of
from livefix.engine.textdiff import Chunk, diff_texts, statement_text

_OWN_PACKAGE = __name__.split(".")[0]
_OWN_PREFIX = _OWN_PACKAGE + "."
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def modified_modules(store: SourceStore, names: list[str] | None, include_libraries: bool) -> list[dict[str, Any]]:
    result = []
    loaded = sys.modules
    candidates = names if names is not None else sorted(loaded)
    for name in candidates:
        module = loaded.get(name)
        if not isinstance(module, types.ModuleType):
            if names is not None:
                from livefix.errors import LivefixError

                raise LivefixError("notFound", f"module {name!r} is not loaded in this process", module=name)
            continue
        if names is None and (name == _OWN_PACKAGE or name.startswith(_OWN_PREFIX)):
            continue
        path = module_file(module)
        if path is None or (names is None and not include_libraries and store.is_library(path)):
            continue
        running = store.get(module)
        if running is None or running.text is None:
            continue
        # Listed for the file's text alone when the running code is exactly the running text:
        # then an unchanged file (by its stamp) of an unchanged running source is not read again.
        clean = not running.stale and not running.running_lines and not running.orphans and not running.cache_older
        try:
            stamp = file_stamp(path)
            if clean and store.matches_file(running, stamp):
                continue
            disk = read_source(path)
        except (OSError, UnicodeDecodeError, SyntaxError):
            continue
        if disk == running.text and clean:
            store.note_matching_file(running, stamp)
            continue
        changed, added, removed, shifted = definition_changes(running.text, disk, path, module)
        if clean and not (changed or added or removed or shifted) and _same_lines(running.text, disk):
            # The same code, comments and lines, indented otherwise (a definition persisted in
            # the file's own style, tabs where the fix had spaces): the file says what runs.
            store.note_matching_file(running, stamp)
            continue
        changed += sorted(q for q in running.stale - running.missing if q not in changed)
        added += sorted(q for q in running.missing if q not in added)
        removed += [q for q in running.orphans if q not in removed]
        entry: dict[str, Any] = {"name": name, "path": path, "changed": changed, "added": added, "removed": removed}
        moved = sorted({q for q in running.running_lines if q not in running.stale and "<" not in q} | set(shifted))
        moved = [q for q in moved if q not in changed and q not in added]
        if moved:  # same code, at other lines than the file's: tracebacks and breakpoints are off
            entry["moved"] = moved
        if not (changed or added or removed or moved):
            entry["note"] = (
                "the file changed after the module was loaded (its bytecode cache records an older file), but no "
                "definition differs: only comments, blank lines or module-level statements, which livefix cannot "
                "compare with what ran"
                if disk == running.text else
                # Code that runs at other lines is named in `moved`: none does here.
                "only comments, blank lines or the layout of module-level statements differ: every definition "
                "runs the file's code at the file's lines"
            )
        if running.derived:
            entry["baseline"] = "derived"  # livefix did not see the import: definitions checked, statements not
        result.append(entry)
    return result


def definition_changes(
    old: str, new: str, path: str, module: types.ModuleType | None = None
) -> tuple[list[str], list[str], list[str], list[str]]:
    """Qualnames of definitions changed, added and removed from `old` to `new`, and of the
    unchanged ones the change moves to other lines (tracebacks and breakpoints off until a
    reload): in the changed span by their statements, below it by the running functions."""
    try:
        diff = diff_texts(old, new, path)
    except SyntaxError as error:
        return ([f"<file does not parse: line {error.lineno}: {error.msg}>"], [], [], [])
    changed: list[str] = []
    added: list[str] = []
    removed: list[str] = []
    moved: list[str] = []
    if diff is None:
        return changed, added, removed, moved
    _compare(diff.old.statements, diff.old, diff.new.statements, diff.new, "", changed, added, removed, moved)
    if module is not None and not diff.whole_file and diff.moves_lines:
        for function in functions_of(list(vars(module).values()), module.__name__, set()):
            code = function.__code__
            if code.co_filename == path and diff.shift_at(code.co_firstlineno) and "<" not in function.__qualname__:
                moved.append(function.__qualname__)
    return changed, added, removed, moved


def _compare(old: list[ast.stmt], old_chunk: Chunk, new: list[ast.stmt], new_chunk: Chunk, prefix: str,
             changed: list[str], added: list[str], removed: list[str], moved: list[str]) -> None:
    for pair in pair_statements(old, old_chunk, new, new_chunk):
        if pair.changed and _only_layout(pair.old, old_chunk, pair.new, new_chunk):
            pair.changed = False  # the same definition, indented otherwise: only its place can differ
        if not pair.changed:
            if isinstance(pair.new, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and pair.old is not None:
                if first_line_node(pair.old).lineno != first_line_node(pair.new).lineno:
                    moved.append(prefix + pair.new.name)
            continue
        node = pair.new or pair.old
        name = getattr(node, "name", None) or ", ".join(bound_names(node))  # type: ignore[arg-type]
        if pair.key == ("docstring",):
            name = "__doc__"
        label = prefix + name if name else prefix + ("<module statement>" if not prefix else "<class statement>")
        if pair.old is None:
            added.append(label)
        elif pair.new is None:
            removed.append(label)
        elif isinstance(pair.old, ast.ClassDef) and isinstance(pair.new, ast.ClassDef):
            before = (len(changed), len(added), len(removed))
            _compare(pair.old.body, old_chunk, pair.new.body, new_chunk, label + ".", changed, added, removed, moved)
            if before == (len(changed), len(added), len(removed)):  # no member differs: the class itself?
                if ast.dump(pair.old) != ast.dump(pair.new):
                    changed.append(label)  # its bases, keywords or decorators
                elif first_line_node(pair.old).lineno != first_line_node(pair.new).lineno:
                    moved.append(label)  # only comments or blank lines inside it differ
        elif label not in changed:
            changed.append(label)


def _only_layout(old: ast.stmt | None, old_chunk: Chunk, new: ast.stmt | None, new_chunk: Chunk) -> bool:
    if not isinstance(old, _DEFINITIONS) or not isinstance(new, _DEFINITIONS):
        return False
    return same_but_layout(statement_text(old_chunk, old), old, statement_text(new_chunk, new), new)


def _same_lines(old: str, new: str) -> bool:
    """Do two texts have the same lines but for the whitespace around each?"""
    old_lines, new_lines = old.split("\n"), new.split("\n")
    return len(old_lines) == len(new_lines) and all(a.strip() == b.strip() for a, b in zip(old_lines, new_lines))


def running_sources(edits: list[Edit], store: SourceStore, generation: int) -> list[dict[str, Any]]:
    """For each definition touched, the source that runs now (None where it no longer exists).

    The definition is cut from the running text where its running code says it starts (one
    span parsed); the whole text is parsed only when that does not find it."""
    result = []
    texts: dict[str, tuple[list[str], ast.Module | None] | None] = {}
    for edit in edits:
        if edit.note == "statement":
            continue
        module = sys.modules.get(edit.module)
        text = store.snapshot(edit.module)
        path = module_file(module) if module is not None else None
        source = None
        if text is not None and path is not None:
            if edit.module not in texts:
                texts[edit.module] = (text.splitlines(True), None)
            lines, tree = texts[edit.module]  # type: ignore[misc]
            name = edit.qualname.rsplit(".", 1)[-1]
            found = None
            first = _text_line(module, edit.qualname, store)
            if first is not None:
                found = locate.span_from_code(lines, first, name)
            if found is None:
                if tree is None:
                    try:
                        tree = ast.parse(text)
                    except SyntaxError:
                        tree = ast.Module(body=[], type_ignores=[])
                    texts[edit.module] = (lines, tree)
                found = locate.find_definition(tree, [l.rstrip("\r\n") for l in lines], edit.qualname)
            if found is not None:
                source = "".join(lines[found.first - 1 : found.last])
        result.append({"module": edit.module, "path": path, "qualname": edit.qualname,
                       "source": _dedent(source) if source else None, "generation": generation})
    return result


def _text_line(module: Any, qualname: str, store: SourceStore) -> int | None:
    """Where the running text has the definition, by its running code's first line."""
    owner = module
    for part in qualname.split("."):
        owner = getattr(owner, "__dict__", {}).get(part)
        if owner is None:
            return None
    function = getattr(owner, "fget", None) or getattr(owner, "__func__", None) or owner
    code = getattr(function, "__code__", None)
    if code is None:
        return None
    source = store.current(module.__name__)
    for written, running in source.running_lines.get(qualname, ()) if source is not None else ():
        if running == code.co_firstlineno:
            return written
    return code.co_firstlineno


def _dedent(text: str) -> str:
    from livefix.engine.compiler import dedent_definition

    return dedent_definition(text)


__all__ = ["definition_changes", "modified_modules", "running_sources", "os"]
