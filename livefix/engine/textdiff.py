"""Which top-level statements of a module changed between two texts, in time proportional
to what changed rather than to the file, for any number of edit sites.

The texts are compared with C-speed string operations only: the common prefix and suffix
block by block, then, between them, every place where the texts fall back into step is
found with `str.find` of a short needle taken from the new text (the "hunks"). Outside
the hunks the two texts are equal by construction (every equal run is checked by string
comparison), so a poor choice of needle can only make a hunk larger, never the diff wrong.
Each hunk is widened to whole top-level statements by looking at column-0 lines and only
the hunks are parsed, with their real line numbers. A hunk boundary that a column-0 line
inside a multi-line string fooled is caught by the hunk failing to parse (or, in the
planner, by its definitions not sitting where the running code says), and the diff then
widens, up to the whole file.
"""

from __future__ import annotations

import ast
import bisect
from dataclasses import dataclass, field

_BLOCK = 4096
_NEEDLE = 12  # characters at least: whole lines of the new text from there
_CONTINUATIONS = ("else", "elif", "except", "finally", "case")


@dataclass
class Hunk:
    """Lines [first, last] (1-based, inclusive; last = first - 1 when empty) of one text."""

    first: int
    last: int
    text: str
    statements: list[ast.stmt]
    _lines: list[str] | None = field(default=None, repr=False)

    def lines(self) -> list[str]:
        """The hunk's lines with their endings, split once (statements are cut from these)."""
        if self._lines is None:
            self._lines = _split_newlines(self.text)
        return self._lines


@dataclass
class Chunk:
    """One side of a diff: the changed hunks of one text, in order."""

    hunks: list[Hunk]
    _starts: list[int] | None = field(default=None, repr=False)

    @property
    def statements(self) -> list[ast.stmt]:
        return [node for hunk in self.hunks for node in hunk.statements]

    def source(self, first: int, last: int) -> str:
        """Lines [first, last] of the text (they must lie inside one hunk)."""
        if self._starts is None:
            self._starts = [hunk.first for hunk in self.hunks]
        hunk = self.hunks[max(bisect.bisect_right(self._starts, first) - 1, 0)]
        lines = hunk.lines()
        return "".join(lines[first - hunk.first : last - hunk.first + 1])


@dataclass
class TextDiff:
    old: Chunk
    new: Chunk
    whole_file: bool
    _moves: tuple[list[int], list[int], list[int]] | None = field(default=None, repr=False)

    @property
    def moves_lines(self) -> bool:
        """Does any hunk add or remove lines (so code outside the hunks moves)?"""
        return any(_lines_in(n) != _lines_in(o) for o, n in zip(self.old.hunks, self.new.hunks))

    def shift_at(self, line: int) -> int | None:
        """How far old line `line` moved in the new text (None: it lies inside a hunk)."""
        if self._moves is None:  # hunk starts, ends and the total move after each, once
            firsts, lasts, after = [], [], []
            total = 0
            for old, new in zip(self.old.hunks, self.new.hunks):
                total += _lines_in(new) - _lines_in(old)
                firsts.append(old.first)
                lasts.append(old.last)
                after.append(total)
            self._moves = (firsts, lasts, after)
        firsts, lasts, after = self._moves
        index = bisect.bisect_right(firsts, line) - 1  # the last hunk starting at or before the line
        if index < 0:
            return 0
        if line <= lasts[index]:
            return None
        return after[index]


def _lines_in(hunk: Hunk) -> int:
    return hunk.last - hunk.first + 1


