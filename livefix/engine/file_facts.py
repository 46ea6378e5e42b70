"""What a change recorded against a module's file (a fleet journal's entry) checks before it
is replayed in another process: is the file still the one the change was made against, or
does the file already say what the change says?

The digest is of the file's code (its syntax tree without positions), not of its bytes: an
edit of comments, blank lines or formatting changes nothing that runs, so it must not stop a
respawned worker from catching up with its fleet (found: a comment appended to the file split
a gunicorn fleet in two). Standard library only.
"""

from __future__ import annotations

import ast
import hashlib
from typing import Any

from livefix.engine import locate


def code_digest(path: str | None) -> str | None:
    """A digest of the code in `path` (None when it cannot be read or does not parse)."""
    tree = _parse(path)
    if tree is None:
        return None
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode("utf-8")).hexdigest()[:32]


def says_already(path: str | None, changes: list[dict[str, Any]]) -> bool:
    """Does the file at `path` already define every one of `changes` as they do (the change
    was persisted into it, or deployed)? Compared as code, not as text."""
    tree = _parse(path)
    if tree is None or not changes:
        return False
    for change in changes:
        qualname = change.get("qualname")
        try:
            new = ast.parse(change.get("source", ""))
        except SyntaxError:
            return False
        if not qualname:  # a whole module: the file's code is the change's code
            if _code(tree) != _code(new):
                return False
            continue
        found = locate.find_definition(tree, [], qualname)
        wanted = next((n for n in new.body if getattr(n, "name", None) == qualname.rpartition(".")[2]), None)
        if found is None or wanted is None or _code(found.node) != _code(wanted):
            return False
    return True


def _parse(path: str | None) -> ast.Module | None:
    if not path:
        return None
    try:
        with open(path, "rb") as handle:
            return ast.parse(handle.read())
    except (OSError, SyntaxError, ValueError):
        return None


def _code(node: ast.AST) -> str:
    return ast.dump(node, include_attributes=False)
