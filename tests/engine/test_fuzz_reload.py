"""Seeded differential test of reload: random modules edited on disk at random, each reload
compared with the ground truth, the edited file imported fresh.

A seed writes a module (functions, decorators defined in it and used on functions and
methods, lru caches, classes with static and class methods, properties, nested classes and
subclasses using `super()`, `if TYPE_CHECKING:` / `if True:` / `try: ... except ImportError`
blocks, module-level lambdas, strings and docstrings holding column-0 lines that look like
code, decorators over several lines, comments and blank lines), then edits it step by step
(lines inserted and deleted anywhere, constants changed in bodies, defaults, decorator
arguments, class attributes and docstrings, a line added to a body, a definition cut and
pasted, one added, one nothing calls deleted, several at once) and reloads it in place.

After each reload every function reachable from the live module (module functions, methods,
static and class methods, property accessors, what `__wrapped__` and closures hold) is
compared with the same one of the fresh import: the result of a call where the generator
knows one, the first line, the lines of its instructions, the code itself. Definitions that
still exist keep their identity (decorators unchanged), module and class state whose
statement did not change keep their live (mutated) object, and `modified_modules` has
nothing left to report. Every third step is rolled back (the module must be the previous
step's, object for object, and run its code) and reloaded again. The same runs with the
engine attached late: the module imported, then edited, before `Engine().install()`.

A failure names the seed, the step, the edits and the diff of the file; replay one seed
with `-k 'install-17]'` (or `'late-104]'`). What the seeds found is kept below, reduced to a
few lines each (`test_reduced_case`), so that it stays tested whatever the generator becomes.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import importlib
import itertools
import random
import re
import sys
import types
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from livefix.engine import Engine
from livefix.errors import LivefixError

INSTALL_SEEDS = range(60)
LATE_SEEDS = range(100, 124)
STEPS = 8
ROLLBACK_EVERY = 3
ARGUMENT = 3  # what every generated function taking `x` is called with
NUMBER = re.compile(r"\b\d{5}\b")  # every number the generator writes has five digits, and is unique
MARKER = "mutated-live"

# Kinds of numbers an edit before a late attach may change: the engine compares what runs
# with the file's definitions (code, docstrings), never with what statements ran (README,
# "Arriving late"). Module constants and strings, class attributes, defaults and decorator
# arguments are values those statements made: edited before the attach, nothing tells.
LATE_KINDS = frozenset({"body", "wrapper body", "docstring", "class docstring", "module docstring", "comment", "dead branch", "lambda"})


# -- the generator ---------------------------------------------------------------------


class Maker:
    """Writes a random module. Every number in it is unique and five digits long, so an edit
    can name one to change; what each one is (a body constant, a default...) is recorded."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.last = 10000
        self.kinds: dict[str, str] = {}
        self.ids = itertools.count()
        self.functions: list[str] = []  # callable as name(x): other functions may call them
        self.constants: list[str] = []  # int constants functions may read
        self.decorators: list[str] = []
        self.factories: list[str] = []
        self.classes: list[tuple[str, str]] = []  # (class, its method taking (self, x))

    def number(self, kind: str) -> str:
        self.last += self.rng.randint(1, 40)
        token = str(self.last)
        self.kinds[token] = kind
        return token

    def noise(self, indent: str) -> list[str]:
        if self.rng.random() < 0.55:
            return []
        choices = ["", f"{indent}# a note", "# def commented_out(x):", "#     return x", f"{indent}# see {self.number('comment')}"]
        return [self.rng.choice(choices) for _ in range(self.rng.randint(1, 2))]

    def docstring(self, indent: str, kind: str) -> list[str]:
        if self.rng.random() < 0.5:
            return [f'{indent}"""Doc {self.number(kind)}."""']
        return [f'{indent}"""Doc {self.number(kind)}.', "", "def fake_in_doc(x):", f"    return {self.number(kind)}",
                "class FakeInDoc:", f'{indent}"""']

    def terms(self, first: str) -> str:
        terms = [first]
        if self.constants and self.rng.random() < 0.5:
            terms.append(self.rng.choice(self.constants))
        if self.functions and self.rng.random() < 0.4:
            terms.append(f"{self.rng.choice(self.functions)}(x)")  # an earlier one: no call cycles
        return " + ".join(terms)

    # -- top-level statements --

    def decorator(self) -> list[str]:
        name = f"deco{next(self.ids)}"
        self.decorators.append(name)
        return [f"def {name}(fn):", *(self.docstring("    ", "docstring") if self.rng.random() < 0.3 else []),
                "    @functools.wraps(fn)", "    def wrapper(*args, **kwargs):",
                f"        return fn(*args, **kwargs) + {self.number('wrapper body')}", *self.noise("    "), "    return wrapper"]

    def factory(self) -> list[str]:
        name = f"add{next(self.ids)}"
        self.factories.append(name)
        return [f"def {name}(amount):", "    def decorate(fn):", "        @functools.wraps(fn)",
                "        def inner(*args, **kwargs):",
                f"            return fn(*args, **kwargs) + amount * {self.number('wrapper body')}",
                "        return inner", *self.noise("    "), "    return decorate"]

    def plain(self) -> list[str]:
        name = f"f{next(self.ids)}"
        default = self.rng.random() < 0.3
        lines = [f"def {name}(x, k={self.number('default')}):" if default else f"def {name}(x):"]
        if self.rng.random() < 0.4:
            lines += self.docstring("    ", "docstring")
        lines += [*self.noise("    "), f"    y = x + {self.number('body')}", *self.noise("    ")]
        lines.append(f"    return {self.terms('y')}{' + k' if default else ''}")
        self.functions.append(name)
        return lines

    def decorated(self) -> list[str]:
        name = f"g{next(self.ids)}"
        options = ["cache", "cache-lines"] + ["deco"] * bool(self.decorators) + ["factory", "factory-lines"] * bool(self.factories)
        if self.decorators and self.factories:
            options.append("stacked")
        choice = self.rng.choice(options)
        lines: list[str] = []
        if choice in ("deco", "stacked"):
            lines.append(f"@{self.rng.choice(self.decorators)}")
        if choice in ("factory", "stacked"):
            lines.append(f"@{self.rng.choice(self.factories)}({self.number('decorator argument')})")
        if choice == "factory-lines":
            lines += [f"@{self.rng.choice(self.factories)}(", f"    {self.number('decorator argument')},", ")"]
        if choice == "cache":
            lines.append("@functools.lru_cache(maxsize=None)")
        if choice == "cache-lines":
            lines += ["@functools.lru_cache(", "    maxsize=128,", ")"]
        lines += [*self.noise(""), f"def {name}(x):"]
        if self.rng.random() < 0.3:
            lines += self.docstring("    ", "docstring")
        if choice.startswith("cache"):  # a cached function reads nothing else: its cache holds its own results only
            lines.append(f"    return x * {self.number('body')}")
        else:
            lines.append(f"    return {self.terms('x * ' + self.number('body'))}")
        self.functions.append(name)
        return lines

    def closure(self) -> list[str]:
        name = f"outer{next(self.ids)}"
        self.functions.append(name)
        return [f"def {name}(x):", "    def inner(y):", f"        return y * {self.number('body')}", *self.noise("    "),
                f"    scale = lambda v: v + {self.number('body')}", f"    return scale(inner(x)) + {self.number('body')}"]

    def lambda_(self) -> list[str]:
        name = f"lam{next(self.ids)}"
        line = f"{name} = lambda x: {self.terms('x * ' + self.number('lambda'))}"
        self.functions.append(name)
        return [line]

    def constant(self) -> list[str]:
        name = f"K{next(self.ids)}"
        self.constants.append(name)
        return [f"{name} = {self.number('module constant')}"]

    def mutable(self) -> list[str]:
        name = f"REG{next(self.ids)}"
        if self.rng.random() < 0.5:
            return [f"{name} = [{self.number('module constant')}, {self.number('module constant')}]"]
        return [f"{name} = {{", f'    "a": {self.number("module constant")},', "    # inside the literal",
                f'    "b": {self.number("module constant")},', "}"]

    def template(self) -> list[str]:
        index = next(self.ids)
        self.functions.append(f"tl{index}")
        return [f'TEMPLATE{index} = """', f"def fake{index}(x):", f"    return {self.number('string')}", "",
                f"class Fake{index}:", "    pass", '"""', "", "",
                f"def tl{index}(x):", f"    return len(TEMPLATE{index}) + x"]

    def klass(self) -> list[str]:
        index = next(self.ids)
        name = f"C{index}"
        lines = [f"class {name}:"]
        if self.rng.random() < 0.5:
            lines += self.docstring("    ", "class docstring")
        lines.append(f"    ATTR = {self.number('class attribute')}")
        if self.rng.random() < 0.5:
            lines.append(f"    ITEMS = [{self.number('class attribute')}]")
        members = [[f"    def m{index}(self, x):", *(self.docstring("        ", "docstring") if self.rng.random() < 0.3 else []),
                    *self.noise("        "), f"        return x + self.ATTR + {self.number('body')}"]]
        if self.rng.random() < 0.5:
            members.append(["    @staticmethod", f"    def s{index}(x):", f"        return x * {self.number('body')}"])
        if self.rng.random() < 0.5:
            members.append(["    @classmethod", f"    def c{index}(cls, x):", f"        return cls.ATTR - x + {self.number('body')}"])
        if self.rng.random() < 0.5:
            prop = ["    @property", f"    def p{index}(self):", f"        return self.ATTR * 2 + {self.number('body')}"]
            if self.rng.random() < 0.5:
                prop += ["", f"    @p{index}.setter", f"    def p{index}(self, value):", f"        self._p = value + {self.number('body')}"]
            members.append(prop)
        if self.decorators and self.rng.random() < 0.4:
            members.append([f"    @{self.rng.choice(self.decorators)}", f"    def d{index}(self, x):", f"        return x - {self.number('body')}"])
        if self.rng.random() < 0.4:
            members.append([f"    class Inner{index}:", f"        VALUE = {self.number('class attribute')}", "",
                            "        def im(self, x):", f"            return x + self.VALUE + {self.number('body')}"])
        self.rng.shuffle(members)
        for member in members:
            lines += ["", *self.noise("    "), *member]
        self.classes.append((name, f"m{index}"))
        return lines

    def subclass(self) -> list[str]:
        base, method = self.rng.choice(self.classes)
        return [f"class D{next(self.ids)}({base}):", f"    def {method}(self, x):",
                f"        return super().{method}(x) + {self.number('body')}"]

    def type_checking(self) -> list[str]:
        index = next(self.ids)
        self.functions.append(f"tc{index}")
        return ["if TYPE_CHECKING:", "    from collections import OrderedDict", "",
                f"    def tc{index}(x) -> int: ...", "else:", f"    def tc{index}(x):", f"        return x + {self.number('body')}"]

    def if_true(self) -> list[str]:
        index = next(self.ids)
        self.functions.append(f"t{index}")
        return ["if True:", f"    def t{index}(x):", f"        return x * {self.number('body')}", "",
                f"    T{index} = {self.number('module constant')}", "else:",
                f"    def t{index}(x):", f"        return -{self.number('dead branch')}"]

    def try_missing(self) -> list[str]:
        index = next(self.ids)
        self.functions.append(f"fallback{index}")
        return ["try:", f"    import lf_fuzz_missing_{index}", "except ImportError:", f"    lf_fuzz_missing_{index} = None", "",
                f"    def fallback{index}(x):", f"        return x + {self.number('body')}"]

    def try_present(self) -> list[str]:
        index = next(self.ids)
        self.functions.append(f"have{index}")
        return ["try:", f"    from functools import reduce as reduce{index}", "except ImportError:  # not taken",
                f"    def reduce{index}(fn, seq):", f"        return {self.number('dead branch')}", "else:",
                f"    def have{index}(x):", f"        return x + {self.number('body')}"]

    def module(self) -> str:
        lines = [f'"""Module {self.number("module docstring")} of the fuzz.', "", "def fake_in_module_doc():",
                 f"    return {self.number('module docstring')}", '"""', "import functools", "from typing import TYPE_CHECKING"]
        blocks = [self.decorator() for _ in range(self.rng.randint(1, 2))]
        if self.rng.random() < 0.7:
            blocks.append(self.factory())
        makers: list[tuple[Callable[[], list[str]], int]] = [
            (self.plain, 6), (self.decorated, 4), (self.klass, 4), (self.constant, 3), (self.mutable, 2),
            (self.lambda_, 2), (self.closure, 2), (self.template, 1), (self.type_checking, 1), (self.if_true, 1),
            (self.try_missing, 1), (self.try_present, 1), (self.subclass, 1),
        ]
        for _ in range(self.rng.randint(12, 20)):
            make = self.rng.choices([m for m, _ in makers], [w for _, w in makers])[0]
            if make == self.subclass and not self.classes:
                make = self.klass
            blocks.append(make())
        for block in blocks:
            lines += ["", *self.noise(""), "", *block]
        return "\n".join(lines) + "\n"