def _split_newlines(text: str) -> list[str]:
    """Lines ended by \\n only (str.splitlines also breaks at form feeds, which the parser does not)."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


# -- equal runs, C speed ------------------------------------------------------------------


def common_prefix_length(a: str, b: str) -> int:
    return _run_forward(a, 0, b, 0, min(len(a), len(b)))


def common_suffix_length(a: str, b: str, prefix: int) -> int:
    """Length of the common suffix that does not overlap the common prefix."""
    return _run_backward(a, len(a), b, len(b), min(len(a), len(b)) - prefix)


def _run_forward(a: str, i: int, b: str, j: int, limit: int) -> int:
    """How many characters a[i:] and b[j:] have in common (at most `limit`): block compares,
    then a binary search inside the block (each comparison is one C-level memcmp)."""
    low = 0
    while low < limit:
        step = min(_BLOCK, limit - low)
        if a[i + low : i + low + step] != b[j + low : j + low + step]:
            break
        low += step
    high = min(low + _BLOCK, limit)
    while low < high:
        middle = (low + high + 1) // 2
        if a[i + low : i + middle] == b[j + low : j + middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _run_backward(a: str, i: int, b: str, j: int, limit: int) -> int:
    """How many characters a[:i] and b[:j] have in common at their ends (at most `limit`)."""
    low = 0
    while low < limit:
        step = min(_BLOCK, limit - low)
        if a[i - low - step : i - low] != b[j - low - step : j - low]:
            break
        low += step
    high = min(low + _BLOCK, limit)
    while low < high:
        middle = (low + high + 1) // 2
        if a[i - middle : i - low] == b[j - middle : j - low]:
            low = middle
        else:
            high = middle - 1
    return low


def find_hunks(old: str, new: str) -> list[tuple[int, int, int, int]]:
    """Character ranges (old_start, old_end, new_start, new_end) where the texts differ;
    outside them they are equal, in order and in step."""
    prefix = common_prefix_length(old, new)
    suffix = common_suffix_length(old, new, prefix)
    old_end, new_end = len(old) - suffix, len(new) - suffix
    hunks: list[tuple[int, int, int, int]] = []
    o = n = prefix
    while o < old_end or n < new_end:
        resync = _resync(old, o, old_end, new, n, new_end)
        if resync is None:
            hunks.append((o, old_end, n, new_end))
            break
        k, j, run = resync
        back = _run_backward(old, k, new, j, min(k - o, j - n))
        hunks.append((o, k - back, n, j - back))
        o, n = k + run, j + run
    return hunks


def _resync(old: str, o: int, old_end: int, new: str, n: int, new_end: int) -> tuple[int, int, int] | None:
    """The next place (k in old, j in new, run length) after a difference at (o, n) where the
    texts agree again; None when they do not before the common suffix.

    The needle is a few whole lines of the new text (at least _NEEDLE characters); it is
    looked for in a window of the old text that grows with the distance already covered,
    so a hunk of any size costs time linear in its size."""
    j = new.find("\n", n, new_end) + 1
    step = 64
    while 0 < j < new_end:
        stop = new.find("\n", min(j + _NEEDLE, new_end - 1), new_end)
        stop = new_end if stop < 0 else stop + 1
        needle = new[j:stop]
        window = min(old_end, o + 2 * (stop - n) + _BLOCK)
        k = old.find(needle, o, window)
        if k >= 0:
            run = _run_forward(old, k, new, j, min(old_end - k, new_end - j))
            return k, j, run
        # the needle is new text: look further on, in growing steps (cost stays linear)
        j = new.find("\n", j + step, new_end) + 1
        step *= 2
    return None


# -- statements ---------------------------------------------------------------------------


def _is_statement_start(text: str, offset: int) -> bool:
    first = text[offset : offset + 1]
    if not first or first in " \t\f#)]}\r\n":
        return False
    end = text.find("\n", offset, offset + 200)
    word = text[offset : end if end >= 0 else offset + 200].split(None, 1)[0].rstrip(":")
    return word not in _CONTINUATIONS


def _previous_line(text: str, offset: int) -> int:
    """Offset of the start of the line before the line starting at `offset` (-1: none)."""
    if offset <= 0:
        return -1
    return text.rfind("\n", 0, offset - 1) + 1


def _continued(text: str, line_start: int) -> bool:
    """Does the line before `line_start` end with a backslash continuation?"""
    previous = _previous_line(text, line_start)
    return previous >= 0 and text[previous:line_start].rstrip("\r\n").endswith("\\")


def _decorated_from(text: str, offset: int, floor: int) -> int:
    """Where the statement at `offset` really starts: its first decorator above it, looking
    past comments, blank lines and decorator arguments that span lines (not above `floor`)."""
    top = offset
    cursor = _previous_line(text, offset)
    while cursor >= max(floor, 0):
        first = text[cursor : cursor + 1]
        if first == "@":
            top = cursor
        elif first and first not in " \t\f#)]}\r\n":
            break  # another statement at column 0
        cursor = _previous_line(text, cursor)
    return top


def widen_up(text: str, start: int) -> int:
    """The start of the top-level statement (with its decorators) containing line `start`."""
    while start > 0:
        if _is_statement_start(text, start) and not _continued(text, start):
            return _decorated_from(text, start, 0)  # decorators belong to what they decorate
        start = _previous_line(text, start)
    return 0


def widen_down(text: str, end: int, start: int) -> int:
    """The start of the first top-level statement at or after line `end` (len(text): none),
    leaving out the decorators above it (they belong to it)."""
    changed_until = end  # the span's lines before this are changed: it never ends above it
    while end < len(text):
        if _is_statement_start(text, end) and not text.startswith("@", end) and not _continued(text, end):
            top = _decorated_from(text, end, start)
            if top >= changed_until and top > start:
                return top
            # the span holds some of this statement's decorators: the statement is in it
        newline = text.find("\n", end)
        if newline < 0:
            return len(text)
        end = newline + 1
    return len(text)


def _line_start(text: str, offset: int) -> int:
    return text.rfind("\n", 0, offset) + 1


def _line_end(text: str, offset: int) -> int:
    """The offset just past the end of the line containing offset-1 (or offset)."""
    if offset <= 0:
        return 0
    if text[offset - 1] == "\n":
        return offset
    newline = text.find("\n", offset)
    return len(text) if newline < 0 else newline + 1


@dataclass
class _Span:
    """A hunk in both texts, as line-start offsets; the text before and after it is equal."""

    o_start: int
    o_end: int
    n_start: int
    n_end: int

    @property
    def before(self) -> int:  # new offset - old offset in the equal text before the hunk
        return self.n_start - self.o_start

    @property
    def after(self) -> int:
        return self.n_end - self.o_end


def _statement_spans(old: str, new: str, hunks: list[tuple[int, int, int, int]]) -> list[_Span]:
    """The hunks widened to whole top-level statements on both sides, merged where they meet."""
    spans: list[_Span] = []
    for o_start, o_end, n_start, n_end in hunks:
        # The text after the hunk is equal in both: end both sides on the same line of it
        # (one side may end at a line start where the other ends mid-line).
        extra = max(_line_end(old, o_end) - o_end, _line_end(new, n_end) - n_end)
        o_end, n_end = _line_end(old, min(o_end + extra, len(old))), _line_end(new, min(n_end + extra, len(new)))
        spans.append(_Span(_line_start(old, o_start), o_end, _line_start(new, n_start), n_end))
    return _normalised(old, new, spans)


def _normalised(old: str, new: str, spans: list[_Span]) -> list[_Span]:
    """Widen every span until both its sides hold whole top-level statements, merging spans
    that meet. A span's two sides are in step only up to its neighbours (the equal text
    between two hunks is shifted by a different amount on each side of a hunk), so a span
    that reaches into a neighbour takes the neighbour's own offsets by merging with it."""
    index = 0
    while index < len(spans):
        span = spans[index]
        if index > 0 and span.o_start < spans[index - 1].o_end:
            _absorb(spans[index - 1], span)
            del spans[index]
            index -= 1
            continue
        if index + 1 < len(spans) and span.o_end > spans[index + 1].o_start:
            _absorb(span, spans.pop(index + 1), take_end=True)
            continue
        if _widen_once(old, new, span):
            continue
        index += 1
    return spans


