"""`%load_ext livefix` in a real Jupyter kernel (ipykernel, this interpreter, its working
directory a project folder holding the user's modules), driven cell by cell as a notebook
front end drives it. Between cells the tests save files on disk (plain writes, an editor's
atomic save: write a temporary file then rename it over, vim's rename-to-backup) and assert
what the person at the notebook sees under the next cell: its value, the `livefix:` line on
stdout, errors with file:line on stderr, tracebacks at the file's lines.

Each test has its own kernel (half a second to start): `%livefix off`, rollbacks and
`%autoreload` are kernel-wide, so sharing one would make each test depend on the others.
"""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path
from typing import Iterator

import pytest
from kernel import CellResult, Kernel

pytestmark = pytest.mark.timeout(120)

PRICING = """\
RATE = 2
orders = []


def total(n):
    orders.append(n)
    return n * RATE
"""

MODELS = """\
import enum
from dataclasses import dataclass


class Color(enum.Enum):
    RED = 1
    BLUE = 2

    def label(self):
        return self.name.lower()


@dataclass
class Item:
    name: str
    price: int


class Cart:
    def __init__(self):
        self.items = []

    def add(self, item):
        self.items.append(item)

    def total(self):
        return sum(item.price for item in self.items)
"""

GEOMETRY = """\
def area(w, h):
    return w * h


class Shape:
    def ratio(self, w, h):
        return w / h  # @ratio


def check(w, h):
    return Shape().ratio(w, h)  # @check
"""


# -- the project on disk ----------------------------------------------------------------

@pytest.fixture
def project(tmp_path: Path) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    return directory


@pytest.fixture
def kernel(project: Path) -> Iterator[Kernel]:
    kernel = Kernel(project)
    try:
        yield kernel
    finally:
        kernel.shutdown()


def write(project: Path, name: str, text: str) -> Path:
    path = project / name
    path.write_text(textwrap.dedent(text))
    return path


def save_atomically(path: Path, text: str) -> None:
    """How most editors save: the whole text to a temporary file, renamed over the old one."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def edit(path: Path, old: str, new: str, atomic: bool = False) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    text = text.replace(old, new, 1)
    save_atomically(path, text) if atomic else path.write_text(text)


def line_of(path: Path, marker: str) -> int:
    """The line of `# @marker` in the file as saved now (never a hard-coded number)."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.endswith(f"# @{marker}"):
            return number
    raise AssertionError(f"no # @{marker} in {path}")


def run(kernel: Kernel, code: str) -> CellResult:
    """A cell that must not raise (its traceback is the assertion message when it does)."""
    cell = kernel.execute(code)
    assert cell.error is None, cell.error
    return cell


def history(kernel: Kernel) -> list[str]:
    """`%livefix history`, each generation's line without its time of day."""
    text = run(kernel, "%livefix history").stdout
    return [re.sub(r" \d\d:\d\d:\d\d ", " ", line) for line in text.splitlines()]


def differing(kernel: Kernel) -> list[str]:
    """The files `%livefix status` lists as differing from what runs."""
    return run(kernel, "%livefix status").stdout.splitlines()[1:]


# -- arriving late, arriving first ----------------------------------------------------------

def test_module_imported_before_the_extension_is_reloaded_keeping_its_state(kernel: Kernel, project: Path) -> None:
    path = write(project, "pricing.py", PRICING)
    assert run(kernel, "import pricing\nseen = pricing.orders\npricing.total(5)").result == "10"

    loaded = run(kernel, "%load_ext livefix")
    assert loaded.stdout.startswith("livefix: project modules are reloaded before each cell (1 loaded now")

    edit(path, "return n * RATE", "return n * RATE + 1")
    cell = run(kernel, "pricing.total(5), pricing.orders, seen is pricing.orders, pricing.RATE")
    assert cell.stdout == "livefix: pricing.py: total replaced (gen 1)\n"
    assert cell.stderr == ""
    assert cell.result == "(11, [5, 5], True, 2)"  # the new code; the list made by the first cell kept

    again = run(kernel, "pricing.total(1)")
    assert (again.stdout, again.result) == ("", "3")  # reloaded once, not before every cell


def test_save_made_before_the_extension_loaded_is_listed_by_status_and_reloaded_by_reload(
    kernel: Kernel, project: Path
) -> None:
    path = write(project, "pricing.py", PRICING)
    run(kernel, "import pricing")
    edit(path, "return n * RATE", "return n * RATE * 10")
    run(kernel, "%load_ext livefix")

    assert differing(kernel) == ["  pricing.py differs from what runs: total"]
    reloaded = run(kernel, "%livefix reload")
    assert reloaded.stdout == "livefix: pricing.py: total replaced (gen 1)\n"
    cell = run(kernel, "pricing.total(1)")
    assert (cell.stdout, cell.result) == ("", "20")
    assert differing(kernel) == []


