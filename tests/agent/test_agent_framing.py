"""Framing: Content-Length JSON over a real socket pair, malformed input and fuzzing."""

from __future__ import annotations

import json
import random
import socket
import threading
from typing import Iterator

import pytest

from agent_support import garbage

from livefix.agent.framing import MAX_HEADER_BYTES, FramingError, MessageReader, encode


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def feed(sock: socket.socket, data: bytes, close: bool = True) -> None:
    """Send from a thread (the reader runs in the test's thread) and end the stream."""

    def send() -> None:
        try:
            sock.sendall(data)
        except OSError:
            pass  # the reader gave up and closed: that is what some tests expect
        if close:
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    threading.Thread(target=send, daemon=True).start()


def test_round_trip_of_split_and_joined_messages(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    first = {"seq": 1, "type": "request", "command": "livefix/history", "arguments": {"x": "é"}}
    second = {"seq": 2, "type": "request", "command": "livefix/status"}
    data = encode(first) + encode(second)
    # One byte at a time would be slow; cut inside the header and inside the body.
    reader = MessageReader(b)
    feed(a, data)
    assert reader.read(idle_timeout=10) == first
    assert reader.read(idle_timeout=10) == second
    assert reader.read(idle_timeout=10) is None


def test_extra_headers_are_allowed(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    body = json.dumps({"seq": 1}).encode()
    feed(a, b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    assert MessageReader(b).read(idle_timeout=10) == {"seq": 1}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"Content-Length: 5\r\n\r\n[1,2]", "notObject"),
        (b"Content-Length: 3\r\n\r\n{x}", "json"),
        (b"Content-Length: 2\r\n\r\n\xff\xfe", "json"),
        (b"Content-Length: -5\r\n\r\n{}", "length"),
        (b"Content-Length: +2\r\n\r\n{}", "length"),
        (b"Content-Length: 1e3\r\n\r\n{}", "length"),
        (b"Content-Length: \xd9\xa3\r\n\r\n{}", "header"),  # a non-ASCII digit
        (b"Content-Length: 99999999999999999999\r\n\r\n{}", "length"),
        (b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}", "header"),
        (b"Content-Type: json\r\n\r\n{}", "header"),
        (b"garbage without a colon\r\n\r\n{}", "header"),
        (b"Content-Length: 10\r\n\r\n{}", "closed"),
        (b"Content-Len", "closed"),
        (b"X" * (MAX_HEADER_BYTES + 10), "header"),
        (b"[" * 5000, "header"),
    ],
)
def test_malformed_frames_are_refused_with_a_reason(
    pair: tuple[socket.socket, socket.socket], data: bytes, reason: str
) -> None:
    a, b = pair
    feed(a, data)
    with pytest.raises(FramingError) as caught:
        MessageReader(b).read(idle_timeout=10)
    assert caught.value.reason == reason
    assert caught.value.message


def test_too_large_is_refused_before_the_body_is_read(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    feed(a, b"Content-Length: 1000001\r\n\r\n", close=False)  # the body never comes
    with pytest.raises(FramingError) as caught:
        MessageReader(b, max_message_bytes=1_000_000).read(idle_timeout=10)
    assert caught.value.reason == "tooLarge"


def test_deeply_nested_json_is_refused(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    body = b"[" * 200_000 + b"]" * 200_000
    feed(a, b"Content-Length: %d\r\n\r\n" % len(body) + body)
    with pytest.raises(FramingError) as caught:
        MessageReader(b).read(idle_timeout=10)
    assert caught.value.reason in ("json", "notObject")


def test_slow_peer_times_out(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    feed(a, b"Content-Length: 10\r\n\r\n{", close=False)  # starts a message, never finishes
    with pytest.raises(FramingError) as caught:
        MessageReader(b).read(idle_timeout=10, message_timeout=0.2)
    assert caught.value.reason == "timeout"


def test_silent_peer_times_out_when_asked(pair: tuple[socket.socket, socket.socket]) -> None:
    _, b = pair
    with pytest.raises(FramingError) as caught:
        MessageReader(b).read(idle_timeout=0.2)
    assert caught.value.reason == "timeout"


@pytest.mark.parametrize("seed", range(40))
def test_fuzz_framing_only_yields_messages_or_framing_errors(seed: int) -> None:
    rng = random.Random(seed)
    data = garbage(rng)
    a, b = socket.socketpair()
    try:
        feed(a, data)
        reader = MessageReader(b, max_message_bytes=10_000)
        for _ in range(100):
            try:
                message = reader.read(idle_timeout=10, message_timeout=10)
            except FramingError as error:
                assert error.reason in ("header", "length", "tooLarge", "json", "notObject", "closed")
                break
            if message is None:
                break
            assert isinstance(message, dict)
    finally:
        a.close()
        b.close()