def _absorb(previous: _Span, span: _Span, take_end: bool = False) -> None:
    """Merge `span` into the span before it; its end is taken as a pair (the two are in step)."""
    if take_end or span.o_end > previous.o_end:
        previous.o_end, previous.n_end = span.o_end, span.n_end


def _widen_once(old: str, new: str, span: _Span) -> bool:
    """Widen both sides of `span` to statement boundaries once; True if it changed."""
    before, after = span.before, span.after
    start = min(widen_up(old, span.o_start), widen_up(new, span.n_start) - before)
    end = max(widen_down(old, span.o_end, start), widen_down(new, span.n_end, start + before) - after)
    if (start, end) == (span.o_start, span.o_end):
        return False
    span.o_start, span.n_start = start, start + before
    span.o_end, span.n_end = end, end + after
    return True


class _LineCounter:
    """1-based line numbers of increasing offsets, counting each newline once."""

    def __init__(self, text: str) -> None:
        self.text, self.offset, self.line = text, 0, 1

    def line_of(self, offset: int) -> int:
        if offset < self.offset:
            self.offset, self.line = 0, 1
        self.line += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


def _hunks_of(text: str, ranges: list[tuple[int, int]], filename: str) -> list[Hunk] | None:
    """Parse every range of `text` (whole top-level statements) with real line numbers.
    None when one does not parse (a range boundary fell inside a multi-line construct)."""
    counter = _LineCounter(text)
    hunks: list[Hunk] = []
    for start, end in ranges:
        chunk = text[start:end]
        first = counter.line_of(start)
        last = first - 1 if not chunk else first + chunk.count("\n") - (1 if chunk.endswith("\n") else 0)
        hunks.append(Hunk(first=first, last=last, text=chunk, statements=[]))
    # Nearby hunks are parsed together, separated by as many newlines as the text has
    # between them; a far one alone, its line numbers moved afterwards. (A newline costs
    # the tokenizer little, ast.increment_lineno a Python step per syntax node.)
    group: list[Hunk] = []
    size = 0  # lines in the group's hunks
    for hunk in hunks:
        if group and hunk.first - group[-1].last > 200 * max(size, 1):
            if not _parse_group(group, size, filename):
                return None
            group, size = [], 0
        group.append(hunk)
        size += hunk.last - hunk.first + 1
    if group and not _parse_group(group, size, filename):
        return None
    return hunks


