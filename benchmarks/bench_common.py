"""What the benchmark scripts share: choosing from a comma list on the command line, and
naming the checkout a table was measured on."""

from __future__ import annotations

import argparse
import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_list(text: str | None, known: tuple[str, ...], what: str, parser: argparse.ArgumentParser) -> list[str]:
    """The names chosen by `--WHAT a,b` (all by default), in `known`'s order; unknown ones exit 2."""
    chosen = [t.strip() for t in (text or ",".join(known)).split(",") if t.strip()]
    unknown = [t for t in chosen if t not in known]
    if unknown:
        parser.error(f"unknown {what} {unknown}; choose from {','.join(known)}")
    return [t for t in known if t in chosen]


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True).stdout.strip()


def checkout() -> str:
    """The commit measured, and whether livefix/ had uncommitted changes."""
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+uncommitted changes under livefix/" if git("status", "--porcelain", "--", "livefix") else "")
