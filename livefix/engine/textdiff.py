"""Which top-level statements of a module changed between two texts, in time proportional
to the change rather than to the file.

The common prefix and suffix of the two texts are found block by block (C-speed string
comparisons), the differing lines are widened to whole top-level statements by looking
at column-0 lines, and only that chunk of each text is parsed. A chunk boundary that a
column-0 line inside a multi-line string fooled is caught by the chunk failing to parse
or by its definitions not matching the running code (`looks_aligned`), and the diff
then widens, up to the whole file.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

_BLOCK = 4096
_CONTINUATIONS = ("else", "elif", "except", "finally", "case")


@dataclass
class Chunk:
    """Lines [first, last] (1-based, inclusive) of a text, parsed with real line numbers."""

    first: int
    last: int
    text: str
    statements: list[ast.stmt]


@dataclass
class TextDiff:
    old: Chunk
    new: Chunk
    whole_file: bool

    @property
    def line_delta(self) -> int:
        """How far the lines after the change moved."""
        return (self.new.last - self.new.first) - (self.old.last - self.old.first)


def common_prefix_length(a: str, b: str) -> int:
    """Length of the common prefix: block compares, then a binary search inside the block
    (every comparison is one C-level memcmp; no Python loop over characters)."""
    limit = min(len(a), len(b))
    low = 0
    while low < limit:
        end = min(low + _BLOCK, limit)
        if a[low:end] != b[low:end]:
            break
        low = end
    high = min(low + _BLOCK, limit)  # the prefix ends in [low, high]
    while low < high:
        middle = (low + high + 1) // 2
        if a[low:middle] == b[low:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def common_suffix_length(a: str, b: str, prefix: int) -> int:
    """Length of the common suffix that does not overlap the common prefix."""
    limit = min(len(a), len(b)) - prefix
    low = 0
    while low < limit:
        step = min(_BLOCK, limit - low)
        if a[len(a) - low - step : len(a) - low] != b[len(b) - low - step : len(b) - low]:
            break
        low += step
    high = min(low + _BLOCK, limit)
    while low < high:
        middle = (low + high + 1) // 2
        if a[len(a) - middle : len(a) - low] == b[len(b) - middle : len(b) - low]:
            low = middle
        else:
            high = middle - 1
    return low


class Lines:
    """Line access into a text without splitting all of it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.count = text.count("\n") + (0 if text.endswith("\n") or not text else 1)

    def line_of(self, offset: int) -> int:
        """1-based line number containing character `offset`."""
        return self.text.count("\n", 0, offset) + 1

    def start_of(self, line: int) -> int:
        """Offset of the first character of 1-based `line` (len(text) past the end)."""
        offset = 0
        for _ in range(line - 1):
            offset = self.text.find("\n", offset)
            if offset < 0:
                return len(self.text)
            offset += 1
        return offset

    def get(self, offset: int) -> str:
        end = self.text.find("\n", offset)
        return self.text[offset:] if end < 0 else self.text[offset:end]


def _is_statement_start(line: str) -> bool:
    if not line or line[0] in " \t\f#)]}\r\n":
        return False
    word = line.split(None, 1)[0].rstrip(":")
    return word not in _CONTINUATIONS


def _previous_line(text: str, offset: int) -> int:
    """Offset of the start of the line before the line starting at `offset` (-1: none)."""
    if offset <= 0:
        return -1
    return text.rfind("\n", 0, offset - 1) + 1


