"""The agent in a real service process: authentication, malformed traffic, limits, threads.

Every test that throws bad traffic at the agent then proves the service kept
running with no code change: its output is what it was, its history is what it was,
and a well-behaved client is still served.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import stat
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from livefix import protocol
from livefix.agent.client import AgentClient
from livefix.agent.framing import MessageReader, encode
from livefix.agent.transport import parse_address
from livefix.errors import LivefixError

from agent_support import APP, WAIT, Worker, garbage, token


def raw_connect(worker: Worker) -> socket.socket:
    address = parse_address(worker.address)
    if address.kind == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(WAIT)
        sock.connect(address.path)
    else:
        sock = socket.create_connection((address.host, address.port), timeout=WAIT)
    return sock


def exchange(sock: socket.socket, data: bytes, end: bool = True) -> list[dict[str, Any]]:
    """Send raw bytes (then end our side, unless `end` is False: a client that stays);
    every message the agent sends back until it closes the connection."""
    try:
        sock.sendall(data)
        if end:
            sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the agent may close while we still send (a refused huge message)
    reader = MessageReader(sock)
    replies = []
    while True:
        try:
            message = reader.read(idle_timeout=WAIT, message_timeout=WAIT)
        except (OSError, Exception) as exc:  # a reset after the agent's reply
            if isinstance(exc, AssertionError):
                raise
            break
        if message is None:
            break
        replies.append(message)
    sock.close()
    return replies


def authenticate_bytes(tok: str, seq: int = 1) -> bytes:
    return encode({"seq": seq, "type": "request", "command": protocol.AUTHENTICATE, "arguments": {"token": tok}})


def snapshot(worker: Worker, tok: str) -> dict[str, Any]:
    """What the service does and runs: its output, its own view of history, the agent's."""
    state: dict[str, Any] = {"output": worker.call(), "history": worker.history()}
    client = AgentClient(worker.address, tok, timeout=WAIT)
    state["agent"] = client.hello["pid"]
    state["agentHistory"] = client.request(protocol.HISTORY)
    client.hang_up()  # its connection is released before the test goes on
    return state


def test_listen_serves_an_authenticated_client_on_a_private_socket(spawn: Any, runtime: Path) -> None:
    worker = spawn()
    path = parse_address(worker.address).path
    assert path is not None and path.startswith(str(runtime))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(runtime / "token").st_mode) == 0o600
    with AgentClient(worker.address, token(runtime), timeout=WAIT) as client:
        assert client.hello["pid"] == worker.pid
        assert client.hello["approval"] == "risky"
        with pytest.raises(LivefixError) as caught:
            client.request("livefix/noSuchThing", {})
        assert caught.value.kind == "invalid"
        # The connection survives a refused request.
        assert client.request(protocol.AUTHENTICATE, {})["pid"] == worker.pid
    assert worker.call() == 21