# -- edits ---------------------------------------------------------------------------------


def first_line(node: ast.AST) -> int:
    return min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])  # type: ignore[attr-defined]


def definitions(tree: ast.Module) -> Iterator[tuple[str, ast.AST]]:
    """(qualname, node) of every def and class, in any block."""

    def walk(body: list[ast.stmt], prefix: str) -> Iterator[tuple[str, ast.AST]]:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                yield prefix + node.name, node
                yield from walk(node.body, prefix + node.name + ("." if isinstance(node, ast.ClassDef) else ".<locals>."))
            elif isinstance(node, (ast.If, ast.Try)):
                for branch in branch_lists(node):
                    yield from walk(branch, prefix)

    yield from walk(tree.body, "")


def branch_lists(node: ast.stmt) -> list[list[ast.stmt]]:
    if isinstance(node, ast.If):
        return [node.body, node.orelse]
    if isinstance(node, ast.Try):
        return [node.body, *[h.body for h in node.handlers], node.orelse, node.finalbody]
    return []


class Editor:
    """Random edits of a module's text that keep it valid (checked by importing it fresh)."""

    def __init__(self, rng: random.Random, maker: Maker, late: bool = False) -> None:
        self.rng = rng
        self.maker = maker
        self.late = late  # before a late attach: only what the engine can tell from the code

    def kinds(self) -> list[tuple[str, int]]:
        if self.late:
            return [("insert", 3), ("delete", 1), ("number", 4), ("body line", 2), ("move", 2), ("add", 2), ("docstring", 1)]
        return [("insert", 3), ("delete", 2), ("number", 4), ("body line", 2), ("move", 2), ("add", 2), ("remove", 1),
                ("class attribute", 1), ("docstring", 1), ("module docstring", 1)]

    def one(self, text: str) -> tuple[str, str] | None:
        names, weights = zip(*self.kinds())
        kind = self.rng.choices(names, weights)[0]
        lines = text.split("\n")
        tree = ast.parse(text)
        if kind == "insert":
            return self.insert(lines, tree)
        if kind == "delete":
            return self.delete(lines, tree)
        if kind == "number":
            kinds = LATE_KINDS if self.late else None
            return self.change_number(text, kinds)
        if kind == "class attribute":
            return self.change_number(text, {"class attribute"})
        if kind == "docstring":
            return self.change_number(text, {"docstring", "class docstring"})
        if kind == "module docstring":
            return self.change_number(text, {"module docstring"})
        if kind == "body line":
            return self.body_line(lines, tree)
        if kind == "move":
            return self.move(lines, tree)
        if kind == "add":
            return self.add(lines, tree)
        return self.remove(lines, tree)

    def statement_lines(self, tree: ast.Module) -> set[int]:
        """Lines strictly inside module-level and class-level statements other than
        definitions (a multi-line string or literal): a line inserted there changes a value."""
        inside: set[int] = set()
        nodes = list(tree.body) + [n for _, c in definitions(tree) if isinstance(c, ast.ClassDef) for n in c.body]
        for node in nodes:
            if not isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.If, ast.Try)):
                inside.update(range(node.lineno + 1, (node.end_lineno or node.lineno) + 1))
        return inside

    def insert(self, lines: list[str], tree: ast.Module) -> tuple[str, str] | None:
        index = self.rng.randrange(len(lines))
        if self.late and index + 1 in self.statement_lines(tree):
            return None
        content = self.rng.choice(["", "# inserted", "        # inserted, indented", "# def inserted_fake(x):", "#     return x"])
        lines = lines[:index] + [content] + lines[index:]
        return "\n".join(lines), f"insert {content!r} as line {index + 1}"

    def delete(self, lines: list[str], tree: ast.Module) -> tuple[str, str] | None:
        inside = self.statement_lines(tree) if self.late else set()
        candidates = [i for i, line in enumerate(lines[:-1]) if (not line.strip() or line.lstrip().startswith("#")) and i + 1 not in inside]
        if not candidates:
            return None
        index = self.rng.choice(candidates)
        removed = lines.pop(index)
        return "\n".join(lines), f"delete line {index + 1} ({removed!r})"

    def change_number(self, text: str, kinds: set[str] | frozenset[str] | None) -> tuple[str, str] | None:
        tokens = [t for t in NUMBER.findall(text) if t in self.maker.kinds and (kinds is None or self.maker.kinds[t] in kinds)]
        if not tokens:
            return None
        token = self.rng.choice(tokens)
        kind = self.maker.kinds[token]
        new = self.maker.number(kind)
        line = text[: text.index(token)].count("\n") + 1
        return re.sub(rf"\b{token}\b", new, text, count=1), f"change {token} -> {new} ({kind}, line {line})"

    def body_line(self, lines: list[str], tree: ast.Module) -> tuple[str, str] | None:
        candidates = [(q, n) for q, n in definitions(tree) if isinstance(n, ast.FunctionDef) and n.body[0].lineno > n.lineno]
        qualname, node = self.rng.choice(candidates)
        first = node.body[0]
        docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)
        at = first.end_lineno if docstring else first.lineno - 1  # 0-based index of the new line
        number = self.maker.number("body")
        names = [a.arg for a in node.args.args]
        content = " " * first.col_offset + (f"x = x + {number}" if "x" in names else f"_pad = {number}")
        lines = lines[:at] + [content] + lines[at:]
        return "\n".join(lines), f"add {content.strip()!r} to the body of {qualname} as line {at + 1}"

    def top_level(self, tree: ast.Module) -> list[ast.stmt]:
        """Statements that may move: not the module docstring, not the imports."""
        return [n for n in tree.body[1:] if not isinstance(n, (ast.Import, ast.ImportFrom))]

    def move(self, lines: list[str], tree: ast.Module) -> tuple[str, str] | None:
        candidates = self.top_level(tree)
        node = self.rng.choice(candidates)
        start, end = first_line(node) - 1, node.end_lineno or node.lineno
        block = lines[start:end]
        rest = lines[:start] + lines[end:]
        rest_tree = ast.parse("\n".join(rest))
        targets = [first_line(n) - 1 for n in rest_tree.body[1:]] + [len(rest) - 1]
        if self.rng.random() < 0.05:
            targets.append(0)  # above the module docstring: it stops being one
        at = self.rng.choice(targets)
        moved = rest[:at] + block + [""] + rest[at:]
        where = "the end" if at == len(rest) - 1 else f"line {at + 1}"
        return "\n".join(moved), f"move {describe(node)} (lines {start + 1}-{end}) to {where} of the rest"

    def add(self, lines: list[str], tree: ast.Module) -> tuple[str, str] | None:
        number = self.maker.number("body")
        name = f"new{number}"
        classes = [(q, n) for q, n in definitions(tree) if isinstance(n, ast.ClassDef)]
        if classes and self.rng.random() < 0.4:
            qualname, node = self.rng.choice(classes)
            indent = " " * (node.col_offset + 4)
            at = node.end_lineno or node.lineno
            block = ["", f"{indent}def {name}(self, x):", f"{indent}    return x + {number}"]
            return "\n".join(lines[:at] + block + lines[at:]), f"add method {qualname}.{name} after line {at}"
        calls = f" + {self.rng.choice(self.maker.functions)}(x)" if self.maker.functions and self.rng.random() < 0.5 else ""
        block = [f"def {name}(x):", f"    return x + {number}{calls}", ""]
        targets = [first_line(n) - 1 for n in tree.body[1:]] + [len(lines) - 1]
        at = self.rng.choice(targets)
        return "\n".join(lines[:at] + block + lines[at:]), f"add function {name} as line {at + 1}"

    def remove(self, lines: list[str], tree: ast.Module) -> tuple[str, str] | None:
        candidates = [(q, n) for q, n in definitions(tree) if isinstance(n, ast.FunctionDef) and "<locals>" not in q]
        self.rng.shuffle(candidates)
        for qualname, node in candidates:
            used = any(
                (isinstance(other, ast.Name) and other.id == node.name) or (isinstance(other, ast.Attribute) and other.attr == node.name)
                for other in ast.walk(tree) if not _inside(other, node)
            )
            if not used:
                start, end = first_line(node) - 1, node.end_lineno or node.lineno
                return "\n".join(lines[:start] + lines[end:]), f"delete {qualname} (lines {start + 1}-{end})"
        return None


