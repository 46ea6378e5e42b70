"""Where the agent listens and how a client reaches it: Unix sockets, loopback TCP, TLS.

Connects an address (as a user writes it on the command line or passes it to
`listen()`) to a listening or connected socket. The default is a Unix socket,
mode 0600, inside a per-user runtime directory (mode 0700). TCP binds to loopback;
any other interface needs `allow_remote=True` and TLS (an `ssl.SSLContext`), since
the token would otherwise cross the network in clear. Standard library only.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from livefix.agent import host_os
from livefix.errors import LivefixError

if TYPE_CHECKING:  # `ssl` costs ~15 ms at start-up and only TLS users need it
    import ssl

RUNTIME_DIR_ENV = "LIVEFIX_RUNTIME_DIR"
# sockaddr_un.sun_path is 108 bytes on Linux, 104 on macOS: fail early and clearly.
MAX_UNIX_PATH = 100


class Address(NamedTuple):  # a NamedTuple, not a dataclass: `dataclasses` is 5 ms of every command's start-up
    """A parsed agent address: `unix` with a path, or `tcp` with host and port."""

    kind: str  # "unix" | "tcp"
    path: str | None = None
    host: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"tcp:{host}:{self.port}"


def runtime_dir(create: bool = True) -> Path:
    """The per-user directory for sockets, the token and registries (mode 0700, ours).

    The first usable of: `$LIVEFIX_RUNTIME_DIR`, `$XDG_RUNTIME_DIR/livefix`,
    `<tmp>/livefix-<uid>`, `~/.cache/livefix/run`. A directory that another user owns (say,
    one who created `/tmp/livefix-<uid>` first) or that is not a directory is skipped with a
    warning, never used: they could swap our sockets. Services and the command line walk the
    same list, so they meet in the same place. `create=False` (the command line) creates
    nothing: the first candidate that is ours, else the first candidate."""
    candidates = runtime_dir_candidates()
    if not create:
        for path in candidates:
            if _ours(path):
                return path
        return candidates[0]
    reasons = []
    for path in candidates:
        try:
            ensure_private_dir(path)
        except LivefixError as error:
            reasons.append(error.message)
            continue
        if reasons:
            import logging  # only a service creating its directory warns; commands start faster without it

            logging.getLogger("livefix.agent").warning("livefix: %s; using %s instead", "; ".join(reasons), path)
        return path
    raise LivefixError("invalid", "no usable livefix runtime directory: " + "; ".join(reasons))


def runtime_dir_candidates() -> list[Path]:
    candidates = []
    if os.environ.get(RUNTIME_DIR_ENV):
        candidates.append(Path(os.environ[RUNTIME_DIR_ENV]))
    if os.environ.get("XDG_RUNTIME_DIR") and os.path.isdir(os.environ["XDG_RUNTIME_DIR"]):
        candidates.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "livefix")
    candidates.append(Path(host_os.temp_root()) / f"livefix-{host_os.user_tag()}")
    candidates.append(Path.home() / ".cache" / "livefix" / "run")
    return candidates


def _ours(path: Path) -> bool:
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and host_os.owned_by_me(info)


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (mode 0700) or check that an existing one is ours and private."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise LivefixError("invalid", f"cannot create the livefix directory {path}: {exc.strerror}") from None
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise LivefixError("invalid", f"{path} is not a directory")
    if not host_os.owned_by_me(info):
        raise LivefixError("invalid", f"the livefix directory {path} belongs to another user; refusing to use it")
    if info.st_mode & 0o077:
        # We created it (umask can widen nothing here) or the user did: tighten rather than refuse.
        os.chmod(path, 0o700)
    return path


def parse_address(text: str | int | tuple[str, int] | Address) -> Address:
    """`unix:PATH`, a path (contains `/`), `tcp:HOST:PORT`, `HOST:PORT`, `:PORT` or `PORT`."""
    if isinstance(text, Address):
        return text
    if isinstance(text, tuple):
        return Address("tcp", host=text[0] or "127.0.0.1", port=_port(text[1]))
    if isinstance(text, int):
        return Address("tcp", host="127.0.0.1", port=_port(text))
    text = text.strip()
    if text.startswith("unix:"):
        return Address("unix", path=text[len("unix:") :])
    if text.startswith("tcp:"):
        text = text[len("tcp:") :].lstrip("/")
    elif "/" in text or text.endswith(".sock"):
        return Address("unix", path=text)
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or "127.0.0.1"
    return Address("tcp", host=host, port=_port(port))


def _port(value: object) -> int:
    try:
        port = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise LivefixError("invalid", f"not an agent address or port: {value!r}") from None
    if not 0 <= port <= 65535:
        raise LivefixError("invalid", f"port out of range: {port}")
    return port


def is_loopback(host: str) -> bool:
    """True when every address `host` resolves to is a loopback address."""
    import ipaddress  # here: only TCP addresses need it, and every command's start-up counts

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def bind(
    address: Address, *, allow_remote: bool = False, ssl_context: ssl.SSLContext | None = None, backlog: int = 64
) -> socket.socket:
    """A listening socket for `address` (TCP port 0 picks a free port)."""
    if address.kind == "unix":
        assert address.path is not None
        return _bind_unix(address.path, backlog)
    assert address.host is not None and address.port is not None
    check_remote(address, allow_remote, ssl_context)
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address.host, address.port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise LivefixError("invalid", f"cannot listen on {address}: {exc.strerror}") from None
    return sock


def check_remote(address: Address, allow_remote: bool, ssl_context: ssl.SSLContext | None) -> None:
    """A non-loopback address needs `allow_remote` and TLS: the caller's choice, checked first."""
    if address.kind != "tcp" or address.host is None or is_loopback(address.host):
        return
    if not allow_remote:
        raise LivefixError(
            "invalid",
            f"refusing to listen on {address.host}, which is not a loopback address: "
            "pass allow_remote=True and TLS (ssl_context or certfile/keyfile) to accept remote clients",
        )
    if ssl_context is None:
        raise LivefixError("invalid", f"listening on {address.host} needs TLS: pass ssl_context or certfile/keyfile")


