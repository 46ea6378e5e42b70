"""The one error model of livefix.

Every refusal or failure of an engine operation is a `LivefixError` with a `kind`
(one of `ErrorKind`), a one-line message a person can act on, and structured
details (the offending definition, the line and column of a syntax error, the
impact that needs approval...). The adapter turns it into a DAP error response in
one place, the agent into a framed error response, the language server into an
LSP message. Standard library only: imported inside every debuggee.
"""

from __future__ import annotations

from typing import Any, Literal

ErrorKind = Literal[
    "syntax",  # the new source does not parse or compile
    "notFound",  # unknown module, file or definition
    "incompatible",  # CPython cannot swap this in place (closure cells, slots, bases...)
    "verifyFailed",  # the verify check was falsy or raised; the generation was rolled back
    "approvalRequired",  # risky change under the "risky"/"always" policy, not approved
    "unsupported",  # a target that is not Python code (builtins, C functions)
    "busy",  # another livefix operation is in progress in this process
    "invalid",  # a malformed request (missing or mistyped arguments)
    "nothingToRollBack",  # rollback asked for with no active generation after `to`
    "failed",  # the commit itself failed; everything was restored
    "internal",  # an unexpected exception inside livefix (logged with traceback)
    "migrationFailed",  # a migration of live instances raised; code and instances were restored
    "notLatest",  # a canary's rollback found a newer generation on top of its own
]

ERROR_KINDS: tuple[str, ...] = ErrorKind.__args__  # type: ignore[attr-defined]


class LivefixError(Exception):
    """A structured, user-facing failure. Raising it never leaves a change half-applied."""

    def __init__(self, kind: ErrorKind, message: str, **details: Any) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.details: dict[str, Any] = details

    def to_dict(self) -> dict[str, Any]:
        """The `body.livefix` payload of a DAP error response (see docs/protocol.md)."""
        return {"kind": self.kind, "message": self.message, **self.details}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LivefixError":
        data = dict(data)
        kind = data.pop("kind", "internal")
        message = data.pop("message", "livefix request failed")
        return cls(kind if kind in ERROR_KINDS else "internal", message, **data)

    def __repr__(self) -> str:
        return f"LivefixError({self.kind!r}, {self.message!r})"