def test_token_from_the_environment(spawn: Any, runtime: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEFIX_TOKEN", "t0ken-from-env")
    worker = spawn()
    with AgentClient(worker.address, "t0ken-from-env", timeout=WAIT) as client:
        assert client.hello["pid"] == worker.pid
    assert not (runtime / "token").exists()


@pytest.mark.parametrize(
    "arguments",
    [{"token": "wrong"}, {}, {"token": None}, {"token": ["a"]}, None],
    ids=["wrong", "missing", "null", "list", "noArguments"],
)
def test_wrong_or_missing_token_is_refused_and_closed(spawn: Any, runtime: Path, arguments: Any) -> None:
    worker = spawn()
    before = snapshot(worker, token(runtime))
    message: dict[str, Any] = {"seq": 7, "type": "request", "command": protocol.AUTHENTICATE}
    if arguments is not None:
        message["arguments"] = arguments
    replies = exchange(raw_connect(worker), encode(message))
    assert len(replies) == 1
    assert replies[0]["success"] is False and replies[0]["request_seq"] == 7
    assert replies[0]["body"]["livefix"]["reason"] == "unauthorized"
    assert replies[0]["body"]["error"]["showUser"] is True
    assert snapshot(worker, token(runtime)) == before


def test_requests_before_authentication_are_refused(spawn: Any, runtime: Path) -> None:
    worker = spawn()
    before = snapshot(worker, token(runtime))
    change = {"module": "shop", "qualname": "price", "source": "def price(n):\n    return 0\n"}
    apply = encode({"seq": 1, "type": "request", "command": protocol.APPLY,
                    "arguments": {"changes": [change], "approved": True}})
    replies = exchange(raw_connect(worker), apply + authenticate_bytes(token(runtime), 2))
    assert len(replies) == 1  # closed after the refusal: the token that follows is never read
    assert replies[0]["body"]["livefix"]["reason"] == "unauthenticated"
    assert "authenticate" in replies[0]["message"]
    assert snapshot(worker, token(runtime)) == before


BAD_TRAFFIC = {
    "noContentLength": b"Content-Type: application/json\r\n\r\n{}",
    "negativeLength": b"Content-Length: -1\r\n\r\n{}",
    "hugeLength": b"Content-Length: 99999999999\r\n\r\n",
    "notANumber": b"Content-Length: twelve\r\n\r\n{}",
    "noColon": b"hello agent\r\n\r\n",
    "endlessHeader": b"A" * 10_000,
    "invalidJson": b"Content-Length: 9\r\n\r\n{'seq': 1",
    "notAnObject": b"Content-Length: 2\r\n\r\n[]",
    "notUtf8": b"Content-Length: 4\r\n\r\n\"\xff\xfe\"",
    "httpRequest": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(BAD_TRAFFIC))
def test_malformed_traffic_is_refused_and_the_service_is_unchanged(spawn: Any, runtime: Path, name: str) -> None:
    worker = spawn()
    before = snapshot(worker, token(runtime))
    for authenticated in (False, True):
        prefix = authenticate_bytes(token(runtime)) if authenticated else b""
        replies = exchange(raw_connect(worker), prefix + BAD_TRAFFIC[name])
        errors = [r for r in replies if r.get("success") is False]
        assert len(errors) == 1, replies
        assert errors[0]["body"]["livefix"]["kind"] == "invalid"
        assert errors[0]["message"].startswith("malformed message")
    assert snapshot(worker, token(runtime)) == before


def test_well_framed_nonsense_is_answered_and_the_connection_stays(spawn: Any, runtime: Path) -> None:
    worker = spawn()
    before = snapshot(worker, token(runtime))
    sock = raw_connect(worker)
    nonsense = [
        {"seq": 2, "type": "event", "event": "x"},
        {"seq": 3, "type": "request"},
        {"seq": 4, "type": "request", "command": 42},
        {"seq": 5, "type": "request", "command": "livefix/unknown"},
        {"seq": 6, "type": "request", "command": protocol.APPLY, "arguments": "not an object"},
        {"seq": 7, "type": "request", "command": protocol.APPLY, "arguments": {"changes": []}},
        {"seq": 8, "type": "request", "command": protocol.APPLY, "arguments": {"changes": [{"source": 1}]}},
        {"seq": 9, "type": "request", "command": protocol.COMMIT, "arguments": {"prepareId": "nope"}},
        {"seq": 10, "type": "request", "command": protocol.ROLLBACK, "arguments": {"to": -3}},
        {"seq": 11, "type": "request", "command": protocol.CAPTURE_FRAMES, "arguments": {"maxFrames": "all"}},
    ]
    sock.sendall(authenticate_bytes(token(runtime)) + b"".join(encode(m) for m in nonsense))
    reader = MessageReader(sock)
    replies = [reader.read(idle_timeout=WAIT) for _ in range(len(nonsense) + 1)]
    sock.close()
    assert replies[0]["success"] is True
    answered = {r["request_seq"]: r for r in replies[1:]}
    assert set(answered) == {m["seq"] for m in nonsense}
    for reply in answered.values():
        assert reply["success"] is False
        assert reply["body"]["livefix"]["kind"] in ("invalid", "notFound")
        assert reply["body"]["error"]["format"] == reply["message"]
    assert answered[9]["body"]["livefix"]["kind"] == "notFound"
    assert snapshot(worker, token(runtime)) == before


def test_silent_and_slow_clients_are_dropped(spawn: Any, runtime: Path) -> None:
    worker = spawn(limits={"auth_timeout": 0.5, "message_timeout": 0.5})
    before = snapshot(worker, token(runtime))
    silent = exchange(raw_connect(worker), b"", end=False)
    assert silent[0]["body"]["livefix"]["reason"] == "unauthenticated"
    slow = exchange(raw_connect(worker), b"Content-Length: 50\r\n\r\n{\"seq\":", end=False)
    assert slow[0]["body"]["livefix"]["reason"] == "unauthenticated"
    # Authenticated, then stalls in the middle of a message.
    stalled = exchange(raw_connect(worker), authenticate_bytes(token(runtime)) + b"Content-Length: 50\r\n\r\n{",
                       end=False)
    assert [r["success"] for r in stalled] == [True, False]
    assert stalled[1]["body"]["livefix"]["reason"] == "timeout"
    assert snapshot(worker, token(runtime)) == before


def test_a_client_that_never_reads_is_dropped(spawn: Any, runtime: Path) -> None:
    worker = spawn(limits={"send_timeout": 0.5})
    before = snapshot(worker, token(runtime))
    sock = raw_connect(worker)
    hello = authenticate_bytes(token(runtime))
    # Thousands of requests whose answers it never reads: the agent's send buffer fills.
    try:
        sock.sendall(hello * 20_000)
    except OSError:
        pass  # the agent dropped us while we were still sending: that is the point
    # The agent lets go of the connection: only our probe remains connected.
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        probe = AgentClient(worker.address, token(runtime), timeout=WAIT)
        count = probe.hello["connections"]
        probe.hang_up()
        if count == 1:
            break
    else:
        raise AssertionError("the agent still serves a client that reads nothing")
    sock.close()
    assert snapshot(worker, token(runtime)) == before


def test_too_many_connections_are_refused_with_busy(spawn: Any, runtime: Path) -> None:
    worker = spawn(limits={"max_connections": 4})
    before = snapshot(worker, token(runtime))
    held = [AgentClient(worker.address, token(runtime), timeout=WAIT) for _ in range(4)]
    try:
        refused = []
        for _ in range(20):
            replies = exchange(raw_connect(worker), authenticate_bytes(token(runtime)), end=False)
            refused.append(replies[0]["body"]["livefix"] if replies else None)
        assert all(r is not None and r["kind"] == "busy" and r["limit"] == "maxConnections" for r in refused)
        # The held connections are still served.
        assert all(c.request(protocol.AUTHENTICATE, {})["pid"] == worker.pid for c in held)
    finally:
        for client in held:
            client.hang_up()
    assert snapshot(worker, token(runtime)) == before


def test_peers_without_the_token_cannot_keep_a_client_with_it_out(spawn: Any, runtime: Path) -> None:
    """Any local user can connect to a loopback port: 40 idle connections that never
    authenticate neither take the authenticated slots nor keep a new client from its turn."""
    worker = spawn(address="127.0.0.1:0", limits={"max_connections": 4})
    idle = [raw_connect(worker) for _ in range(40)]
    try:
        with AgentClient(worker.address, token(runtime), timeout=WAIT) as client:
            assert client.request(protocol.HISTORY)["generation"] == 0
        # The oldest idle ones were told why they were closed.
        replies = exchange(idle[0], b"", end=False)
        assert replies and replies[0]["body"]["livefix"]["limit"] == "maxUnauthenticated"
    finally:
        for sock in idle:
            sock.close()


def test_many_connections_at_once(spawn: Any, runtime: Path) -> None:
    worker = spawn()
    before = snapshot(worker, token(runtime))
    socks = [raw_connect(worker) for _ in range(64)]
    for index, sock in enumerate(socks):
        garbage = BAD_TRAFFIC[sorted(BAD_TRAFFIC)[index % len(BAD_TRAFFIC)]] if index % 2 else authenticate_bytes("bad")
        sock.sendall(garbage)
    for sock in socks:
        replies = exchange(sock, b"", end=False)
        assert replies and replies[0]["success"] is False
        assert replies[0]["body"]["livefix"]["kind"] in ("invalid", "busy")
    assert snapshot(worker, token(runtime)) == before


@pytest.mark.parametrize("seed", range(6))
def test_fuzzed_connections_leave_the_service_unchanged(spawn: Any, runtime: Path, seed: int) -> None:
    worker = spawn(limits={"auth_timeout": 2.0, "message_timeout": 2.0})
    before = snapshot(worker, token(runtime))
    rng = random.Random(seed)
    for _ in range(8):
        prefix = authenticate_bytes(token(runtime)) if rng.random() < 0.5 else b""
        for reply in exchange(raw_connect(worker), prefix + garbage(rng)):
            assert reply.get("type") == "response"
            if reply["success"] is False:
                assert reply["body"]["livefix"]["kind"] in ("invalid", "notFound", "busy")
    assert snapshot(worker, token(runtime)) == before


def test_message_and_source_size_limits(spawn: Any, runtime: Path) -> None:
    worker = spawn(limits={"max_message_bytes": 200_000, "max_source_bytes": 1000})
    before = snapshot(worker, token(runtime))
    with AgentClient(worker.address, token(runtime), timeout=WAIT) as client:
        source = "def price(n):\n    return 0\n" + "#" * 2000 + "\n"
        with pytest.raises(LivefixError) as caught:
            client.request(protocol.APPLY, {"changes": [{"module": "shop", "qualname": "price", "source": source}],
                                            "approved": True})
        assert caught.value.kind == "invalid" and caught.value.details["limit"] == "maxSourceBytes"
        with pytest.raises(LivefixError) as caught:
            client.request(protocol.PREPARE, {"changes": [{"module": "shop", "source": source}]})
        assert caught.value.details["limit"] == "maxSourceBytes"
    huge = {"seq": 1, "type": "request", "command": protocol.APPLY,
            "arguments": {"changes": [{"module": "shop", "source": "x" * 300_000}]}}
    replies = exchange(raw_connect(worker), authenticate_bytes(token(runtime)) + encode(huge))
    assert replies[-1]["body"]["livefix"]["reason"] == "tooLarge"
    assert snapshot(worker, token(runtime)) == before


def test_agent_threads_are_never_traced(spawn: Any, runtime: Path) -> None:
    worker = spawn(trace=True, busy=True)
    with AgentClient(worker.address, token(runtime), timeout=WAIT) as client:
        client.request(protocol.AUTHENTICATE, {})
        with pytest.raises(LivefixError):
            client.request("livefix/unknown", {})
    traced = worker.ask("traced")
    assert "service-loop" in traced  # the tracer works on the service's own threads...
    assert not [name for name in traced if name.startswith("livefix")]  # ...and never on the agent's


def test_tcp_loopback_and_listen_twice(spawn: Any, runtime: Path) -> None:
    worker = spawn(address="127.0.0.1:0")
    address = parse_address(worker.address)
    assert address.kind == "tcp" and address.port
    with AgentClient(worker.address, token(runtime), timeout=WAIT) as client:
        assert client.hello["pid"] == worker.pid
    assert worker.call() == 21


def test_remote_bind_needs_tls_and_tls_works(spawn: Any, runtime: Path, tmp_path: Path) -> None:
    import ssl
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=WAIT,
    )
    with pytest.raises(AssertionError, match="allow_remote"):
        spawn(address="0.0.0.0:0")
    worker = spawn(address="0.0.0.0:0", allow_remote=True, certfile=str(cert), keyfile=str(key))
    port = parse_address(worker.address).port
    context = ssl.create_default_context(cafile=str(cert))
    with AgentClient(f"127.0.0.1:{port}", token(runtime), timeout=WAIT, ssl_context=context) as client:
        assert client.hello["pid"] == worker.pid
    # A client that does not speak TLS gets nothing it can use, and the service runs on.
    assert exchange(raw_connect_tcp(port), authenticate_bytes(token(runtime))) == []
    assert worker.call() == 21


