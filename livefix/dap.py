"""The DAP shapes of livefix results and failures: the one place a `LivefixError` becomes
a DAP error response.

Used on both sides of the DAP route: inside the debuggee by the pydevd plugin (for every
failure of a livefix request) and in the adapter (for its own refusals: a bad `livefix`
launch option, a debuggee without livefix). Clients see the same shape either way:

    {"success": false, "message": <one line>,
     "body": {"error": {"id", "format", "showUser": true}, "livefix": error.to_dict()}}

Standard library only: imported inside every debuggee.
"""

from __future__ import annotations

from typing import Any

from livefix.errors import LivefixError

# DAP `Message.id` must identify the kind of message; a stable number per error kind lets
# clients (and telemetry) tell kinds apart without parsing text. Never renumber; a new
# kind takes the next free number (tests/adapter/test_adapter_plumbing.py checks every kind has one).
ERROR_IDS: dict[str, int] = {
    "syntax": 7100,
    "notFound": 7101,
    "incompatible": 7102,
    "verifyFailed": 7103,
    "approvalRequired": 7104,
    "unsupported": 7105,
    "busy": 7106,
    "invalid": 7107,
    "nothingToRollBack": 7108,
    "failed": 7109,
    "internal": 7110,
    "migrationFailed": 7111,
    "notLatest": 7112,
}


def one_line(text: str, limit: int = 500) -> str:
    """DAP clients show `message` in a single-line notification: collapse and bound it."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


def error_body(error: LivefixError) -> dict[str, Any]:
    """`body` of the DAP error response for `error`."""
    message = one_line(error.message)
    return {
        "error": {
            "id": ERROR_IDS.get(error.kind, ERROR_IDS["internal"]),
            # Braces are DAP placeholders; we send no variables, so escape-free text is
            # shown verbatim by clients (unknown placeholders are left as they are).
            "format": message,
            "showUser": True,
        },
        "livefix": _jsonable(error.to_dict()),
    }


def error_response(error: LivefixError) -> tuple[str, dict[str, Any]]:
    """`(message, body)` of the DAP error response for `error`."""
    return one_line(error.message), error_body(error)


def output_text(report: str) -> str:
    """The `output` event text carrying a report: one trailing newline, as consoles expect."""
    return report.rstrip("\n") + "\n"


def _jsonable(value: Any) -> Any:
    """Error details come from the engine (impact dicts, lists); keep them JSON-ready."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)
