"""Compiling new source for one module: in the right scope, at the right lines, without side effects.

New definitions are executed with the module's real globals but a scratch namespace for
locals, so nothing in the module changes until the commit binds what was produced.
Definitions nested in classes are compiled inside synthetic class statements with the
same names (so `__qualname__` and zero-argument `super()` come out right), whose
namespace is a copy of the real class's (so defaults and decorators that name class
attributes resolve). Decorators of definitions that already exist are replaced by an
identity function: the existing decorated object stays, only its function gets new code,
and decorators with side effects (route registration...) do not run twice.
"""

from __future__ import annotations

import __future__ as future_module
import ast
import functools
import textwrap
import tokenize
import types
from typing import Any, Iterator

from livefix.errors import LivefixError

RECORD = "__livefix_record__"
STAND_IN = "__livefix_class__"
TARGET = "livefix_target"
IMPORT = "__livefix_import__"
LIVE = "__livefix_live__"  # in a patching class body: the live class's own namespace
HELPER_NAMES = frozenset({RECORD, STAND_IN, IMPORT, LIVE})


def future_flags(text: str | None) -> int:
    """Compiler flags for the `from __future__` imports of a module's source.

    They can only stand in the module's header: after the docstring, comments, blank lines
    and other future imports (CPython's future.c). So only the header is tokenized, its
    lines read as the tokenizer asks for them, up to the first other statement: the cost
    does not grow with the module, and a docstring or a later string that mentions a future
    import is not one. Text that does not tokenize there gives 0 (it would not compile)."""
    if not text:
        return 0
    flags = 0
    try:
        for index, statement in enumerate(_header_statements(text)):
            if index == 0 and _is_docstring(statement):
                continue
            names = _future_names(statement)
            if names is None:
                break
            for name in names:
                if name in future_module.all_feature_names:
                    flags |= getattr(future_module, name).compiler_flag
    except (tokenize.TokenError, SyntaxError, ValueError):
        return 0
    return flags


def _header_statements(text: str) -> Iterator[list[tokenize.TokenInfo]]:
    """The module's simple statements, each as its tokens without comments and line breaks,
    tokenized lazily up to the first token that cannot be part of the header."""
    if text.startswith("\ufeff"):  # a BOM left by a decoder that kept it
        text = text[1:]
    lines = _lines(text)
    statement: list[tokenize.TokenInfo] = []
    for token in tokenize.generate_tokens(functools.partial(next, lines, "")):
        if token.type in (tokenize.COMMENT, tokenize.NL):
            continue
        if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER) or (token.type == tokenize.OP and token.string == ";"):
            if statement:
                yield statement
                statement = []
            if token.type == tokenize.ENDMARKER:
                return
            continue
        statement.append(token)
        if not _may_be_header(statement):
            yield statement  # not a docstring or a future import: the header ends here
            return


def _may_be_header(statement: list[tokenize.TokenInfo]) -> bool:
    """Can a statement starting with these tokens be a docstring or a future import? Asked
    at each token, so tokenizing stops in the first line of code (an error there is no
    concern of the header's)."""
    first = statement[0]
    if first.type == tokenize.STRING or (first.type == tokenize.OP and first.string == "("):
        last = statement[-1]
        return last.type == tokenize.STRING or (last.type == tokenize.OP and last.string in ("(", ")"))
    words = ["from", "__future__", "import"]
    return all(token.type == tokenize.NAME and token.string == word for token, word in zip(statement, words))


def _lines(text: str) -> Iterator[str]:
    start = 0
    while start < len(text):
        end = text.find("\n", start) + 1 or len(text)
        yield text[start:end]
        start = end