def raw_connect_tcp(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=WAIT)


def test_sys_monitoring_stays_off_on_python_312(tmp_path: Path, runtime: Path) -> None:
    """On 3.12+, the agent registers no sys.monitoring tool (it would slow every thread)."""
    interpreter = None
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for candidate in sorted(pyenv_root.glob("3.1[23]*/bin/python")):
        interpreter = candidate
    if sys.version_info >= (3, 12):
        interpreter = Path(sys.executable)
    if interpreter is None:
        pytest.skip("no Python 3.12+ interpreter on this machine")
    root = Path(__file__).resolve().parents[2]
    script = (
        "import sys, livefix\n"
        "from livefix.agent.client import AgentClient\n"
        "agent = livefix.listen(token='t')\n"
        "with AgentClient(agent.address, 't') as c: c.request('livefix/authenticate', {})\n"
        "print([sys.monitoring.get_tool(i) for i in range(6)])\n"
        "agent.close()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([str(interpreter), "-c", script], env=env, capture_output=True, text=True, timeout=WAIT)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().replace("None", "null")) == [None] * 6


def test_every_client_hears_of_an_apply_and_the_audit_log_has_it(spawn: Any, runtime: Path, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    worker = spawn(audit_log=str(audit))
    change = {"module": "shop", "qualname": "price", "source": "def price(n):\n    return n * 100\n"}
    with AgentClient(worker.address, token(runtime), timeout=WAIT) as observer, \
            AgentClient(worker.address, token(runtime), timeout=WAIT) as fixer:
        body = fixer.request(protocol.APPLY, {"changes": [change]})
        observer.request(protocol.HISTORY)  # events sent before this answer are read with it
        heard = [(e["event"], e["body"]) for e in observer.events]
    assert heard[0] == (protocol.APPLIED_EVENT, {**body, "action": "apply"})
    assert heard[1] == ("output", {"category": "console", "output": body["report"] + "\n"})
    assert worker.call() == 201
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(line["action"], line["generation"], line["result"]) for line in lines] == [("apply", 1, "ok")]
    assert lines[0]["changes"][0]["qualname"] == "price" and len(lines[0]["changes"][0]["sha256"]) == 64


def test_a_fleet_worker_takes_no_address(runtime: Path) -> None:
    import livefix

    with pytest.raises(LivefixError) as caught:
        livefix.listen("127.0.0.1:0", service="shop")
    assert caught.value.kind == "invalid"
    assert not (runtime / "services").exists()


def test_a_second_agent_on_the_same_socket_is_refused_and_the_first_keeps_it(spawn: Any, runtime: Path) -> None:
    first = spawn()
    path = parse_address(first.address).path
    with pytest.raises(AssertionError, match="another agent is listening"):
        spawn(address=f"unix:{path}", strict=True)
    second = spawn(address=f"unix:{path}")  # not strict: the service starts, without an agent, and says why
    assert second.listening is False and second.call() == 21
    said = stderr_after_exit(second)
    assert "livefix: the agent did not start" in said and "another agent is listening" in said
    with AgentClient(first.address, token(runtime), timeout=WAIT) as client:
        assert client.hello["pid"] == first.pid


def test_a_forked_child_listens_on_its_own(runtime: Path) -> None:
    """Pre-fork servers: a child calls listen() itself, and keeps no copy of its parent's socket."""
    script = (
        "import os, sys, livefix\n"
        "parent = livefix.listen(token='t')\n"
        "read, write = os.pipe()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    child = livefix.listen(token='t')\n"
        "    os.write(write, str(child.address).encode())\n"
        "    sys.stdin.read()\n"
        "    os._exit(0)\n"
        "print(parent.address, os.read(read, 200).decode(), pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    child_pid = 0
    try:
        assert proc.stdout is not None
        parent_address, child_address, child = proc.stdout.readline().split()
        child_pid = int(child)
        assert parent_address != child_address
        with AgentClient(parent_address, "t", timeout=WAIT) as client:
            assert client.hello["pid"] == proc.pid
        proc.kill()  # the parent dies; were its listening socket still open in the child,
        proc.wait(timeout=WAIT)  # its clients would wait on a socket that nobody serves
        with pytest.raises(LivefixError) as caught:
            AgentClient(parent_address, "t", timeout=WAIT)
        assert caught.value.kind == "notFound"
        with AgentClient(child_address, "t", timeout=WAIT) as client:
            assert client.hello["pid"] == child_pid
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=WAIT)
        if child_pid:
            os.kill(child_pid, signal.SIGKILL)


def stderr_after_exit(worker: Worker) -> str:
    """Everything the worker wrote on stderr, once it has exited (no race with its pipe)."""
    assert worker.proc.stdin is not None
    worker.proc.stdin.write("exit\n")
    worker.proc.stdin.flush()
    worker.proc.wait(WAIT)
    worker._stderr_thread.join(WAIT)
    return "".join(worker.stderr)


@pytest.mark.parametrize("squat", ["file", "other user's directory"])
def test_a_squatted_runtime_directory_never_keeps_the_service_from_starting(tmp_path: Path, squat: str) -> None:
    """Another local user who creates the runtime directory first (or a file there) is
    skipped with a warning; the service and the command line meet in the next candidate."""
    squatted = tmp_path / "squatted"
    if squat == "file":
        squatted.write_text("not a directory")
    else:
        if os.getuid() != 0:
            pytest.skip("making a directory another user owns needs root here")
        squatted.mkdir()
        os.chown(squatted, 65534, 65534)
    fallback = Path(tempfile.mkdtemp(prefix="lf-", dir="/tmp"))
    env = {**os.environ, "LIVEFIX_RUNTIME_DIR": str(squatted), "XDG_RUNTIME_DIR": str(fallback)}
    env.pop("LIVEFIX_TOKEN", None)
    app = tmp_path / "app"
    app.mkdir()
    (app / "shop.py").write_text(APP)
    worker = Worker(app, {}, env)
    try:
        assert worker.listening and worker.address.startswith(f"unix:{fallback}/livefix/")
        done = subprocess.run([sys.executable, "-m", "livefix.cli", "status", str(worker.pid), "--json"],
                              capture_output=True, text=True, env=env, timeout=WAIT)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["agent"]["pid"] == worker.pid
        said = stderr_after_exit(worker)
        assert f"{squatted}" in said and f"using {fallback / 'livefix'} instead" in said, said
    finally:
        worker.kill()
        shutil.rmtree(fallback, ignore_errors=True)


def test_a_commit_from_a_peer_that_half_closed_is_answered_and_not_made(spawn: Any, runtime: Path) -> None:
    worker = spawn()
    before = snapshot(worker, token(runtime))
    change = {"module": "shop", "qualname": "price", "source": "def price(n):\n    return n * 100\n"}
    requests = authenticate_bytes(token(runtime)) + encode(
        {"seq": 2, "type": "request", "command": protocol.PREPARE, "arguments": {"changes": [change]}}
    ) + encode({"seq": 3, "type": "request", "command": protocol.COMMIT, "arguments": {"prepareId": "x"}})
    replies = exchange(raw_connect(worker), requests)  # sent, then our side shut: still reading
    assert [r["request_seq"] for r in replies] == [1, 2, 3]
    assert replies[1]["success"] is True
    assert replies[2]["success"] is False and replies[2]["body"]["livefix"]["reason"] == "hungUp"
    assert snapshot(worker, token(runtime)) == before