def test_module_imported_after_the_extension_is_reloaded_on_an_atomic_save(kernel: Kernel, project: Path) -> None:
    path = write(project, "shipping.py", "def cost(kg):\n    return kg * 3\n")
    run(kernel, "%load_ext livefix")
    assert run(kernel, "import shipping\nshipping.cost(2)").result == "6"

    edit(path, "return kg * 3", "return kg * 3 + 5", atomic=True)
    cell = run(kernel, "shipping.cost(2)")
    assert cell.stdout == "livefix: shipping.py: cost replaced (gen 1)\n"
    assert (cell.stderr, cell.result) == ("", "11")


def test_file_saved_while_the_cell_importing_it_still_ran_is_reloaded_before_the_next_cell(
    kernel: Kernel, project: Path
) -> None:
    write(project, "report.py", "def title():\n    return 'draft'\n")
    run(kernel, "%load_ext livefix")
    # A long cell imports the module and the user saves the file before the cell ends.
    saved = "def title():\n    return 'final version'\n"
    run(kernel, f"import report\nfirst = report.title()\nfrom pathlib import Path\n_ = Path('report.py').write_text({saved!r})")

    cell = run(kernel, "first, report.title()")
    assert cell.stdout == "livefix: report.py: title replaced (gen 1)\n"
    assert cell.result == "('draft', 'final version')"


def test_reload_ext_leaves_one_extension(kernel: Kernel, project: Path) -> None:
    path = write(project, "pricing.py", PRICING)
    run(kernel, "%load_ext livefix\n")
    run(kernel, "import pricing")
    edit(path, "return n * RATE", "return n * RATE + 1")
    assert run(kernel, "pricing.total(1)").stdout == "livefix: pricing.py: total replaced (gen 1)\n"

    run(kernel, "%reload_ext livefix")
    edit(path, "return n * RATE + 1", "return n * RATE + 100", atomic=True)
    cell = run(kernel, "pricing.total(1)")
    assert cell.stdout == "livefix: pricing.py: total replaced (gen 2)\n"  # one line: the old hooks are gone
    assert cell.result == "102"


# -- what the reload keeps ------------------------------------------------------------------

def test_classes_enums_and_dataclasses_keep_their_identity_and_live_instances_follow(
    kernel: Kernel, project: Path
) -> None:
    path = write(project, "models.py", MODELS)
    run(kernel, "%load_ext livefix")
    run(kernel, "import models\n"
                "cart = models.Cart()\nitem = models.Item('tea', 3)\ncart.add(item)\n"
                "red = models.Color.RED\nCartClass, ItemClass = models.Cart, models.Item")

    edit(path, "return self.name.lower()", "return self.name.upper()")
    edit(path, "    price: int\n", "    price: int\n    qty: int = 1\n")
    edit(path, "return sum(item.price for item in self.items)",
         "return sum(item.price * item.qty for item in self.items) * 2\n\n"
         "    def count(self):\n        return len(self.items)", atomic=True)
    cell = run(kernel, "(cart.total(), cart.count(), isinstance(cart, models.Cart), models.Cart is CartClass,\n"
                       " models.Item is ItemClass, models.Color.RED is red, red.label(), item.qty, models.Item('x', 1))")
    assert cell.result == "(6, 1, True, True, True, True, 'RED', 1, Item(name='x', price=1, qty=1))"
    assert cell.stderr == ""
    assert cell.stdout.startswith("livefix: models.py: ") and cell.stdout.endswith(" (gen 1)\n")
    assert "Color.label, Cart.total replaced" in cell.stdout
    assert "Item.qty, Cart.count added" in cell.stdout


def test_enum_member_added_is_refused_with_file_and_the_cell_runs(kernel: Kernel, project: Path) -> None:
    path = write(project, "models.py", MODELS)
    run(kernel, "%load_ext livefix\n")
    run(kernel, "import models")
    edit(path, "    BLUE = 2\n", "    BLUE = 2\n    GREEN = 3\n")
    edit(path, "return self.name.lower()", "return self.name.title()")

    cell = run(kernel, "[color.label() for color in models.Color]")
    assert cell.result == "['red', 'blue']"  # the whole file is refused: the code it had
    assert cell.stderr.startswith("livefix: models.py: incompatible: ")
    assert "GREEN" in cell.stderr and cell.stderr.endswith(" (still running the code it had)\n")
    assert history(kernel) == ["livefix: no generation yet (the code runs as loaded)"]