def _inside(node: ast.AST, container: ast.AST) -> bool:
    if not hasattr(node, "lineno"):
        return False
    return first_line(container) <= node.lineno <= (container.end_lineno or 0)  # type: ignore[attr-defined]


def describe(node: ast.stmt) -> str:
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return node.name
    names: list[str] = []
    for inner in ast.walk(node):
        if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store):
            names.append(inner.id)
        elif isinstance(inner, ast.alias):
            names.append(inner.asname or inner.name)
        elif isinstance(inner, (ast.FunctionDef, ast.ClassDef)):
            names.append(inner.name)
    return f"{type(node).__name__.lower()} block of {', '.join(dict.fromkeys(names)) or '?'}"


# -- the ground truth and what the live module runs --------------------------------------


def fresh(text: str, path: str, name: str) -> dict[str, Any]:
    """The module imported fresh from `text` (under another name)."""
    namespace: dict[str, Any] = {"__name__": name, "__file__": path, "__doc__": None, "__builtins__": builtins}
    exec(compile(text, path, "exec", dont_inherit=True), namespace)
    return namespace


def reachable(namespace: dict[str, Any], module_name: str, path: str) -> dict[str, types.FunctionType]:
    """Every function of the file reachable from a module's namespace, by how it is reached."""
    found: dict[str, types.FunctionType] = {}

    def visit(obj: Any, where: str, depth: int) -> None:
        if depth > 8 or obj is None:
            return
        if isinstance(obj, types.FunctionType):
            if obj.__code__.co_filename != path or where in found:
                return
            found[where] = obj
            if "__wrapped__" in obj.__dict__:
                visit(obj.__dict__["__wrapped__"], where + ".__wrapped__", depth + 1)
            for name, cell in zip(obj.__code__.co_freevars, obj.__closure__ or ()):
                try:
                    contents = cell.cell_contents
                except ValueError:
                    continue
                if isinstance(contents, types.FunctionType):
                    visit(contents, f"{where}<{name}>", depth + 1)
        elif isinstance(obj, (staticmethod, classmethod)):
            visit(obj.__func__, where, depth + 1)
        elif isinstance(obj, property):
            for accessor in ("fget", "fset", "fdel"):
                visit(getattr(obj, accessor), f"{where}.{accessor}", depth + 1)
        elif isinstance(obj, type):
            if obj.__module__ == module_name:
                for key, value in list(vars(obj).items()):
                    visit(value, f"{where}.{key}", depth + 1)
        elif hasattr(obj, "cache_info"):  # an lru_cache wrapper
            visit(obj.__wrapped__, where + ".__wrapped__", depth + 1)

    for key, value in list(namespace.items()):
        if not key.startswith("__"):
            visit(value, key, 0)
    return found