def _is_docstring(statement: list[tokenize.TokenInfo]) -> bool:
    """A statement that is only a string literal (adjacent ones concatenated, parentheses
    allowed): bytes and f-strings are not docstrings."""
    strings = [token for token in statement if token.type == tokenize.STRING]
    parentheses = [token for token in statement if token.type == tokenize.OP and token.string in ("(", ")")]
    if not strings or len(strings) + len(parentheses) != len(statement):
        return False
    prefixes = (token.string[: token.string.index(token.string[-1])].lower() for token in strings)
    return not any("b" in prefix or "f" in prefix for prefix in prefixes)


def _future_names(statement: list[tokenize.TokenInfo]) -> list[str] | None:
    """The features a `from __future__ import ...` statement names (aliases left out), or
    None for any other statement."""
    words = [token.string for token in statement[:3]]
    if words != ["from", "__future__", "import"] or any(token.type != tokenize.NAME for token in statement[:3]):
        return None
    names: list[str] = []
    after_as = False
    for token in statement[3:]:
        if token.type == tokenize.NAME and token.string == "as":
            after_as = True
        elif token.type == tokenize.NAME:
            if not after_as:
                names.append(token.string)
            after_as = False
        elif not (token.type == tokenize.OP and token.string in ("(", ")", ",")):
            return None
    return names


def parse(source: str, filename: str, first_line: int = 1, what: str = "source") -> ast.Module:
    """Parse `source` whose first line is line `first_line` of `filename`; a syntax error
    becomes LivefixError('syntax') with the line and column in the real file."""
    if not isinstance(source, str):
        raise LivefixError("invalid", f"the new {what} must be text, not {type(source).__name__}")
    if "\x00" in source:
        raise LivefixError("invalid", f"the new {what} contains NUL bytes: not Python source")
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as error:
        line = (error.lineno or 1) + first_line - 1
        raise LivefixError(
            "syntax",
            f"{filename}:{line}:{error.offset or 0}: {error.msg}",
            path=filename,
            line=line,
            column=error.offset or 0,
            text=(error.text or "").rstrip("\n"),
        ) from None
    except (ValueError, RecursionError, MemoryError) as error:
        raise LivefixError("syntax", f"{filename}: cannot parse the new {what}: {error}", path=filename) from None
    if first_line != 1:
        ast.increment_lineno(tree, first_line - 1)
    return tree


def dedent_definition(source: str) -> str:
    """The definition's text with its common indentation removed (a method copied from a class)."""
    if source[:1] not in (" ", "\t", "\n", "\r", "\f"):
        return source  # starts at column 0: nothing common to remove (the usual, top-level case)
    return textwrap.dedent(source.expandtabs(8) if source.startswith("\t") else source)


class Recorder:
    """Collects the plain function of each transformed definition, by statement index.

    Each transformed `def` gets `@__livefix_record__(i)` as its innermost decorator (placed
    on the definition's first line, so line numbers do not move): it stores the function
    before any other decorator wraps it, and returns it unchanged."""

    def __init__(self) -> None:
        self.functions: dict[int, Any] = {}

    def __call__(self, index: int) -> Any:
        def record(function: Any) -> Any:
            self.functions[index] = function
            return function

        return record


class BuiltClass:
    """What a patching class statement produced: its evaluated bases, keywords and namespace."""

    def __init__(self, name: str, bases: tuple[Any, ...], namespace: dict[str, Any], keywords: dict[str, Any]) -> None:
        self.name = name
        self.bases = bases
        self.namespace = namespace
        self.keywords = keywords


class ClassBodyNamespace(dict):  # type: ignore[type-arg]
    """A class body's namespace that falls back to the change's scratch namespace.

    CPython's LOAD_NAME indexes a non-dict-exact namespace with `[]`, so `__missing__`
    is consulted before the module's globals."""

    def __init__(self, scratch: dict[str, Any], initial: dict[str, Any]) -> None:
        super().__init__(initial)
        self._scratch = scratch

    def __missing__(self, key: str) -> Any:
        if key in self._scratch and key not in HELPER_NAMES:
            return self._scratch[key]
        raise KeyError(key)


