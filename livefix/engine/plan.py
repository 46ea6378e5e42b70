"""Plan and result types. (Implementation in progress.)"""
from __future__ import annotations
from dataclasses import dataclass
from typing import Any

@dataclass
class Change:
    source: str
    module: str | None = None
    path: str | None = None
    qualname: str | None = None
    line: int | None = None

class Plan:
    action: str
    changes: list
    impact: dict
    def risks(self) -> list[str]: raise NotImplementedError
    def planned(self) -> list[dict]: raise NotImplementedError
    def report_before(self) -> str: raise NotImplementedError
    def dry_run_body(self) -> dict: raise NotImplementedError

class ChangeResult:
    def to_body(self) -> dict: raise NotImplementedError