def members(namespace: dict[str, Any], module_name: str) -> dict[str, Any]:
    """Module names and class members (nested classes too), by qualified name."""
    found: dict[str, Any] = {}

    def visit_class(cls: type, prefix: str, depth: int) -> None:
        for key, value in list(vars(cls).items()):
            if not key.startswith("__"):
                found[prefix + key] = value
                if isinstance(value, type) and value.__module__ == module_name and depth < 4:
                    visit_class(value, prefix + key + ".", depth + 1)

    for key, value in list(namespace.items()):
        if not key.startswith("__"):
            found[key] = value
            if isinstance(value, type) and value.__module__ == module_name:
                visit_class(value, key + ".", 1)
    return found


def parameters(obj: Any) -> tuple[str, ...]:
    """The parameter names of the function behind a (decorated) callable."""
    for _ in range(6):
        obj = getattr(obj, "__func__", obj)
        if isinstance(obj, types.FunctionType) and "__wrapped__" not in obj.__dict__:
            break
        inner = getattr(obj, "__wrapped__", None)
        if inner is None:
            break
        obj = inner
    code = getattr(obj, "__code__", None)
    return tuple(code.co_varnames[: code.co_argcount]) if isinstance(code, types.CodeType) else ()


def calls(namespace: dict[str, Any], module_name: str) -> list[tuple[str, str]]:
    """(qualname, how) of every call the generator knows to be safe: f(x), C().m(x),
    C.s(x), C.c(x), C().p."""
    found: list[tuple[str, str]] = []

    def visit_class(cls: type, prefix: str, depth: int) -> None:
        for key, value in list(vars(cls).items()):
            where = f"{prefix}.{key}"
            if key.startswith("__"):
                continue
            if isinstance(value, staticmethod):
                if parameters(value)[:1] == ("x",):
                    found.append((where, "static"))
            elif isinstance(value, classmethod):
                if parameters(value)[:2] == ("cls", "x"):
                    found.append((where, "classmethod"))
            elif isinstance(value, property):
                found.append((where, "property"))
            elif isinstance(value, type):
                if value.__module__ == module_name and depth < 4:
                    visit_class(value, where, depth + 1)
            elif callable(value) and parameters(value)[:2] == ("self", "x"):
                found.append((where, "method"))

    for key, value in list(namespace.items()):
        if key.startswith("__"):
            continue
        if isinstance(value, type):
            if value.__module__ == module_name:
                visit_class(value, key, 1)
        elif callable(value) and parameters(value)[:1] == ("x",):
            found.append((key, "call"))
    return found