class StandInClass:
    """The metaclass of class statements that patch an existing class: prepares a fresh
    namespace and returns what the body produced instead of building a new class."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.scratch: dict[str, Any] = {}
        self.targets: list[type] = []
        self.built: dict[int, BuiltClass] = {}

    def add_target(self, cls: type) -> int:
        self.targets.append(cls)
        return len(self.targets) - 1

    def __prepare__(self, name: str, bases: tuple[Any, ...], **kwargs: Any) -> dict[str, Any]:
        # Class bodies look names up in their own namespace, then globals: never in the
        # scratch locals. So the helpers the transformed body calls are put here, and
        # names the same change redefined (a function a class attribute calls) come from
        # the scratch namespace before the module's globals.
        helpers: dict[str, Any] = {RECORD: self.recorder, STAND_IN: self}
        if TARGET in kwargs:
            helpers[LIVE] = self.targets[kwargs[TARGET]].__dict__
        return ClassBodyNamespace(self.scratch, helpers)

    def __call__(self, name: str, bases: tuple[Any, ...], namespace: dict[str, Any], **kwargs: Any) -> type:
        index = kwargs.pop(TARGET)
        cell = namespace.get("__classcell__")
        if cell is not None:
            cell.cell_contents = self.targets[index]  # zero-argument super() in new methods sees the real class
        self.built[index] = BuiltClass(name, bases, namespace, kwargs)
        # The statement binds the existing class: later statements of the same change (a
        # subclass's bases, a registry that names the class) see the class that stays.
        return self.targets[index]


def first_line_node(node: ast.AST) -> ast.AST:
    decorators = getattr(node, "decorator_list", None)
    return min(decorators, key=lambda d: d.lineno) if decorators else node


def record_definition(node: Any, index: int, keep_decorators: bool) -> None:
    """Give a def the recorder as innermost decorator; drop its own decorators unless kept."""
    anchor = first_line_node(node)
    call = ast.Call(func=ast.Name(id=RECORD, ctx=ast.Load()), args=[ast.Constant(index)], keywords=[])
    for part in (call, call.func, call.args[0]):
        ast.copy_location(part, anchor)
    kept = list(node.decorator_list) if keep_decorators else []
    node.decorator_list = kept + [call]


def patch_class_statement(node: ast.ClassDef, target_index: int) -> None:
    """Make a class statement produce a BuiltClass for the existing class at target_index."""
    keywords = [k for k in node.keywords if k.arg != "metaclass"]
    for keyword in (
        ast.keyword(arg="metaclass", value=ast.Name(id=STAND_IN, ctx=ast.Load())),
        ast.keyword(arg=TARGET, value=ast.Constant(target_index)),
    ):
        ast.copy_location(keyword, node)
        ast.copy_location(keyword.value, node)
        keywords.append(keyword)
    node.keywords = keywords
    node.decorator_list = []


def compile_module_ast(tree: ast.Module, filename: str, flags: int) -> types.CodeType:
    try:
        return compile(tree, filename, "exec", flags=flags, dont_inherit=True)
    except SyntaxError as error:  # compile-time errors ast.parse lets through (e.g. 'return' outside function)
        raise LivefixError(
            "syntax",
            f"{filename}:{error.lineno}:{error.offset or 0}: {error.msg}",
            path=filename,
            line=error.lineno,
            column=error.offset or 0,
            text=(error.text or "").rstrip("\n"),
        ) from None


def run_isolated(code: types.CodeType, module_globals: dict[str, Any], scratch: dict[str, Any], what: str) -> None:
    """Execute new module-level code with the module's globals and scratch locals."""
    try:
        exec(code, module_globals, scratch)
    except LivefixError:
        raise
    except Exception as error:
        raise LivefixError(
            "failed",
            f"executing the new {what} raised {type(error).__name__}: {error}; nothing was changed",
            exception=type(error).__name__,
        ) from None
