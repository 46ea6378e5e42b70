"""Content-Length framed JSON over a socket: the wire format shared with DAP.

Connects the agent's server and client to the socket. One message is
`Content-Length: N\\r\\n\\r\\n` followed by N bytes of UTF-8 JSON (an object).
Everything about the frame is bounded (header size, body size, time to finish a
started message), so a malformed or hostile peer costs the service one refused
connection and nothing else. Standard library only.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import time
from typing import Any

# The longest header block we accept: DAP peers send one or two short headers.
MAX_HEADER_BYTES = 4096
# Default cap on one message; sources are capped separately (see server.Limits).
DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024
_CHUNK = 65536


class FramingError(Exception):
    """The peer broke the framing: the connection cannot be trusted to resynchronise.

    `reason` is a stable word for tests and logs (`header`, `length`, `tooLarge`,
    `json`, `notObject`, `timeout`, `closed`)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class MessageReader:
    """Reads framed messages from a socket, keeping the bytes that belong to the next one.

    `message_timeout` bounds the time from the first byte of a message to its last
    (slow clients); `idle_timeout` bounds the wait for a message to begin (None: wait
    forever, as an attached editor may stay quiet for hours)."""

    def __init__(self, sock: socket.socket, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self.max_message_bytes = max_message_bytes
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN | select.POLLPRI)

    def read(self, idle_timeout: float | None = None, message_timeout: float | None = 10.0) -> dict[str, Any] | None:
        """The next message as a dict, None on a clean end of stream between messages."""
        deadline: float | None = None
        if self._buffer:
            deadline = _deadline(message_timeout)
        # 1. The header block, up to the blank line.
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self._buffer) > MAX_HEADER_BYTES:
                raise FramingError("header", f"header block longer than {MAX_HEADER_BYTES} bytes without a blank line")
            if not self._fill(deadline if deadline is not None else _deadline(idle_timeout)):
                if not self._buffer:
                    return None
                raise FramingError("closed", "connection closed in the middle of a message header")
            if deadline is None:
                deadline = _deadline(message_timeout)
        if end > MAX_HEADER_BYTES:
            raise FramingError("header", f"header block longer than {MAX_HEADER_BYTES} bytes")
        header = bytes(self._buffer[:end])
        del self._buffer[: end + 4]
        length = self._content_length(header)
        # 2. The body, exactly `length` bytes.
        while len(self._buffer) < length:
            if not self._fill(deadline):
                raise FramingError("closed", f"connection closed after {len(self._buffer)} of {length} body bytes")
        body = bytes(self._buffer[:length])
        del self._buffer[:length]
        return self._decode(body)

    def _content_length(self, header: bytes) -> int:
        try:
            text = header.decode("ascii")
        except UnicodeDecodeError:
            raise FramingError("header", "header is not ASCII") from None
        length: int | None = None
        for line in text.split("\r\n"):
            name, sep, value = line.partition(":")
            if not sep:
                raise FramingError("header", f"malformed header line {line[:60]!r} (expected `Name: value`)")
            if name.strip().lower() != "content-length":
                continue  # DAP allows other headers (Content-Type); they carry nothing for us
            value = value.strip()
            # int() would accept "+5", " 5", "5_0" and unicode digits: only plain ASCII digits are a length.
            if not value.isascii() or not value.isdigit() or len(value) > 12:
                raise FramingError("length", f"Content-Length must be a non-negative integer, not {value[:30]!r}")
            if length is not None:
                raise FramingError("header", "more than one Content-Length header")
            length = int(value)
        if length is None:
            raise FramingError("header", "missing Content-Length header")
        if length > self.max_message_bytes:
            raise FramingError(
                "tooLarge", f"message of {length} bytes exceeds the limit of {self.max_message_bytes} bytes"
            )
        return length

    def _decode(self, body: bytes) -> dict[str, Any]:
        try:
            message = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise FramingError("json", f"message body is not UTF-8 JSON: {exc}") from None
        except RecursionError:
            raise FramingError("json", "message body nests too deeply") from None
        if not isinstance(message, dict):
            raise FramingError("notObject", f"a message must be a JSON object, not {type(message).__name__}")
        return message

    def _fill(self, deadline: float | None) -> bool:
        """Receive more bytes before `deadline`; False on end of stream.

        The socket stays in blocking mode and the deadline is kept with poll(): the
        socket's own timeout is shared with the threads that send events on it."""
        pending = getattr(self._sock, "pending", None)  # TLS may hold decrypted bytes poll() cannot see
        if not (pending and pending()):
            if deadline is None:
                self._poll.poll()
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._poll.poll(remaining * 1000):
                    raise FramingError("timeout", "peer too slow: message not completed in time")
        try:
            chunk = self._sock.recv(_CHUNK)
        except (socket.timeout, BlockingIOError):
            # SO_RCVTIMEO (see set_io_timeouts): a TLS record that never completes.
            raise FramingError("timeout", "peer too slow: message not completed in time") from None
        if not chunk:
            return False
        self._buffer += chunk
        return True


def encode(message: dict[str, Any]) -> bytes:
    """One framed message, ready for `sendall`."""
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def set_io_timeouts(sock: socket.socket, send: float, receive: float) -> None:
    """Bound every send and every single receive on a blocking socket, whichever thread calls.

    The socket object's own timeout is per object and racy across threads; the
    kernel's SO_SNDTIMEO/SO_RCVTIMEO are not. A peer that stops reading then costs a
    failed send, never a thread stuck for good. (MessageReader polls before each
    receive, so the receive bound only matters for a TLS record cut in the middle.)"""
    sock.settimeout(None)
    for option, seconds in ((socket.SO_SNDTIMEO, send), (socket.SO_RCVTIMEO, receive)):
        whole = int(seconds)
        sock.setsockopt(socket.SOL_SOCKET, option, struct.pack("ll", whole, int((seconds - whole) * 1e6)))


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout
