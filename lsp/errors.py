"""Turns a `LivefixError` into what an LSP client shows: the one place for that.

A refused command is both a `window/showMessage` (so a person sees why nothing
happened) and an error response (so a client or script can tell), with the
structured error in `data.livefix`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, NoReturn

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from livefix.errors import LivefixError

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

log = logging.getLogger(__name__)


class RequestFailed(JsonRpcException):
    """LSP's `RequestFailed`: the request was valid but could not be carried out."""

    CODE = types.LSPErrorCodes.RequestFailed.value
    MESSAGE = "livefix request failed"


def refuse(server: "LanguageServer", error: LivefixError, action: str) -> NoReturn:
    """Tell the user why `action` did nothing, then fail the request."""
    message = f"livefix: {action}: {error.message}"
    if error.kind == "internal":
        log.error("%s", message, exc_info=error.__cause__ or error)
    else:
        log.info("%s", message)
    server.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=message))
    raise RequestFailed(message, data={"livefix": error.to_dict()}) from error


def unexpected(server: "LanguageServer", exc: BaseException, action: str) -> NoReturn:
    """An exception nobody expected: logged with its traceback, answered as a failure."""
    error = LivefixError("internal", f"unexpected {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    refuse(server, error, action)