def test_names_the_notebook_imported_from_the_module_run_the_new_code(kernel: Kernel, project: Path) -> None:
    path = write(project, "pricing.py", PRICING)
    run(kernel, "%load_ext livefix")
    run(kernel, "from pricing import total\nhandlers = {'total': total}\nbound = [total]")

    edit(path, "return n * RATE", "return n * RATE - 1")
    cell = run(kernel, "total(5), handlers['total'](5), bound[0](5), total is handlers['total']")
    assert cell.stdout == "livefix: pricing.py: total replaced (gen 1)\n"
    assert cell.result == "(9, 9, 9, True)"


def test_traceback_below_added_lines_shows_the_file_line(kernel: Kernel, project: Path) -> None:
    path = write(project, "geometry.py", GEOMETRY)
    run(kernel, "import geometry\nshape = geometry.Shape()")  # before the extension: arrived late
    run(kernel, "%load_ext livefix")

    # vim's save: the old file renamed to a backup, the new text written under the name
    os.rename(path, path.with_name("geometry.py~"))
    path.write_text(GEOMETRY.replace("    return w * h\n",
                                     '    """The area."""\n    if w < 0:\n        raise ValueError(w)\n    return w * h\n'))
    ratio, check = line_of(path, "ratio"), line_of(path, "check")

    cell = kernel.execute("geometry.check(1, 0)")
    assert cell.stdout == "livefix: geometry.py: area replaced, 2 moved (gen 1)\n"
    assert cell.error is not None and cell.error.endswith("ZeroDivisionError: division by zero")
    assert f"geometry.py:{check}, in check(w, h)" in cell.error
    assert f"geometry.py:{ratio}, in Shape.ratio(self, w, h)" in cell.error
    assert f"---> {ratio}     return w / h" in cell.error  # the file's text at that line

    again = kernel.execute("shape.ratio(1, 0)")  # an instance made before the save
    assert again.error is not None and f"geometry.py:{ratio}, in Shape.ratio" in again.error


# -- saves that go wrong, saves that go together --------------------------------------------

def test_syntax_error_save_keeps_the_old_code_and_the_fix_reloads(kernel: Kernel, project: Path) -> None:
    path = write(project, "pricing.py", PRICING)
    tax = write(project, "tax.py", "def vat(n):\n    return n // 5\n")
    run(kernel, "%load_ext livefix")
    run(kernel, "import pricing, tax")

    edit(path, "return n * RATE", "return n * RATE +  # @broken")
    edit(tax, "return n // 5", "return n // 4")  # saved at the same time, and correct
    broken = line_of(path, "broken")
    cell = run(kernel, "pricing.total(10), tax.vat(100)")
    assert cell.result == "(20, 25)"  # pricing runs the code it had, tax the saved code
    assert cell.stderr == f"livefix: pricing.py:{broken}: syntax error: invalid syntax (still running the code it had)\n"
    assert cell.stdout == "livefix: tax.py: vat replaced (gen 1)\n"

    quiet = run(kernel, "pricing.total(10)")
    assert (quiet.stdout, quiet.stderr, quiet.result) == ("", "", "20")  # said once, not before every cell

    edit(path, "return n * RATE +  # @broken", "return n * RATE + 1", atomic=True)
    fixed = run(kernel, "pricing.total(10), pricing.orders")
    assert fixed.stdout == "livefix: pricing.py: total replaced (gen 2)\n"
    assert fixed.stderr == ""
    assert fixed.result == "(21, [10, 10, 10])"


def test_two_files_saved_together_are_one_generation(kernel: Kernel, project: Path) -> None:
    pricing = write(project, "pricing.py", PRICING)
    shipping = write(project, "shipping.py", "def cost(kg):\n    return kg * 3\n")
    run(kernel, "%load_ext livefix")
    run(kernel, "import pricing, shipping")

    edit(pricing, "return n * RATE", "return n * RATE * 100", atomic=True)
    edit(shipping, "return kg * 3", "return kg * 30", atomic=True)
    cell = run(kernel, "pricing.total(1), shipping.cost(1)")
    assert cell.result == "(200, 30)"
    assert sorted(cell.stdout.splitlines()) == [
        "livefix: pricing.py: total replaced (gen 1)",
        "livefix: shipping.py: cost replaced (gen 1)",
    ]
    (generation,) = history(kernel)
    assert generation.startswith("gen 1 reload [active] ")
    assert "pricing.total replaced" in generation and "shipping.cost replaced" in generation