def perform(namespace: dict[str, Any], qualname: str, how: str) -> tuple[str, Any]:
    try:
        *owners, name = qualname.split(".")
        owner: Any = namespace[owners[0]] if owners else None
        for part in owners[1:]:
            owner = getattr(owner, part)
        if how == "call":
            return ("returned", namespace[name](ARGUMENT))
        if how in ("static", "classmethod"):
            return ("returned", getattr(owner, name)(ARGUMENT))
        if how == "property":
            return ("returned", getattr(owner(), name))
        return ("returned", getattr(owner(), name)(ARGUMENT))
    except Exception as error:  # the fresh module's raising too is a result to compare
        return ("raised", f"{type(error).__name__}: {error}")


def line_shape(code: types.CodeType) -> tuple[Any, ...]:
    """A code's first line, the lines of its instructions in order (repeats folded), and the
    same for the code nested in it."""
    lines: list[int] = []
    for _, _, line in code.co_lines():
        if line is not None and (not lines or lines[-1] != line):
            lines.append(line)
    nested = tuple(line_shape(c) for c in code.co_consts if isinstance(c, types.CodeType))
    return (code.co_name, code.co_firstlineno, tuple(lines), nested)


def statements(text: str) -> dict[str, tuple[str, str]]:
    """What each qualified name is bound by in the branches that run: ("def", its
    decorators), ("class", its decorators and bases) or ("assign", the statement). An
    object must keep its identity across a reload when its entry did not change."""
    found: dict[str, tuple[str, str]] = {}
    tree = ast.parse(text)

    def taken(node: ast.stmt) -> list[list[ast.stmt]]:
        if isinstance(node, ast.If):  # the generator's conditions: TYPE_CHECKING (False) and True
            return [node.orelse] if isinstance(node.test, ast.Name) else [node.body]
        if isinstance(node, ast.Try):
            imports = [n for n in node.body if isinstance(n, ast.Import)]
            missing = any(a.name.startswith("lf_fuzz_missing") for n in imports for a in n.names)
            return [node.handlers[0].body] if missing else [node.body, node.orelse]
        return []

    def walk(body: list[ast.stmt], prefix: str) -> None:
        properties = {n.name for n in body if isinstance(n, ast.FunctionDef) and any(
            (isinstance(d, ast.Name) and d.id == "property") or isinstance(d, ast.Attribute) for d in n.decorator_list)}
        for node in body:
            if isinstance(node, ast.FunctionDef):
                decorators = repr([ast.dump(d) for d in node.decorator_list])
                if node.name in properties:
                    accessor = "fset" if any(isinstance(d, ast.Attribute) and d.attr == "setter" for d in node.decorator_list) else "fget"
                    found[f"{prefix}{node.name}.{accessor}"] = ("def", decorators)
                else:
                    found[prefix + node.name] = ("def", decorators)
            elif isinstance(node, ast.ClassDef):
                found[prefix + node.name] = ("class", repr([ast.dump(d) for d in [*node.decorator_list, *node.bases]]))
                walk(node.body, prefix + node.name + ".")
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                for target in ast.walk(node):
                    if isinstance(target, ast.Name) and isinstance(target.ctx, ast.Store):
                        found[prefix + target.id] = ("assign", ast.dump(node))
            elif isinstance(node, (ast.If, ast.Try)):
                for branch in taken(node):
                    walk(branch, prefix)

    walk(tree.body, "")
    return found


# -- one module under test ---------------------------------------------------------------


