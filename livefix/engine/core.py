"""Engine: prepare, commit, rollback, history. (Implementation in progress.)"""
from __future__ import annotations
import threading
from typing import Any, Callable

from livefix.engine.plan import Change, ChangeResult, Plan

ThreadIdMap = Callable[[int], int]


class Engine:
    def __init__(self) -> None:
        self.generation = 0

    def install(self) -> None: ...
    def prepare(self, changes: list[Any], *, action: str = "apply", thread_id: ThreadIdMap | None = None) -> Plan: raise NotImplementedError
    def prepare_reload(self, modules: list[str] | None = None, package: str | None = None, sources: dict[str, str] | None = None, thread_id: ThreadIdMap | None = None) -> Plan: raise NotImplementedError
    def commit(self, plan: Plan, verify: Any = None) -> ChangeResult: raise NotImplementedError
    def apply(self, changes: Any, verify: Any = None, dry_run: bool = False) -> ChangeResult: raise NotImplementedError
    def reload_module(self, module: Any, source: str | None = None, verify: Any = None, dry_run: bool = False) -> ChangeResult: raise NotImplementedError
    def reload_modules(self, modules=None, package=None, verify=None, dry_run=False) -> ChangeResult: raise NotImplementedError
    def rollback(self, to: int | None = None, thread_id: ThreadIdMap | None = None) -> ChangeResult: raise NotImplementedError
    def history(self) -> dict: raise NotImplementedError
    def capture_frames(self, thread_ids=None, max_frames=None, include_locals=False, thread_id: ThreadIdMap | None = None) -> dict: raise NotImplementedError
    def modified_modules(self, modules=None, include_libraries=False) -> list: raise NotImplementedError


_default: Engine | None = None
_default_lock = threading.Lock()


def default_engine() -> Engine:
    global _default
    with _default_lock:
        if _default is None:
            _default = Engine()
        return _default