def _bind_unix(path: str, backlog: int) -> socket.socket:
    if len(os.fsencode(path)) > MAX_UNIX_PATH:
        raise LivefixError("invalid", f"socket path too long for a Unix socket ({len(path)} > {MAX_UNIX_PATH}): {path}")
    parent = Path(path).parent
    ensure_private_dir(parent)
    if os.path.lexists(path):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise LivefixError("invalid", f"{path} exists and is not a socket; refusing to replace it")
        if _answers(path):
            raise LivefixError("busy", f"another agent is listening on {path}")
        os.unlink(path)  # left behind by a process that died
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        # The directory is already 0700; 0600 on the socket too, in case it is moved or shared.
        os.chmod(path, 0o600)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise LivefixError("invalid", f"cannot listen on {path}: {exc.strerror}") from None
    return sock


def _answers(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def address_of(sock: socket.socket, requested: Address) -> Address:
    """The address clients should use for a bound socket (the real port when 0 was asked)."""
    if requested.kind == "unix":
        return requested
    host, port = sock.getsockname()[:2]
    return Address("tcp", host=requested.host, port=port)


def connect(
    address: Address,
    *,
    timeout: float | None = 10.0,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> socket.socket:
    """A connected socket (TLS-wrapped when `ssl_context` is given)."""
    try:
        if address.kind == "unix":
            assert address.path is not None
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(address.path)
            except OSError:
                sock.close()
                raise
            return sock
        assert address.host is not None and address.port is not None
        sock = socket.create_connection((address.host, address.port), timeout=timeout)
        # Requests are small and answered at once: never wait for Nagle (see the adapter's 44 ms stall).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname or address.host)
        return sock
    except OSError as exc:
        reason = exc.strerror or str(exc)
        missing = exc.errno in (errno.ENOENT, errno.ECONNREFUSED)
        raise LivefixError(
            "notFound" if missing else "failed",
            f"cannot reach a livefix agent at {address}: {reason}",
            address=str(address),
        ) from None