# -- the %livefix magic ---------------------------------------------------------------------

def test_off_on_status_and_rollback(kernel: Kernel, project: Path) -> None:
    path = write(project, "pricing.py", PRICING)
    run(kernel, "%load_ext livefix")
    run(kernel, "import pricing")

    assert run(kernel, "%livefix off").stdout == "livefix: reloading before each cell is off\n"
    edit(path, "return n * RATE", "return n * RATE * 3")
    paused = run(kernel, "pricing.total(1)")
    assert (paused.stdout, paused.stderr, paused.result) == ("", "", "2")
    status = run(kernel, "%livefix status").stdout.splitlines()
    assert status[0].startswith("livefix: reloading before each cell is off; 1 project module watched")
    assert status[1:] == ["  pricing.py differs from what runs: total"]

    assert run(kernel, "%livefix on").stdout.startswith("livefix: reloading before each cell is on")
    resumed = run(kernel, "pricing.total(1)")
    assert (resumed.stdout, resumed.result) == ("livefix: pricing.py: total replaced (gen 1)\n", "6")
    assert differing(kernel) == []

    rolled = run(kernel, "%livefix rollback")
    assert rolled.stdout.startswith("livefix: Rolled back to generation 0")
    back = run(kernel, "pricing.total(1)")
    assert (back.stdout, back.result) == ("", "2")  # the file was not saved again: not reloaded
    assert differing(kernel) == ["  pricing.py differs from what runs: total"]

    save_atomically(path, path.read_text())  # saved again, same text: reloaded again
    saved = run(kernel, "pricing.total(1)")
    assert saved.stdout.startswith("livefix: pricing.py: total replaced (gen ") and saved.result == "6"


def test_reload_now_while_off_and_rollback_to_a_generation(kernel: Kernel, project: Path) -> None:
    path = write(project, "pricing.py", PRICING)
    run(kernel, "%load_ext livefix")
    run(kernel, "import pricing")
    run(kernel, "%livefix off")

    edit(path, "return n * RATE", "return n * RATE * 3")
    assert run(kernel, "%livefix reload").stdout == "livefix: pricing.py: total replaced (gen 1)\n"
    edit(path, "return n * RATE * 3", "return n * RATE * 30")
    assert run(kernel, "%livefix reload").stdout == "livefix: pricing.py: total replaced (gen 2)\n"
    assert run(kernel, "%livefix reload").stdout == "livefix: every project module matches its file\n"
    run(kernel, "%livefix on")
    cell = run(kernel, "pricing.total(1)")
    assert (cell.stdout, cell.result) == ("", "60")  # `reload` took the saves in: not reloaded again

    assert run(kernel, "%livefix rollback 1").stdout.startswith("livefix: Rolled back to generation 1")
    assert run(kernel, "pricing.total(1)").result == "6"
    run(kernel, "%livefix rollback 0")
    assert run(kernel, "pricing.total(1)").result == "2"


def test_apply_a_definition_from_the_notebook_and_a_cell_of_definitions(kernel: Kernel, project: Path) -> None:
    write(project, "pricing.py", PRICING)
    run(kernel, "%load_ext livefix")
    run(kernel, "import pricing\nfrom pricing import total as module_total")

    run(kernel, "def total(n):\n    return n * 10\n")
    applied = run(kernel, "%livefix apply pricing:total")
    assert applied.stdout.startswith("livefix: Applied generation 1: 1 replaced")
    assert applied.stderr == ""
    assert run(kernel, "pricing.total(2), module_total(2)").result == "(20, 20)"

    cell = run(kernel, "%%livefix apply pricing\n"
                       "def total(n):\n    return n * 1000\n\n\n"
                       "def tax(n):\n    return n + 5\n")
    assert cell.stdout.startswith("livefix: Applied generation 2: 1 replaced, 1 added")
    after = run(kernel, "pricing.total(2), pricing.tax(1), 'tax' in globals(), total(2)")
    assert after.result == "(2000, 6, False, 20)"  # the cell itself was not run in the notebook

    assert differing(kernel) == ["  pricing.py differs from what runs: total, tax"]  # the file was not written
    assert run(kernel, "pricing.total(2)").result == "2000"  # and, not saved, it is not reloaded back
    assert [line.split(" [")[0] for line in history(kernel)] == ["gen 1 apply", "gen 2 apply"]