class Case:
    """A module edited and reloaded step by step, checked against fresh imports."""

    def __init__(self, label: str, replay: str, module: types.ModuleType, path: Path, rng: random.Random) -> None:
        self.label = label  # "install seed 17"
        self.replay = replay  # what -k takes to run it alone
        self.module = module
        self.path = path
        self.rng = rng  # how many edits each step makes
        self.engine: Engine | None = None
        self.text = path.read_text()  # what the module runs
        self.mutate()
        self.snapshot = self.take_snapshot()

    @property
    def name(self) -> str:
        return self.module.__name__

    def fresh(self, text: str) -> dict[str, Any]:
        return fresh(text, str(self.path), self.name + "_fresh")

    def take_snapshot(self) -> tuple[dict[str, Any], dict[str, types.FunctionType]]:
        namespace = vars(self.module)
        return members(namespace, self.name), reachable(namespace, self.name, str(self.path))

    def mutate(self) -> None:
        """Live state the program changed: kept by a reload unless its own statement changed."""
        for value in members(vars(self.module), self.name).values():
            if isinstance(value, list) and MARKER not in value:
                value.append(MARKER)
            elif isinstance(value, dict) and MARKER not in value:
                value[MARKER] = True

    # -- editing --

    def edits(self, editor: Editor, count: int) -> tuple[str, list[str]]:
        text, done = self.text, []
        attempts = 0
        while len(done) < count and attempts < 40:
            attempts += 1
            made = editor.one(text)
            if made is None or made[0] == text:
                continue
            try:
                self.fresh(made[0])
            except Exception:
                continue  # an edit that breaks the module (a class moved above its base...)
            text = made[0]
            done.append(made[1])
        return text, done

    def write(self, text: str) -> None:
        self.path.write_text(text)

    # -- checking --

    def fail(self, step: str, edits: list[str], problems: list[str], before: str, after: str) -> None:
        diff = list(difflib.unified_diff(before.splitlines(), after.splitlines(), "running before", "the file", lineterm="", n=1))
        shown = "\n".join(diff[:80]) + ("\n..." if len(diff) > 80 else "")
        listed = "\n".join(f"  - {p}" for p in problems[:25]) + (f"\n  ... and {len(problems) - 25} more" if len(problems) > 25 else "")
        pytest.fail(
            f"{self.label}, step {step}: {len(problems)} problem(s)\n"
            f"edits: {'; '.join(edits) or 'none'}\n{listed}\n"
            f"diff (running before -> file):\n{shown}\n"
            f"replay: pytest tests/engine/test_fuzz_reload.py -k '{self.replay}'",
            pytrace=False,
        )

    def reload(self, step: str, edits: list[str], new_text: str) -> None:
        assert self.engine is not None
        before = self.text
        try:
            self.engine.reload_module(self.name)
        except LivefixError as error:
            self.fail(step, edits, [f"reload refused: {error.kind}: {error.message}"], before, new_text)
        problems = self.compare(new_text)
        problems += self.kept(before, new_text, self.snapshot)
        status = self.engine.modified_modules(modules=[self.name])
        if status:
            problems.append(f"modified_modules after the reload: expected [], got {status}")
        if problems:
            self.fail(step, edits, problems, before, new_text)
        self.text = new_text

    def rollback(self, step: str, edits: list[str], previous_text: str,
                 previous: tuple[dict[str, Any], dict[str, types.FunctionType]]) -> None:
        assert self.engine is not None
        after = self.text
        try:
            self.engine.rollback()
        except LivefixError as error:
            self.fail(step, edits, [f"rollback refused: {error.kind}: {error.message}"], after, previous_text)
        problems = self.compare(previous_text)
        objects, functions = self.take_snapshot()
        for label, then, now in (("", previous[0], objects), ("function ", previous[1], functions)):
            for qualname in sorted(set(then) | set(now)):
                if qualname not in now:
                    problems.append(f"{label}{qualname}: gone after the rollback")
                elif qualname not in then:
                    problems.append(f"{label}{qualname}: still there after the rollback")
                elif now[qualname] is not then[qualname]:
                    problems.append(f"{label}{qualname}: another object after the rollback: expected {then[qualname]!r}, got {now[qualname]!r}")
        if problems:
            self.fail(step, edits, problems, after, previous_text)
        self.text = previous_text

    def compare(self, text: str) -> list[str]:
        """How the live module differs from `text` imported fresh."""
        problems: list[str] = []
        truth = self.fresh(text)
        live = vars(self.module)
        path = str(self.path)
        if live.get("__doc__") != truth["__doc__"]:
            problems.append(f"__doc__: expected {truth['__doc__']!r}, got {live.get('__doc__')!r}")
        expected_members, live_members = members(truth, truth["__name__"]), members(live, self.name)
        for qualname in sorted(set(expected_members) ^ set(live_members)):
            where = "the live module has it, the file does not" if qualname in live_members else "missing in the live module"
            problems.append(f"{qualname}: {where}")
        for qualname, value in expected_members.items():
            running = live_members.get(qualname)
            if isinstance(value, type) and isinstance(running, type):
                if value.__dict__.get("__doc__") != running.__dict__.get("__doc__"):
                    problems.append(f"{qualname}.__doc__: expected {value.__doc__!r}, got {running.__doc__!r}")
            elif hasattr(value, "cache_info") and getattr(running, "__doc__", None) != value.__doc__:  # lru_cache copies it
                problems.append(f"{qualname}.__doc__ (lru_cache wrapper): expected {value.__doc__!r}, got {getattr(running, '__doc__', None)!r}")
        expected_functions, live_functions = reachable(truth, truth["__name__"], path), reachable(live, self.name, path)
        for qualname in sorted(set(live_functions) - set(expected_functions)):
            problems.append(f"function {qualname}: runs in the live module, the file has no such function")
        for qualname, function in expected_functions.items():
            running = live_functions.get(qualname)
            if running is None:
                problems.append(f"function {qualname}: not reachable in the live module")
                continue
            problems += compare_functions(qualname, function, running)
        for qualname, how in calls(truth, truth["__name__"]):
            expected, got = perform(truth, qualname, how), perform(live, qualname, how)
            if expected != got:
                problems.append(f"call {qualname} ({how}): expected {expected[0]} {expected[1]!r}, got {got[0]} {got[1]!r}")
        for qualname, (kind, _) in statements(text).items():
            if kind == "assign" and qualname in expected_members and qualname in live_members:
                value, running = expected_members[qualname], live_members[qualname]
                if not isinstance(value, (types.FunctionType, list, dict)) and value != running:
                    problems.append(f"{qualname}: expected the value {value!r}, got {running!r}")
        return problems

    def kept(self, before: str, after: str, previous: tuple[dict[str, Any], dict[str, types.FunctionType]]) -> list[str]:
        """Identity: what the edit left alone is the same object as before the reload."""
        problems: list[str] = []
        old, new = statements(before), statements(after)
        objects, functions = self.take_snapshot()
        then_objects, then_functions = previous
        for qualname, entry in new.items():
            if old.get(qualname) != entry:
                if entry[0] == "assign" and qualname in objects and isinstance(objects[qualname], (list, dict)):
                    truth = members(self.fresh(after), self.name + "_fresh").get(qualname)
                    if objects[qualname] != truth:
                        problems.append(f"{qualname}: its statement changed: expected the value {truth!r}, got {objects[qualname]!r}")
                continue
            for key in (qualname, qualname + ".__wrapped__"):
                for table, then in ((objects, then_objects), (functions, then_functions)):
                    if key in then and key in table and table[key] is not then[key]:
                        problems.append(f"{key}: its {entry[0]} statement did not change, yet it is another object: "
                                        f"expected {then[key]!r} (id {id(then[key]):#x}), got {table[key]!r} (id {id(table[key]):#x})")
                        break
        return problems

    # -- the run --

    def step(self, editor: Editor, number: int) -> None:
        count = 1 if self.rng.random() < 0.5 else self.rng.randint(2, 4)
        new_text, edits = self.edits(editor, count)
        previous_text, previous = self.text, self.snapshot
        self.write(new_text)
        generation = self.engine.generation if self.engine is not None else 0
        self.reload(str(number), edits, new_text)
        made = self.engine is not None and self.engine.generation != generation  # comments alone make none
        if number % ROLLBACK_EVERY == 0 and made:
            self.rollback(f"{number} (rollback)", edits, previous_text, previous)
            self.reload(f"{number} (reload after the rollback)", edits, new_text)
        self.mutate()
        self.snapshot = self.take_snapshot()


