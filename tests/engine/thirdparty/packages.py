"""The third-party packages test_thirdparty_packages reloads live: pinned sdists from PyPI
and, for each, the edits made on disk, the probes that see the behaviour changes and the
bug injected with `apply`.

Loaded by file path (this folder is not a package) both by the test and by driver.py in
the child process: data only, standard library only.

Why these three (each an sdist shipping its own test suite that needs only pytest, pure
Python, supporting 3.10 .. 3.13, whole suite in about a second):
- click: classes with deep hierarchies, `typing.overload` stubs in front of the real
  `command`/`group`, decorators built from closures, `contextmanager` methods, a
  module (`_winconsole`) never imported on Linux.
- toolz: a deep package (`toolz.curried`, `toolz.sandbox`), every public function
  wrapped in `curry` objects held by other modules, `@curry` and `@instanceproperty`
  decorators, `__slots__` classes, a sibling package (`tlz`) built by an import hook.
- cachetools: `@staticmethod`/`@property` members, name-mangled private methods,
  nested classes, `@functools.total_ordering`, decorators whose wrappers are closures
  three functions deep.
"""

from __future__ import annotations

from dataclasses import dataclass

MARK = "livefix third-party test"


@dataclass(frozen=True)
class TextEdit:
    """Replace `old` (which must occur exactly once) by `new` in the file `path`
    (relative to the folder holding the import package)."""

    path: str
    old: str
    new: str


@dataclass(frozen=True)
class Probe:
    """An expression, evaluated with the package imported under its name, whose repr is
    `before` while the process runs the original code and `after` once the edit is live."""

    expression: str
    before: str
    after: str


@dataclass(frozen=True)
class Behaviour:
    """A real behaviour change: the edit, the definition it changes and the probe that sees it."""

    edit: TextEdit
    module: str
    qualname: str
    probe: Probe


@dataclass(frozen=True)
class Bug:
    """A bug injected with livefix.apply: `old` replaced by `new` in the definition's source."""

    module: str
    qualname: str
    old: str
    new: str


@dataclass(frozen=True)
class Sdist:
    project: str
    version: str
    sha256: str
    package: str  # the import package reloaded live
    source: str  # the sdist's folder holding the import package ("" for the top)
    tests: str  # the package's own tests, relative to the sdist's top folder
    extra: tuple[str, ...]  # other folders (relative to `source`) its tests import
    behaviours: tuple[Behaviour, ...]
    docstring: TextEdit
    documented: tuple[str, str]  # (module, qualname) whose docstring `docstring` changes
    bug: Bug

    @property
    def filename(self) -> str:
        return f"{self.project}-{self.version}.tar.gz"

    @property
    def folder(self) -> str:
        return f"{self.project}-{self.version}"


PARAGRAPH = (
    f"    Edited by the {MARK}: this paragraph was added on\n"
    "    disk and reloaded into the running process.\n"
)

