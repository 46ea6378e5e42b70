"""Live evidence as a person reads it: the tables `livefix watch` prints.

Shared by the command line (and anything else that prints evidence bodies); the bodies
are the wire shapes of `livefix/evidence` and `livefix/watch` (livefix/protocol.py).
"""

from __future__ import annotations

import time
from typing import Any

_HEADER = f"{'function':<34} {'code':<7} {'calls':>9} {'errors':>7} {'error rate':>10} {'p50 ms':>9} {'p99 ms':>9}"


def render_evidence(body: dict[str, Any], now: float | None = None) -> str:
    """A fix's before/after table, its window and its canary."""
    now = time.time() if now is None else now
    state = body.get("state")
    if state == "watching":
        left = max(float(body.get("until", now)) - now, 0.0)
        head = f"generation {body.get('generation')}: watching, {left:.0f} s left"
    else:
        head = f"generation {body.get('generation')}: final figures"
    canary = body.get("canary")
    if canary:
        terms = [f"window {canary.get('window', 0):g} s"]
        if canary.get("maxErrorRate") is not None:
            terms.append(f"max error rate {canary['maxErrorRate']:.1%}")
        if canary.get("maxP99Ms") is not None:
            terms.append(f"max p99 {canary['maxP99Ms']:g} ms")
        head += "; canary: " + ", ".join(terms)
    lines = [head, _HEADER]
    for label, pair in (body.get("functions") or {}).items():
        lines.append(_row(label, "before", pair.get("before")))
        lines.append(_row("", "after", pair.get("after")))
    if body.get("report"):
        lines.append(str(body["report"]))
    verdict = (canary or {}).get("verdict")
    if verdict:
        lines.append(str(verdict.get("report")))
    return "\n".join(lines)


def render_watched(body: dict[str, Any]) -> str:
    """What `watch` counts: each version of each watched function's code."""
    functions = body.get("functions") or {}
    if not functions:
        return "nothing is watched"
    lines = [_HEADER]
    for label, versions in functions.items():
        for index, figures in enumerate(versions):
            lines.append(_row(label if index == 0 else "", f"v{index + 1}", figures))
    return "\n".join(lines)


def _row(label: str, code: str, figures: dict[str, Any] | None) -> str:
    if not figures:
        return f"{label:<34} {code:<7} {'-':>9}"
    rate = f"{figures.get('errorRate', 0):.1%}"
    return (
        f"{label:<34} {code:<7} {figures.get('calls', 0):>9,} {figures.get('errors', 0):>7,} {rate:>10} "
        f"{_ms(figures.get('p50Ms')):>9} {_ms(figures.get('p99Ms')):>9}"
    )


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:.3g}"
