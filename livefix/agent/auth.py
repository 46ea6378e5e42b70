"""The agent's shared secret: where the token comes from and how it is checked.

Connects `listen()` and the command line to one token. The token is taken from an
environment variable (`LIVEFIX_TOKEN` by default) or from a file that only its owner
may read (mode 0600 or stricter); `listen()` creates such a file in the per-user
runtime directory when neither is given. Tokens are compared in constant time.
Standard library only.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from livefix.errors import LivefixError

TOKEN_ENV = "LIVEFIX_TOKEN"
TOKEN_FILE_ENV = "LIVEFIX_TOKEN_FILE"
# Tokens are short text; a bound keeps a hostile peer from making us hash megabytes.
MAX_TOKEN_CHARS = 512


def generate_token() -> str:
    """A fresh random token (256 bits, URL-safe text)."""
    import secrets  # only a service creating the token needs it

    return secrets.token_urlsafe(32)


def read_token_file(path: str | os.PathLike[str]) -> str:
    """The token in `path`, refusing a file that others could read or write."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise LivefixError("invalid", f"cannot read the token file {path}: {exc.strerror}", path=str(path)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise LivefixError("invalid", f"the token file {path} is not a regular file", path=str(path))
        if info.st_mode & 0o077:
            raise LivefixError(
                "invalid",
                f"the token file {path} is accessible to other users (mode {stat.S_IMODE(info.st_mode):o}); "
                "run `chmod 600` on it",
                path=str(path),
            )
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            raise LivefixError("invalid", f"the token file {path} belongs to another user", path=str(path))
        data = os.read(fd, MAX_TOKEN_CHARS + 2)
    finally:
        os.close(fd)
    token = data.decode("utf-8", "replace").strip()
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise LivefixError("invalid", f"the token file {path} holds no usable token", path=str(path))
    return token


def write_token_file(path: str | os.PathLike[str], token: str) -> Path:
    """Create `path` holding `token`, mode 0600 from the start; FileExistsError if it exists.

    Written to a private temporary name, then hard-linked into place: readers never
    see a half-written file, and of two processes creating it at once exactly one
    wins (os.replace would let the second silently change the token under the first)."""
    path = Path(path)
    import secrets

    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(fd, token.encode("utf-8") + b"\n")
        finally:
            os.close(fd)
        os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return path


def resolve_token(
    token: str | None = None, token_file: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None
) -> str | None:
    """The token given explicitly, else from `$LIVEFIX_TOKEN`, else from `$LIVEFIX_TOKEN_FILE`/`token_file`.

    None when none of them is set (the caller then creates a token file)."""
    env = os.environ if env is None else env
    if token:
        return token
    if token_file is not None:
        return read_token_file(token_file)
    if env.get(TOKEN_ENV):
        return env[TOKEN_ENV]
    if env.get(TOKEN_FILE_ENV):
        return read_token_file(env[TOKEN_FILE_ENV])
    return None


def token_matches(presented: object, expected: str) -> bool:
    """Constant-time comparison; anything that is not a short string never matches."""
    if not isinstance(presented, str) or len(presented) > MAX_TOKEN_CHARS:
        return False
    import hmac  # only the serving side compares; the command line starts faster without it

    return hmac.compare_digest(presented.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))