def _widen(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen [start, end) (line-start offsets) to whole top-level statements."""
    # upwards: to a column-0 statement start, then over its decorators and comments
    while start > 0:
        line = text[start : text.find("\n", start) if text.find("\n", start) >= 0 else len(text)]
        if _is_statement_start(line):
            previous = _previous_line(text, start)
            if previous >= 0 and text[previous:start].rstrip("\r\n").endswith("\\"):
                start = previous
                continue
            # decorators belong to the definition below them
            while previous >= 0 and text.startswith("@", previous):
                start = previous
                previous = _previous_line(text, start)
            break
        start = _previous_line(text, start)
    start = max(start, 0)
    # downwards: up to (not including) the next column-0 statement start
    while end < len(text):
        newline = text.find("\n", end)
        line = text[end : newline if newline >= 0 else len(text)]
        if _is_statement_start(line) and not line.startswith("@"):
            previous = _previous_line(text, end)
            if not (previous >= 0 and text[previous:end].rstrip("\r\n").endswith("\\")):
                # a decorator line just above belongs to this statement, not to the chunk
                while previous >= start and text.startswith("@", previous) and previous > start:
                    end = previous
                    previous = _previous_line(text, end)
                break
        if newline < 0:
            end = len(text)
            break
        end = newline + 1
    return start, end


def _parse_chunk(text: str, start: int, end: int, filename: str) -> Chunk | None:
    chunk = text[start:end]
    first = text.count("\n", 0, start) + 1
    try:
        tree = ast.parse(chunk, filename=filename)
    except (SyntaxError, ValueError):
        return None
    if first != 1:
        ast.increment_lineno(tree, first - 1)
    # An empty chunk (a pure insertion or deletion point) spans no line: last = first - 1.
    last = first - 1 if not chunk else first + chunk.count("\n") - (1 if chunk.endswith("\n") else 0)
    return Chunk(first=first, last=last, text=chunk, statements=list(tree.body))


def diff_texts(old: str, new: str, filename: str, attempts: int = 3) -> TextDiff | None:
    """The changed top-level statements of `old` -> `new`; None when the texts are equal.

    Raises SyntaxError (from the whole new file) when the new text does not parse."""
    if old == new:
        return None
    prefix = common_prefix_length(old, new)
    suffix = common_suffix_length(old, new, prefix)
    old_start = old.rfind("\n", 0, prefix) + 1
    new_start = old_start  # identical prefix
    old_end = len(old) - suffix
    new_end = len(new) - suffix
    # end at a line end (exclusive offsets of the next line start)
    old_end = _line_end(old, old_end)
    new_end = _line_end(new, new_end)
    for attempt in range(attempts):
        o_start, o_end = _widen(old, old_start, old_end)
        n_start, n_end = _widen(new, new_start, new_end)
        # both sides must cover the same unchanged context
        start = min(o_start, n_start)
        o_end_suffix = len(old) - o_end
        n_end_suffix = len(new) - n_end
        common_tail = min(o_end_suffix, n_end_suffix)
        o_end, n_end = len(old) - common_tail, len(new) - common_tail
        old_chunk = _parse_chunk(old, start, o_end, filename)
        new_chunk = _parse_chunk(new, start, n_end, filename)
        if old_chunk is not None and new_chunk is not None:
            return TextDiff(old=old_chunk, new=new_chunk, whole_file=(start == 0 and common_tail == 0))
        # a boundary fell inside a multi-line construct: widen past it and retry
        old_start = _previous_line(old, start) if start > 0 else 0
        new_start = old_start
        old_end = _line_end(old, o_end + 1) if o_end < len(old) else len(old)
        new_end = _line_end(new, n_end + 1) if n_end < len(new) else len(new)
    return whole_file_diff(old, new, filename)


def whole_file_diff(old: str, new: str, filename: str) -> TextDiff:
    new_tree = ast.parse(new, filename=filename)  # SyntaxError propagates: the caller reports it
    try:
        old_tree = ast.parse(old, filename=filename)
        old_statements = list(old_tree.body)
    except SyntaxError:
        old_statements = []
    return TextDiff(
        old=Chunk(1, Lines(old).count, old, old_statements),
        new=Chunk(1, Lines(new).count, new, list(new_tree.body)),
        whole_file=True,
    )


def _line_end(text: str, offset: int) -> int:
    """The offset just past the end of the line containing offset-1 (or offset)."""
    if offset <= 0:
        return 0
    if text[offset - 1] == "\n":
        return offset
    newline = text.find("\n", offset)
    return len(text) if newline < 0 else newline + 1


def statement_text(chunk: Chunk, node: ast.stmt, include_decorators: bool = True) -> str:
    """The exact source lines of a statement in a chunk (decorators included)."""
    first = node.lineno
    decorators = getattr(node, "decorator_list", None)
    if include_decorators and decorators:
        first = min(first, min(d.lineno for d in decorators))
    last = node.end_lineno or node.lineno
    lines = chunk.text.splitlines(True)
    return "".join(lines[first - chunk.first : last - chunk.first + 1])