def _parse_group(group: list[Hunk], size: int, filename: str) -> bool:
    lead = group[0].first - 1
    padded = lead < 200 * max(size, 1)
    pieces = ["\n" * lead] if padded else []
    line = group[0].first
    for hunk in group:
        if hunk.text:
            pieces.append("\n" * (hunk.first - line))
            pieces.append(hunk.text if hunk.text.endswith("\n") else hunk.text + "\n")
            line = hunk.last + 1
    try:
        tree = ast.parse("".join(pieces), filename=filename)
    except (SyntaxError, ValueError):
        return False
    if not padded and lead:
        ast.increment_lineno(tree, lead)
    lasts = [hunk.last for hunk in group]
    for node in tree.body:
        index = bisect.bisect_left(lasts, node.end_lineno or node.lineno)
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])
        if index >= len(group) or first < group[index].first:
            return False  # a statement across two ranges: they did not hold whole statements
        group[index].statements.append(node)
    return True


def diff_texts(old: str, new: str, filename: str, attempts: int = 4) -> TextDiff | None:
    """The changed top-level statements of `old` -> `new`; None when the texts are equal.

    Raises SyntaxError (from the whole new file) when the new text does not parse."""
    if old == new:
        return None
    spans = _statement_spans(old, new, find_hunks(old, new))
    for _ in range(attempts):
        old_hunks = _hunks_of(old, [(s.o_start, s.o_end) for s in spans], filename)
        new_hunks = _hunks_of(new, [(s.n_start, s.n_end) for s in spans], filename) if old_hunks is not None else None
        if old_hunks is not None and new_hunks is not None:
            whole = len(spans) == 1 and spans[0].o_start == 0 and spans[0].o_end == len(old) and spans[0].n_end == len(new)
            return TextDiff(old=Chunk(old_hunks), new=Chunk(new_hunks), whole_file=whole)
        # a boundary fell inside a multi-line construct (a column-0 line in a string):
        # every span takes one more statement each way, and neighbours that meet merge
        for span in spans:
            before, after = span.before, span.after
            span.o_start = widen_up(old, _previous_line(old, span.o_start)) if span.o_start > 0 else 0
            span.n_start = span.o_start + before
            next_line = _line_end(old, span.o_end + 1) if span.o_end < len(old) else len(old)
            span.o_end = widen_down(old, next_line, span.o_start)
            span.n_end = span.o_end + after
        spans = _normalised(old, new, spans)
    return whole_file_diff(old, new, filename)


def whole_file_diff(old: str, new: str, filename: str) -> TextDiff:
    new_tree = ast.parse(new, filename=filename)  # SyntaxError propagates: the caller reports it
    try:
        old_statements = list(ast.parse(old, filename=filename).body)
    except SyntaxError:
        old_statements = []
    return TextDiff(
        old=Chunk([Hunk(1, _count_lines(old), old, old_statements)]),
        new=Chunk([Hunk(1, _count_lines(new), new, list(new_tree.body))]),
        whole_file=True,
    )


def _count_lines(text: str) -> int:
    return text.count("\n") + (0 if text.endswith("\n") or not text else 1)


def statement_text(chunk: Chunk, node: ast.stmt, include_decorators: bool = True) -> str:
    """The exact source lines of a statement in a chunk (decorators included)."""
    first = node.lineno
    decorators = getattr(node, "decorator_list", None)
    if include_decorators and decorators:
        first = min(first, min(d.lineno for d in decorators))
    return chunk.source(first, node.end_lineno or node.lineno)