PACKAGES: dict[str, Sdist] = {
    sdist.package: sdist
    for sdist in [
        Sdist(
            project="click",
            version="8.1.7",
            sha256="ca9853ad459e787e2192211578cc907e7594e294c7ccc834310722b41b9ca6de",
            package="click",
            source="src",
            tests="tests",
            extra=(),
            behaviours=(
                # `command` is the real definition after four @t.overload stubs of the same name.
                Behaviour(
                    TextEdit(
                        "click/decorators.py",
                        "    func: t.Optional[t.Callable[[_AnyCallable], t.Any]] = None\n\n    if callable(name):\n",
                        "    func: t.Optional[t.Callable[[_AnyCallable], t.Any]] = None\n\n"
                        f"    if name == \"livefix-probe\":  # {MARK}: a behaviour change\n"
                        "        name = \"livefix-live\"\n\n"
                        "    if callable(name):\n",
                    ),
                    "click.decorators", "command",
                    Probe("click.command('livefix-probe')(lambda: None).name", "'livefix-probe'", "'livefix-live'"),
                ),
            ),
            # A class docstring three lines longer: every method below it in the class moves.
            docstring=TextEdit(
                "click/core.py",
                "    :meth:`close` on teardown.\n\n    :param command:",
                "    :meth:`close` on teardown.\n\n" + PARAGRAPH + "\n    :param command:",
            ),
            documented=("click.core", "Context"),
            bug=Bug("click.types", "StringParamType.convert", "return str(value)\n", f"return str(value).upper()  # {MARK}: the bug\n"),
        ),
        Sdist(
            project="toolz",
            version="1.0.0",
            sha256="2c86e3d9a04798ac556793bced838816296a2f085017664e4995cb40a1047a02",
            package="toolz",
            source="",
            tests="toolz/tests",
            extra=("tlz",),
            behaviours=(
                # `assoc` is reached through the curry object toolz.curried holds.
                Behaviour(
                    TextEdit(
                        "toolz/dicttoolz.py",
                        "    d2 = factory()\n    d2.update(d)\n    d2[key] = value\n    return d2\n",
                        f"    if key == 'livefix-probe':  # {MARK}: a behaviour change\n"
                        "        value = 'live'\n"
                        "    d2 = factory()\n    d2.update(d)\n    d2[key] = value\n    return d2\n",
                    ),
                    "toolz.dicttoolz", "assoc",
                    Probe("toolz.curried.assoc({}, 'livefix-probe', 1)", "{'livefix-probe': 1}", "{'livefix-probe': 'live'}"),
                ),
            ),
            # `flip` is decorated with @curry; its doctests are run by the package's tests.
            docstring=TextEdit(
                "toolz/functoolz.py",
                "    This function is curried.\n\n    >>> def div(a, b):",
                "    This function is curried.\n\n" + PARAGRAPH + "\n    >>> def div(a, b):",
            ),
            documented=("toolz.functoolz", "flip"),
            bug=Bug("toolz.functoolz", "Compose.__call__", "ret = f(ret)", f"ret = ret  # {MARK}: the bug"),
        ),
        Sdist(
            project="cachetools",
            version="5.5.0",
            sha256="2cc24fb4cbe39633fb7badd9db9ca6295d766d9c2995f245725a46715d050f2a",
            package="cachetools",
            source="src",
            tests="tests",
            extra=(),
            behaviours=(
                # A staticmethod every cache class inherits.
                Behaviour(
                    TextEdit(
                        "cachetools/__init__.py",
                        "        \"\"\"Return the size of a cache element's value.\"\"\"\n        return 1\n",
                        "        \"\"\"Return the size of a cache element's value.\"\"\"\n"
                        f"        if isinstance(value, str) and value == \"livefix-probe\":  # {MARK}: a behaviour change\n"
                        "            return 2\n"
                        "        return 1\n",
                    ),
                    "cachetools", "Cache.getsizeof",
                    Probe("cachetools.LRUCache(maxsize=4).getsizeof('livefix-probe')", "1", "2"),
                ),
                # A method whose default is a sentinel made in the class body (`__marker = object()`)
                # and compared by identity in the body: the new code must keep seeing that object.
                Behaviour(
                    TextEdit(
                        "cachetools/__init__.py",
                        "    def pop(self, key, default=__marker):\n        if key in self:\n",
                        "    def pop(self, key, default=__marker):\n"
                        f"        if key == \"livefix-probe\":  # {MARK}: a behaviour change\n"
                        "            return \"live\"\n"
                        "        if key in self:\n",
                    ),
                    "cachetools", "Cache.pop",
                    Probe("cachetools.LRUCache(maxsize=4).pop('livefix-probe', 'absent')", "'absent'", "'live'"),
                ),
            ),
            # `cached` makes its wrappers from closures nested three deep.
            docstring=TextEdit(
                "cachetools/__init__.py",
                "    results in a cache.\n\n    \"\"\"\n\n    def decorator(func):\n",
                "    results in a cache.\n\n" + PARAGRAPH + "\n    \"\"\"\n\n    def decorator(func):\n",
            ),
            documented=("cachetools", "cached"),
            # The method's body uses the name-mangled `self.__order`.
            bug=Bug(
                "cachetools", "LRUCache.popitem",
                "key = next(iter(self.__order))", f"key = next(reversed(self.__order))  # {MARK}: the bug",
            ),
        ),
    ]
}