def compare_functions(qualname: str, expected: types.FunctionType, running: types.FunctionType) -> list[str]:
    code, truth = running.__code__, expected.__code__
    label = f"function {qualname}"
    if code.co_firstlineno != truth.co_firstlineno:
        return [f"{label}: first line: expected {truth.co_firstlineno}, got {code.co_firstlineno}"]
    problems = []
    if line_shape(code) != line_shape(truth):
        problems.append(f"{label}: line table: expected {line_shape(truth)}, got {line_shape(code)}")
    elif code != truth:
        problems.append(f"{label}: code differs from the file's (same lines): {code_difference(code, truth)}")
    if running.__defaults__ != expected.__defaults__:
        problems.append(f"{label}: __defaults__: expected {expected.__defaults__!r}, got {running.__defaults__!r}")
    if running.__doc__ != expected.__doc__:
        problems.append(f"{label}: __doc__: expected {expected.__doc__!r}, got {running.__doc__!r}")
    return problems


def code_difference(code: types.CodeType, truth: types.CodeType) -> str:
    for attribute in ("co_code", "co_consts", "co_names", "co_varnames", "co_freevars", "co_flags", "co_linetable"):
        if getattr(code, attribute) != getattr(truth, attribute):
            return f"{attribute}: expected {getattr(truth, attribute)!r}, got {getattr(code, attribute)!r}"
    return "positions or exception table"


# -- the tests -------------------------------------------------------------------------


@pytest.fixture
def no_bytecode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # the files change within a second, at equal sizes


@pytest.mark.parametrize("seed", [pytest.param(s, id=f"install-{s}") for s in INSTALL_SEEDS])
def test_reload_matches_a_fresh_import(seed, ws, engine, no_bytecode):
    rng = random.Random(seed)
    maker = Maker(rng)
    module = ws.module(maker.module(), name=f"lf_fuzz_install_{seed}")
    case = Case(f"install seed {seed}", f"install-{seed}]", module, ws.path(module), rng)
    case.engine = engine
    editor = Editor(rng, maker)
    for number in range(1, STEPS + 1):
        case.step(editor, number)


@pytest.mark.parametrize("seed", [pytest.param(s, id=f"late-{s}") for s in LATE_SEEDS])
def test_reload_after_a_late_attach_matches_a_fresh_import(seed, tmp_path, monkeypatch, no_bytecode):
    rng = random.Random(seed)
    maker = Maker(rng)
    name = f"lf_fuzz_late_{seed}"
    path = tmp_path / f"{name}.py"
    path.write_text(maker.module())
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    module = importlib.import_module(name)  # before any engine of this test exists
    engine = None
    try:
        case = Case(f"late seed {seed}", f"late-{seed}]", module, path, rng)
        previous_text, previous = case.text, case.snapshot
        new_text, edits = case.edits(Editor(rng, maker, late=True), rng.randint(1, 4))
        case.write(new_text)
        engine = Engine()
        engine.install()  # livefix arrives now: the file already differs from what runs
        case.engine = engine
        case.reload("0 (late attach)", edits, new_text)
        if engine.generation:
            case.rollback("0 (rollback of the attach)", edits, previous_text, previous)
            case.reload("0 (reload after the rollback)", edits, new_text)
        case.mutate()
        case.snapshot = case.take_snapshot()
        editor = Editor(rng, maker)
        for number in range(1, STEPS - 1):
            case.step(editor, number)
    finally:
        if engine is not None:
            engine.sources.uninstall()
        sys.modules.pop(name, None)


# -- what the seeds found, reduced -------------------------------------------------------
# Each case: whether the engine attaches only after the import and the first edit, the text
# imported, then the texts the file takes one after the other (each reloaded, rolled back
# and reloaded again), checked like a seed's steps.


def edited(text: str, *replacements: tuple[str, str]) -> str:
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


DECORATOR = """\
import functools


def deco(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs) + 1
    return wrapper


@deco
def g(x):
    return x
"""
ADD = """\
def add(n):
    def decorate(fn):
        return lambda x: fn(x) + n
    return decorate
"""
IF_BLOCK = """\
if True:
    X = 1

    def t(x):
        y = x
        return y + 1
"""
TRY_BLOCK = """\
try:
    import lf_fuzz_missing
except ImportError:
    lf_fuzz_missing = None

    def fallback(x):
        return x + 1
"""
TRY_PRESENT = """\
try:
    from functools import reduce
except ImportError:
    def reduce(fn, seq):
        return 1
"""
PROPERTY = """\
class C:
    @property
    def p(self):
        return 1

    @p.setter
    def p(self, value):
        self._p = value
"""
DOCSTRINGS = '''\
def f(x):
    """Doc.
def fake(x):
    return 1
"""
    return x


def g(x):
    """Doc.
def fake(x):
    return 2
"""
    return x
'''
DECORATED_DOCS = DECORATOR.replace("def g(x):\n", 'def g(x):\n    """Doc 1."""\n') + '''

@functools.lru_cache(maxsize=None)
def h(x):
    """Doc 1."""
    return x
'''
SPANNING = """\
import functools
def f(x):
    return x
@functools.lru_cache(
)
def g(x):
    return x * 2
class C:
    ITEMS = [1]
"""
COMMENTED = """\
def deco(fn):
    return fn

@deco
# a comment
def g(x):
    return x
class C:
    A = 1
"""
ABOVE = """\
def deco0(fn):
    return fn
@deco0
def g11(x):
    return 1
class C13:
    def s13(x):
        return x * 10736
"""

