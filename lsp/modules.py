"""Maps a document's path to the dotted module name the running process knows it by.

Rule (documented in docs/lsp.md): the *module roots* are the `moduleRoots`
initialization option (paths relative to each workspace folder, or absolute) or, by
default, `<folder>/src` when it exists and then `<folder>` itself, for each workspace
folder: the places a project's code is usually imported from (`sys.path` entries).
A file under a root gets its path relative to the deepest root containing it, with
`/` turned into `.`, `.py` dropped and a trailing `__init__` dropped
(`src/shop/pricing.py` -> `shop.pricing`, `src/shop/__init__.py` -> `shop`). A file
under no root is named by its enclosing regular packages (directories holding an
`__init__.py`), as Python would import it from the directory above them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass
class ModuleResolver:
    """Knows the module roots; one per server, rebuilt when options or folders change."""

    roots: list[str] = field(default_factory=list)

    @classmethod
    def for_workspace(cls, folders: list[str], configured: list[str] | None) -> "ModuleResolver":
        roots: list[str] = []
        for folder in folders:
            if configured:
                candidates = [os.path.join(folder, root) for root in configured]
            else:
                candidates = [os.path.join(folder, "src"), folder]
            for candidate in candidates:
                candidate = os.path.normpath(candidate)
                if os.path.isdir(candidate) and candidate not in roots:
                    roots.append(candidate)
        return cls(roots)

    def module_for(self, path: str) -> str | None:
        """The dotted module name of the Python file at `path`, or None if it has none."""
        path = os.path.normpath(os.path.abspath(path))
        stem, ext = os.path.splitext(path)
        if ext not in (".py", ".pyw"):
            return None
        best: str | None = None
        for root in self.roots:
            if _is_under(path, root) and (best is None or len(root) > len(best)):
                best = root
        if best is not None:
            parts = os.path.relpath(stem, best).split(os.sep)
        else:
            parts = [os.path.basename(stem)]
            directory = os.path.dirname(path)
            while os.path.isfile(os.path.join(directory, "__init__.py")):
                parts.insert(0, os.path.basename(directory))
                parent = os.path.dirname(directory)
                if parent == directory:
                    break
                directory = parent
        if parts and parts[-1] == "__init__":
            parts.pop()
        if not parts or not all(part.isidentifier() for part in parts):
            return None
        return ".".join(parts)

    def path_for(self, module: str) -> str | None:
        """The file under a module root that `module` names (`a/b.py` or `a/b/__init__.py`), if any."""
        parts = module.split(".")
        if not all(part.isidentifier() for part in parts):
            return None
        for root in sorted(self.roots, key=len, reverse=True):  # the deepest root wins, as in `module_for`
            for candidate in (os.path.join(root, *parts) + ".py", os.path.join(root, *parts, "__init__.py")):
                if os.path.isfile(candidate) and self.module_for(candidate) == module:
                    return candidate
        return None


def _is_under(path: str, root: str) -> bool:
    return path.startswith(root.rstrip(os.sep) + os.sep)
