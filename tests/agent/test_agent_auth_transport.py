"""Tokens, addresses and the permissions of what the agent creates on disk."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from livefix.agent import auth, transport
from livefix.agent.registry import Registry
from livefix.errors import LivefixError


def test_token_comparison_accepts_only_the_exact_token() -> None:
    token = auth.generate_token()
    assert auth.token_matches(token, token)
    assert not auth.token_matches(token[:-1], token)
    assert not auth.token_matches(token + "x", token)
    assert not auth.token_matches(None, token)
    assert not auth.token_matches(12345, token)
    assert not auth.token_matches("x" * 10_000, token)


def test_token_file_is_created_private_and_read_back(tmp_path: Path) -> None:
    path = auth.write_token_file(tmp_path / "token", "s3cret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth.read_token_file(path) == "s3cret"
    with pytest.raises(FileExistsError):
        auth.write_token_file(path, "other")  # never silently replaced under a running agent
    assert auth.read_token_file(path) == "s3cret"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_token_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "token"
    path.write_text("s3cret\n")
    os.chmod(path, mode)
    with pytest.raises(LivefixError) as caught:
        auth.read_token_file(path)
    assert caught.value.kind == "invalid"
    assert "chmod 600" in caught.value.message


def test_token_from_environment_before_files(tmp_path: Path) -> None:
    path = auth.write_token_file(tmp_path / "token", "from-file")
    assert auth.resolve_token(env={"LIVEFIX_TOKEN": "from-env"}) == "from-env"
    assert auth.resolve_token(env={"LIVEFIX_TOKEN_FILE": str(path)}) == "from-file"
    assert auth.resolve_token("explicit", env={"LIVEFIX_TOKEN": "from-env"}) == "explicit"
    assert auth.resolve_token(env={}) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("unix:/run/x.sock", transport.Address("unix", path="/run/x.sock")),
        ("/run/x.sock", transport.Address("unix", path="/run/x.sock")),
        ("127.0.0.1:5678", transport.Address("tcp", host="127.0.0.1", port=5678)),
        ("tcp:localhost:1", transport.Address("tcp", host="localhost", port=1)),
        (":5678", transport.Address("tcp", host="127.0.0.1", port=5678)),
        ("[::1]:80", transport.Address("tcp", host="::1", port=80)),
    ],
)
def test_addresses_parse(text: str, expected: transport.Address) -> None:
    assert transport.parse_address(text) == expected


@pytest.mark.parametrize("text", ["host:notaport", "127.0.0.1:70000"])
def test_bad_addresses_are_refused(text: str) -> None:
    with pytest.raises(LivefixError):
        transport.parse_address(text)


def test_unix_socket_is_0600_in_a_0700_directory(runtime: Path) -> None:
    path = runtime / "agents" / "x.sock"
    sock = transport.bind(transport.Address("unix", path=str(path)))
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(runtime).st_mode) == 0o700
    finally:
        sock.close()


def test_a_live_socket_is_not_stolen_and_a_stale_one_is_replaced(runtime: Path) -> None:
    path = str(runtime / "agents" / "y.sock")
    first = transport.bind(transport.Address("unix", path=path))
    try:
        with pytest.raises(LivefixError) as caught:
            transport.bind(transport.Address("unix", path=path))
        assert caught.value.kind == "busy"
    finally:
        first.close()
    # The first listener is gone but its file is still there (as after a crash).
    assert os.path.exists(path)
    second = transport.bind(transport.Address("unix", path=path))
    second.close()


def test_a_file_that_is_not_a_socket_is_never_replaced(runtime: Path) -> None:
    path = runtime / "agents" / "z.sock"
    path.parent.mkdir(mode=0o700)
    path.write_text("precious")
    with pytest.raises(LivefixError):
        transport.bind(transport.Address("unix", path=str(path)))
    assert path.read_text() == "precious"


def test_remote_interfaces_need_an_explicit_option_and_tls() -> None:
    anywhere = transport.Address("tcp", host="0.0.0.0", port=0)
    with pytest.raises(LivefixError) as caught:
        transport.bind(anywhere)
    assert "allow_remote" in caught.value.message
    with pytest.raises(LivefixError) as caught:
        transport.bind(anywhere, allow_remote=True)
    assert "TLS" in caught.value.message


def test_loopback_tcp_binds_a_free_port() -> None:
    requested = transport.Address("tcp", host="127.0.0.1", port=0)
    sock = transport.bind(requested)
    try:
        actual = transport.address_of(sock, requested)
        assert actual.port and actual.port > 0
        probe = socket.create_connection((actual.host, actual.port), timeout=10)
        probe.close()
    finally:
        sock.close()


def test_unreachable_agent_is_reported_as_not_found(runtime: Path) -> None:
    with pytest.raises(LivefixError) as caught:
        transport.connect(transport.Address("unix", path=str(runtime / "nobody.sock")))
    assert caught.value.kind == "notFound"
    assert "cannot reach a livefix agent" in caught.value.message


def test_service_names_are_checked(runtime: Path) -> None:
    for bad in ["", "../x", "a/b", "x" * 65, ".."]:
        with pytest.raises(LivefixError):
            Registry(bad)
    registry = Registry("shop-api_2.prod")
    assert registry.dir == runtime / "services" / "shop-api_2.prod"
    assert stat.S_IMODE(registry.dir.stat().st_mode) == 0o700


def test_journal_records_applies_and_rollbacks(runtime: Path) -> None:
    registry = Registry("journal")
    assert registry.read_journal() == {"generation": 0, "entries": []}
    assert registry.record_apply({"action": "apply", "changes": [{"module": "m", "source": "x = 1"}]}) == 1
    assert registry.record_apply({"action": "apply", "changes": [{"module": "m", "source": "x = 2"}]}) == 2
    assert stat.S_IMODE((registry.dir / "journal.json").stat().st_mode) == 0o600
    assert registry.record_rollback(None) == 1
    assert [e["generation"] for e in registry.read_journal()["entries"]] == [1]
    assert registry.record_rollback(0) == 0
    assert registry.read_journal()["entries"] == []


def test_registry_lock_excludes_other_holders_until_released(runtime: Path) -> None:
    registry = Registry("locked")
    other = Registry("locked")  # a second coordinator (its own file description)
    with registry.locked():
        with pytest.raises(LivefixError) as caught:
            with other.locked(timeout=0.2):
                pass
        assert caught.value.kind == "busy"
    with other.locked(timeout=10):
        pass


def test_a_token_file_created_by_another_worker_meanwhile_is_used(tmp_path, monkeypatch):
    """Workers starting at once: this one's read finds no file, another worker then creates
    it, and this one must use it rather than fail. The interleaving is forced by wrapping the
    first read (the one thing a test cannot time on its own); the files are real."""
    from livefix.agent import agent as agent_module
    from livefix.agent import auth

    path = tmp_path / "token"
    real_read = auth.read_token_file
    calls = []

    def read_then_other_worker_writes(target):
        calls.append(target)
        if len(calls) == 1:
            try:
                return real_read(target)
            finally:
                auth.write_token_file(target, "made-by-the-other-worker")
        return real_read(target)

    monkeypatch.setattr(auth, "read_token_file", read_then_other_worker_writes)
    assert agent_module._default_token(path) == "made-by-the-other-worker"


def test_an_unsafe_token_file_is_still_refused(tmp_path):
    from livefix.agent import agent as agent_module
    from livefix.errors import LivefixError

    path = tmp_path / "token"
    path.write_text("abc\n")
    path.chmod(0o644)
    with pytest.raises(LivefixError) as raised:
        agent_module._default_token(path)
    assert "chmod 600" in raised.value.message
    assert path.read_text() == "abc\n"  # not replaced