REDUCED: dict[str, tuple[bool, list[str]]] = {
    "module-docstring-with-column-0-def": (False, [
        '"""Doc.\n\ndef fake():\n    return 1\n"""\n\ndef f(x):\n    return x\n',
        '"""Doc.\n\ndef fake():\n    return 2\n"""\n\ndef f(x):\n    return x\n']),
    "string-with-column-0-assignment": (False, ['T = """\nhello\nx = 1\n"""\n', 'T = """\nhello\nx = 2\n"""\n']),
    "two-docstrings-with-the-same-column-0-def": (False, [
        DOCSTRINGS, edited(DOCSTRINGS, ("return 1", "return 3"), ("return 2", "return 4"))]),
    "decorator-moved-then-its-wrapper-changed": (False, [
        DECORATOR, "# a comment\n" + DECORATOR, "# a comment\n" + edited(DECORATOR, ("+ 1", "+ 2"))]),
    "decorator-moved-then-a-line-added-to-its-wrapper": (False, [
        DECORATOR, "# a comment\n" + DECORATOR,
        "# a comment\n" + edited(DECORATOR, ("        return fn(", "        _pad = 1\n        return fn("))]),
    "decorated-function-docstring": (False, [DECORATED_DOCS, DECORATED_DOCS.replace("Doc 1", "Doc 2")]),
    "blank-line-deleted-in-an-except-block": (False, [TRY_BLOCK, edited(TRY_BLOCK, ("None\n\n", "None\n"))]),
    "comment-inserted-in-an-if-block": (False, [IF_BLOCK, edited(IF_BLOCK, ("1\n\n", "1\n\n# note\n"))]),
    "comment-inserted-in-a-body-in-an-if-block": (False, [
        IF_BLOCK, edited(IF_BLOCK, ("        y = x\n", "        y = x\n        # note\n"))]),
    "property-setter-deleted": (False, [PROPERTY, PROPERTY.split("\n\n")[0] + "\n"]),
    "two-try-blocks-swap-places": (False, [TRY_PRESENT + "\n" + TRY_BLOCK, TRY_BLOCK + "\n" + TRY_PRESENT]),
    "two-if-blocks-swap-places": (False, [
        "if True:\n    def a(x):\n        return 1\n\nif True:\n    def b(x):\n        return 2\n",
        "if True:\n    def b(x):\n        return 2\n\nif True:\n    def a(x):\n        return 1\n"]),
    "comment-between-decorator-and-def-then-edits-around": (False, [
        COMMENTED, edited(COMMENTED, ("fn\n\n", "fn\n"), ("A = 1", "A = 2"))]),
    "insertion-right-above-a-decorator-and-a-method-added-below": (False, [
        ABOVE, edited(ABOVE, ("@deco0\n", "def new11613(x):\n    return x + 11613\n\n@deco0\n"))
        + "\n    def new11622(self, x):\n        return x + 11622\n"]),
    "comment-above-a-decorator-spanning-lines-and-a-class-changed": (False, [
        SPANNING, edited(SPANNING, ("    return x\n@", "    return x\n    # note\n@"), ("[1]", "[2]"))]),
    "decorator-argument-and-a-class-changed": (False, [
        ADD + "\n\n@add(1)\ndef g(x):\n    return x\n\n\nclass C:\n    A = 1\n",
        ADD + "\n\n@add(2)\ndef g(x):\n    return x\n\n\nclass C:\n    A = 2\n"]),
    "first-of-stacked-decorators-and-the-line-above-changed": (False, [
        ADD + "K = 1\n@add(10)\n@add(100)\ndef g(x):\n    return x\n",
        ADD + "K = 2\n@add(20)\n@add(100)\ndef g(x):\n    return x\n"]),
    "statement-above-the-module-docstring": (False, [
        '"""Module doc."""\nimport functools\n\nK = 1\n', 'X = 0\n"""Module doc."""\nimport functools\n\nK = 1\n']),
    "late-def-in-an-except-block-edited-before-attach": (True, [
        TRY_BLOCK + "\n\ndef f(x):\n    return x\n", edited(TRY_BLOCK, ("x + 1", "x + 2")) + "\n\ndef f(x):\n    return x\n"]),
    "late-def-in-an-if-block-edited-before-attach": (True, [IF_BLOCK, edited(IF_BLOCK, ("y + 1", "y + 2"))]),
    "late-comment-in-a-body-before-attach": (True, [
        "def f(x):\n    y = x\n    return y + 1\n", "def f(x):\n    y = x\n    # note\n    return y + 1\n"]),
    "late-property-setter-changed-and-lines-above-then-rollback": (True, [
        PROPERTY + "\n\ndef g(x):\n    return x\n",
        "\n" + edited(PROPERTY, ("        self._p", "        _pad = 1\n        self._p")) + "\n\ndef g(x):\n    return x\n"]),
}


@pytest.mark.parametrize("name", sorted(REDUCED))
def test_reduced_case(name, tmp_path, monkeypatch, no_bytecode):
    late, texts = REDUCED[name]
    module_name = "lf_fuzz_case_" + name.replace("-", "_")
    path = tmp_path / f"{module_name}.py"
    path.write_text(texts[0])
    monkeypatch.syspath_prepend(str(tmp_path))
    engine = None if late else Engine()
    if engine is not None:
        engine.install()
    importlib.invalidate_caches()
    module = importlib.import_module(module_name)
    try:
        case = Case(f"reduced case {name}", name, module, path, random.Random(0))
        case.engine = engine
        for number, text in enumerate(texts[1:], 1):
            previous_text, previous = case.text, case.snapshot
            case.write(text)
            if case.engine is None:
                case.engine = engine = Engine()
                engine.install()
            generation = engine.generation
            case.reload(str(number), [f"text {number} of the case"], text)
            if engine.generation != generation:
                case.rollback(f"{number} (rollback)", [f"text {number} of the case"], previous_text, previous)
                case.reload(f"{number} (reload after the rollback)", [f"text {number} of the case"], text)
            case.mutate()
            case.snapshot = case.take_snapshot()
    finally:
        if engine is not None:
            engine.sources.uninstall()
        sys.modules.pop(module_name, None)
