"""livefix: hot fixes for running Python processes.

The public API of the engine, usable without any debugger (an application can
embed it). Everything here runs inside the target process and uses only the
standard library. See README.md for the semantics of each call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from livefix.errors import LivefixError

if TYPE_CHECKING:
    from livefix.engine import Change, ChangeResult, Engine, Plan

# The engine is imported on first use, not by `import livefix`: the command line, the
# language server and the agent's client import this package too, and the engine is most
# of their start-up (about 130 ms without bytecode caches, as in most container images).
_ENGINE_NAMES = ("Change", "ChangeResult", "Engine", "Plan")


def __getattr__(name: str) -> Any:
    if name in _ENGINE_NAMES:
        import livefix.engine

        return getattr(livefix.engine, name)
    raise AttributeError(f"module 'livefix' has no attribute {name!r}")


def default_engine() -> "Engine":
    """The process's one engine (created on first use)."""
    from livefix.engine import default_engine as engine_of_this_process

    return engine_of_this_process()

__all__ = [
    "Change",
    "ChangeResult",
    "Engine",
    "LivefixError",
    "Plan",
    "apply",
    "capture_frames",
    "evidence",
    "history",
    "install",
    "listen",
    "modified_modules",
    "reload_module",
    "reload_modules",
    "rollback",
    "unwatch",
    "watch",
]
__version__ = "0.1.0"


def install(history_limit: int | None = None, evidence_window: float | None = None) -> Engine:
    """Start tracking module sources from now on (import hook), so that later reloads diff
    against exactly what was loaded. Idempotent; the adapter and the agent call it.

    `history_limit`: how many rolled-back generations the history keeps (default 100); the
    generations still active are always kept, since rollback undoes them.

    `evidence_window`: watch every fix for that many seconds after its commit (before/after
    figures in `evidence()`); by default a fix is watched only when it has a canary."""
    if history_limit is not None and (
        not isinstance(history_limit, int) or isinstance(history_limit, bool) or history_limit < 0
    ):  # checked first: a refused call installs nothing
        raise LivefixError("invalid", f"history_limit must be a whole number >= 0, not {history_limit!r}")
    if evidence_window is not None and (
        isinstance(evidence_window, bool) or not isinstance(evidence_window, (int, float)) or evidence_window < 0
    ):
        raise LivefixError("invalid", f"evidence_window must be a number of seconds >= 0, not {evidence_window!r}")
    engine = default_engine()
    engine.install()
    if history_limit is not None:
        engine.history_limit = history_limit
    if evidence_window is not None:
        engine.watches.window = float(evidence_window)
    return engine


def apply(
    changes: Any, verify: Any = None, dry_run: bool = False, migrate: Any = None, canary: Any = None
) -> ChangeResult:
    """Apply changes (definitions or whole modules) as one atomic generation.

    `migrate`: what live instances of a changed class receive, per class qualname in the
    changed module (or "module:qualname"): attribute defaults `{"Cart": {"discount": 0}}`
    (set where an instance lacks them) or `{"Cart": "def migrate(obj): ..."}` (or a
    callable), run on every live instance of the class and its subclasses inside the
    commit; rollback restores the instances' previous attributes.

    `canary`: `{"before": 5, "window": 30, "max_error_rate": 0.01, "max_p99_ms": 200}`: count
    the old code's traffic for `before` seconds, commit, then judge the new code for `window`
    seconds and roll the generation back by itself when it is worse than the thresholds or
    than the old code (see `evidence()`)."""
    return default_engine().apply(changes, verify=verify, dry_run=dry_run, migrate=migrate, canary=canary)


def reload_module(
    module: Any,
    source: str | None = None,
    verify: Any = None,
    dry_run: bool = False,
    migrate: Any = None,
    canary: Any = None,
) -> ChangeResult:
    """Bring a loaded module in line with its file (or `source`), diff-based, keeping state."""
    return default_engine().reload_module(
        module, source=source, verify=verify, dry_run=dry_run, migrate=migrate, canary=canary
    )


def reload_modules(
    modules: list[str] | None = None,
    package: str | None = None,
    verify: Any = None,
    dry_run: bool = False,
    migrate: Any = None,
    canary: Any = None,
) -> ChangeResult:
    """Reload every modified module (or the named ones, or a package) as one generation."""
    return default_engine().reload_modules(
        modules=modules, package=package, verify=verify, dry_run=dry_run, migrate=migrate, canary=canary
    )


def evidence(generation: int | None = None) -> dict[str, Any]:
    """Did the fix work? For each function generation N (default: the newest watched one)
    replaced: `{"before": {"calls", "errors", "error_rate", "p50_ms", "p99_ms", ...}, "after": {...}}`
    under "functions", the window's state, the canary's verdict and a one-line "report"."""
    return _snake(default_engine().evidence(generation))


def watch(target: Any) -> dict[str, Any]:
    """Count calls, errors and latency of a function ("module:qualname" or the function itself)
    until `unwatch(target)`, following it across fixes. Costs nothing once nothing is watched."""
    return _snake(default_engine().watch(target))


def unwatch(target: Any = None) -> dict[str, Any]:
    """Stop counting `target` (or everything `watch` counts); its figures are returned."""
    return _snake(default_engine().unwatch(target))


def _snake(value: Any) -> Any:
    """The engine speaks the wire's camelCase; the Python API speaks Python (error_rate, p99_ms).
    Only keys are renamed, and only the figures' and verdicts' own: function labels stay."""
    if isinstance(value, dict):
        return {_SNAKE.get(k, k) if isinstance(k, str) else k: _snake(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake(v) for v in value]
    return value


_SNAKE = {
    "errorRate": "error_rate", "p50Ms": "p50_ms", "p99Ms": "p99_ms", "errorTypes": "error_types",
    "maxErrorRate": "max_error_rate", "maxP99Ms": "max_p99_ms", "minCalls": "min_calls", "maxSlowdown": "max_slowdown",
}


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


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext livefix`: reload the project's changed modules before each cell (see
    livefix.integrations.ipython); IPython is imported only here."""
    from livefix.integrations.ipython import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from livefix.integrations.ipython import unload

    unload(ipython)