def test_a_class_cell_of_some_methods_patches_those_and_removes_none(kernel: Kernel, project: Path) -> None:
    write(project, "models.py", MODELS)
    run(kernel, "%load_ext livefix")
    run(kernel, "import models\ncart = models.Cart()\ncart.add(models.Item('a', 3))")
    cell = run(kernel, "%%livefix apply models\n"
                       "class Cart:\n    def total(self):\n        return 100 * sum(i.price for i in self.items)\n")
    assert cell.stdout.startswith("livefix: Applied generation 1: 1 replaced, 0 added, 0 removed"), cell.stdout
    assert "removed:" not in cell.stdout
    assert run(kernel, "cart.total(), models.Cart().items").result == "(300, [])"  # __init__ and add kept


BAD_MAGIC = [
    pytest.param("%livefix apply nosuchmodule:f", "module 'nosuchmodule' is not loaded in this kernel", id="unknown-module"),
    pytest.param("%livefix apply pricing:discount", "this notebook defines no 'discount' to apply", id="undefined-name"),
    pytest.param("%livefix apply pricing", "name the target as MODULE:NAME", id="no-name"),
    pytest.param("%livefix rollback x", "rollback takes a generation number, not 'x'", id="rollback-word"),
    pytest.param("%livefix rollback 9", "there is no generation 9", id="rollback-future"),
    pytest.param("%%livefix apply pricing\nRATE = 5\n", "takes a cell of definitions only", id="cell-statement"),
    pytest.param("%%livefix apply pricing\ndef total(n):\n    return n +\n", "the cell does not parse", id="cell-syntax"),
    pytest.param("%%livefix rollback\ndef total(n):\n    return 0\n", "%%livefix apply MODULE[:NAME]", id="cell-verb"),
    pytest.param('%livefix apply "pricing:total', "", id="unclosed-quote"),
]


@pytest.mark.parametrize(("cell", "says"), BAD_MAGIC)
def test_bad_magic_input_is_a_clear_error_and_changes_nothing(
    kernel: Kernel, project: Path, cell: str, says: str
) -> None:
    path = write(project, "pricing.py", PRICING)
    run(kernel, "%load_ext livefix")
    run(kernel, "import pricing")
    edit(path, "return n * RATE", "return n * RATE * 3")
    run(kernel, "def total(n):\n    return -1\n")  # what `apply pricing:total` would take
    assert run(kernel, "pricing.total(1)").result == "6"  # generation 1
    before = history(kernel)

    refused = kernel.execute(cell)
    assert refused.error is None, f"a traceback instead of a livefix message:\n{refused.error}"
    assert refused.stdout == ""
    assert refused.stderr.startswith("livefix: ") and refused.stderr.endswith(" (nothing was changed)\n")
    assert says in refused.stderr

    assert run(kernel, "pricing.total(1), pricing.RATE, total(1)").result == "(6, 2, -1)"
    assert history(kernel) == before
    assert differing(kernel) == []


def test_magic_errors_name_what_the_user_ran_not_a_reload(kernel: Kernel, project: Path) -> None:
    write(project, "pricing.py", PRICING)
    run(kernel, "%load_ext livefix")
    run(kernel, "import pricing")
    said = [run(kernel, cell).stderr for cell in (
        "%livefix rollback x",
        "%%livefix apply pricing\nRATE = 5\n",
        "%%livefix apply pricing\ndef total(n):\n    return n +\n",
    )]
    assert all(line.startswith("livefix: ") for line in said), said
    # No reload took place: "livefix: reload:2: syntax error" reads as line 2 of a file named reload.
    assert [line for line in said if line.startswith("livefix: reload")] == []


def test_autoreload_on_as_well_is_warned_about_once(kernel: Kernel, project: Path) -> None:
    write(project, "pricing.py", PRICING)
    run(kernel, "%load_ext livefix")
    run(kernel, "import pricing")
    run(kernel, "%load_ext autoreload")
    run(kernel, "%autoreload 2")

    warned = run(kernel, "pricing.total(1)")
    assert warned.result == "2"
    assert warned.stderr == ("livefix: %autoreload is on as well, and both reload the same modules (autoreload "
                             "re-runs them, so objects stop agreeing): turn it off with %autoreload off\n")
    assert run(kernel, "pricing.total(1)").stderr == ""  # once, not under every cell

    run(kernel, "%autoreload 0")
    run(kernel, "%autoreload 2")
    assert "%autoreload is on as well" in run(kernel, "1").stderr  # turned on again: said again
