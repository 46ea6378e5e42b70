"""livefix: hot fixes for running Python processes.

The public API of the engine, usable without any debugger (an application can
embed it). Everything here runs inside the target process and uses only the
standard library. See README.md for the semantics of each call.
"""

from __future__ import annotations

from typing import Any

from livefix.engine import Change, ChangeResult, Engine, Plan, default_engine
from livefix.errors import LivefixError

__all__ = [
    "Change",
    "ChangeResult",
    "Engine",
    "LivefixError",
    "Plan",
    "apply",
    "capture_frames",
    "history",
    "install",
    "listen",
    "modified_modules",
    "reload_module",
    "reload_modules",
    "rollback",
]
__version__ = "0.1.0"


def install(history_limit: int | None = None) -> Engine:
    """Start tracking module sources from now on (import hook), so that later reloads diff
    against exactly what was loaded. Idempotent; the adapter and the agent call it.

    `history_limit`: how many rolled-back generations the history keeps (default 100); the
    generations still active are always kept, since rollback undoes them."""
    if history_limit is not None and (
        not isinstance(history_limit, int) or isinstance(history_limit, bool) or history_limit < 0
    ):  # checked first: a refused call installs nothing
        raise LivefixError("invalid", f"history_limit must be a whole number >= 0, not {history_limit!r}")
    engine = default_engine()
    engine.install()
    if history_limit is not None:
        engine.history_limit = history_limit
    return engine


def apply(changes: Any, verify: Any = None, dry_run: bool = False, migrate: Any = None) -> ChangeResult:
    """Apply changes (definitions or whole modules) as one atomic generation.

    `migrate`: what live instances of a changed class receive, per class qualname in the
    changed module (or "module:qualname"): attribute defaults `{"Cart": {"discount": 0}}`
    (set where an instance lacks them) or `{"Cart": "def migrate(obj): ..."}` (or a
    callable), run on every live instance of the class and its subclasses inside the
    commit; rollback restores the instances' previous attributes."""
    return default_engine().apply(changes, verify=verify, dry_run=dry_run, migrate=migrate)


def reload_module(
    module: Any, source: str | None = None, verify: Any = None, dry_run: bool = False, migrate: Any = None
) -> ChangeResult:
    """Bring a loaded module in line with its file (or `source`), diff-based, keeping state."""
    return default_engine().reload_module(module, source=source, verify=verify, dry_run=dry_run, migrate=migrate)


def reload_modules(
    modules: list[str] | None = None,
    package: str | None = None,
    verify: Any = None,
    dry_run: bool = False,
    migrate: Any = None,
) -> ChangeResult:
    """Reload every modified module (or the named ones, or a package) as one generation."""
    return default_engine().reload_modules(
        modules=modules, package=package, verify=verify, dry_run=dry_run, migrate=migrate
    )


def rollback(to: int | None = None) -> ChangeResult:
    """Undo the latest generation, or return to generation `to` (0 = as loaded)."""
    return default_engine().rollback(to=to)


def history() -> dict[str, Any]:
    """The generations applied in this process, newest last."""
    return dict(default_engine().history())


def capture_frames(
    thread_ids: list[int] | None = None, max_frames: int | None = None, include_locals: bool = False
) -> dict[str, Any]:
    """Every thread's stack, taken without stopping anything."""
    return dict(default_engine().capture_frames(thread_ids=thread_ids, max_frames=max_frames, include_locals=include_locals))


def modified_modules(modules: list[str] | None = None, include_libraries: bool = False) -> list[dict[str, Any]]:
    """Loaded modules whose file differs from what runs, with the definitions that differ."""
    return list(default_engine().modified_modules(modules=modules, include_libraries=include_libraries))


def listen(*args: Any, **kwargs: Any) -> Any:
    """Start the livefix agent in this process (see livefix.agent)."""
    from livefix.agent import listen as _listen

    return _listen(*args, **kwargs)
