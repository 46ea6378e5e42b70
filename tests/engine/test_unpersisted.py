"""What runs that no file says: `Engine.unpersisted()`, and drift once a file says it again.

Standard library only (these run on every interpreter 3.10-3.13): the files are written
here the way the language server's persister writes them (the file's own indentation and
line breaks), not with it.
"""

from __future__ import annotations

import os
import time

import pytest

SHOP = """\
# pricing
import math


class Cart:
    def __init__(self):
        self.items = []

    def total(self):
        return sum(self.items)

    @property
    def size(self):
        return len(self.items)

    @size.setter
    def size(self, value):
        pass


def price(n):
    return n * 10


def tax(n):
    return math.ceil(n * 0.2)
"""

PRICE_FIX = "def price(n):\n    # ten times ten\n    return n * 100\n"


def fix(m, qualname, source):
    return [{"module": m.__name__, "qualname": qualname, "source": source}]


def listed(engine):
    return [(u.module, u.qualname, u.generation) for u in engine.unpersisted()]


@pytest.fixture
def shop(ws):
    return ws.module(SHOP)


def test_a_fix_is_unpersisted_until_the_file_says_it(engine, ws, shop):
    assert engine.unpersisted() == []
    engine.apply(fix(shop, "price", PRICE_FIX))
    (entry,) = engine.unpersisted()
    assert (entry.module, entry.qualname, entry.generation) == (shop.__name__, "price", 1)
    assert entry.path == shop.__file__ and entry.sources == (PRICE_FIX,)
    assert not entry.removed and entry.file_error is None
    assert entry.to_wire() == {"generation": 1, "module": shop.__name__, "qualname": "price", "path": shop.__file__}
    assert entry.sources_to_wire() == [{**entry.to_wire(), "source": PRICE_FIX}]
    # An edit elsewhere in the file does not persist it; writing the running text does.
    ws.edit(shop, "# pricing", "# pricing, edited while the fix ran")
    assert listed(engine) == [(shop.__name__, "price", 1)]
    ws.edit(shop, "def price(n):\n    return n * 10\n", PRICE_FIX)
    assert engine.unpersisted() == []


def test_persisted_in_the_files_own_style_counts_and_leaves_no_drift(engine, ws, shop):
    """Tabs and CRLF where the fix had spaces and LF: the same code, so persisted, and
    `modified_modules` finds the module matching its file (no reload needed)."""
    path = ws.path(shop)
    tabbed = SHOP.replace("    ", "\t")
    path.write_bytes(tabbed.replace("\n", "\r\n").encode())
    ws.engine.reload_modules([shop.__name__])  # the process runs the tab-indented file
    assert engine.modified_modules([shop.__name__]) == []
    engine.apply(fix(shop, "price", PRICE_FIX))
    engine.apply(fix(shop, "Cart.total", "def total(self):\n    return sum(self.items) + 1\n"))
    assert listed(engine) == [(shop.__name__, "price", 2), (shop.__name__, "Cart.total", 3)]
    assert {m["name"] for m in engine.modified_modules([shop.__name__])} == {shop.__name__}
    persisted = tabbed.replace("def price(n):\n\treturn n * 10\n", "def price(n):\n\t# ten times ten\n\treturn n * 100\n")
    persisted = persisted.replace("\t\treturn sum(self.items)\n", "\t\treturn sum(self.items) + 1\n")
    path.write_bytes(persisted.replace("\n", "\r\n").encode())
    assert engine.unpersisted() == []
    assert engine.modified_modules([shop.__name__]) == []
    assert shop.price(1) == 100 and shop.Cart().total() == 1


def test_a_comment_inside_the_definition_counts(engine, ws, shop):
    engine.apply(fix(shop, "price", PRICE_FIX))
    ws.edit(shop, "def price(n):\n    return n * 10\n", PRICE_FIX.replace("ten times ten", "a hundred"))
    assert listed(engine) == [(shop.__name__, "price", 1)]


def test_a_block_moved_under_another_indentation_is_not_the_same_code(engine, ws):
    m = ws.module("def f(x):\n    if x:\n        x += 1\n    return x\n")
    engine.apply(fix(m, "f", "def f(x):\n    if x:\n        x += 1\n        return x\n    return 0\n"))
    ws.write(m, "def f(x):\n    if x:\n        x += 1\n    return x\n    return 0\n")  # same lines, other blocks
    assert [u.qualname for u in engine.unpersisted()] == ["f"]


def test_a_definition_the_file_lacks_is_unpersisted(engine, ws, shop):
    engine.apply(fix(shop, "Cart.clear", "def clear(self):\n    self.items = []\n"))
    (entry,) = engine.unpersisted()
    assert entry.qualname == "Cart.clear" and entry.sources == ("def clear(self):\n    self.items = []\n",)
    ws.edit(shop, "    @property\n", "    def clear(self):\n        self.items = []\n\n    @property\n")
    assert engine.unpersisted() == []


def test_the_newest_active_generation_counts_and_rollback_withdraws(engine, ws, shop):
    engine.apply(fix(shop, "price", PRICE_FIX))
    engine.apply(fix(shop, "price", "def price(n):\n    return n * 1000\n"))
    (entry,) = engine.unpersisted()
    assert entry.generation == 2 and entry.sources == ("def price(n):\n    return n * 1000\n",)
    engine.rollback()
    (entry,) = engine.unpersisted()
    assert entry.generation == 1 and entry.sources == (PRICE_FIX,)
    engine.rollback()
    assert engine.unpersisted() == []  # it runs what it loaded: nothing of a generation is left


def test_what_a_reload_read_from_the_file_is_never_unpersisted(engine, ws, shop):
    """The file was newer than the process when it was reloaded; if it changes again, the file
    is newer still (status shows the module as differing), not the process."""
    engine.apply(fix(shop, "price", PRICE_FIX))
    ws.edit(shop, "return n * 10\n", "return n * 11\n")
    engine.reload_modules([shop.__name__])  # the file's price replaces the unsaved fix
    assert shop.price(1) == 11 and engine.unpersisted() == []
    ws.edit(shop, "return n * 11\n", "return n * 12\n")
    assert engine.unpersisted() == []
    assert [m["changed"] for m in engine.modified_modules([shop.__name__])] == [["price"]]


def test_a_reload_given_its_source_is_no_file_reading(engine, ws, shop):
    engine.reload_module(shop.__name__, source=SHOP.replace("n * 10", "n * 7"))
    assert listed(engine) == [(shop.__name__, "price", 1)]


def test_a_file_that_does_not_parse_cannot_be_known_to_have_it(engine, ws, shop):
    engine.apply(fix(shop, "price", PRICE_FIX))
    ws.edit(shop, "def tax(n):", "def tax(n:")
    (entry,) = engine.unpersisted()
    assert entry.sources == (PRICE_FIX,) and "does not parse" in entry.file_error
    assert entry.to_wire()["fileError"] == entry.file_error
    os.remove(ws.path(shop))
    (entry,) = engine.unpersisted()
    assert entry.sources == (PRICE_FIX,) and "cannot read" in entry.file_error


def test_a_property_accessor_is_compared_as_itself(engine, ws, shop):
    setter = "@size.setter\ndef size(self, value):\n    self.items = [0] * value\n"
    engine.apply(fix(shop, "Cart.size", setter))
    (entry,) = engine.unpersisted()
    assert entry.qualname == "Cart.size" and entry.sources == (setter,)  # not the getter, which the file has


def test_a_removed_definition_the_file_still_has(engine, ws, shop):
    engine.apply([{"module": shop.__name__, "source": SHOP.replace("\n\ndef tax(n):\n    return math.ceil(n * 0.2)\n", "")}])
    assert not hasattr(shop, "tax")
    (entry,) = engine.unpersisted()
    assert entry.qualname == "tax" and entry.removed and entry.sources == ()
    assert entry.sources_to_wire() == [{**entry.to_wire(), "source": None}] and entry.to_wire()["removed"] is True


def test_module_statements_are_not_definitions_to_persist(engine, ws):
    m = ws.module("RATE = 10\n\n\ndef price(n):\n    return n * RATE\n")
    engine.apply([{"module": m.__name__, "source": "RATE = 20\n\n\ndef price(n):\n    return n * RATE\n"}])
    assert m.price(1) == 20 and engine.unpersisted() == []


def test_definitions_in_blocks_and_nested_classes(engine, ws):
    m = ws.module(
        "import sys\n\nif sys.version_info >= (3,):\n    def f():\n        return 1\n\n\n"
        "class Outer:\n    class Inner:\n        def g(self):\n            return 2\n"
    )
    engine.apply(fix(m, "Outer.Inner.g", "def g(self):\n    return 3\n"))
    assert [u.qualname for u in engine.unpersisted()] == ["Outer.Inner.g"]
    ws.edit(m, "            return 2\n", "            return 3\n")
    assert engine.unpersisted() == []


def test_an_unchanged_file_is_not_read_again(engine, ws, shop):
    """Status asks often: a file whose stamp is old enough to trust is stat-ed, not read."""
    engine.apply(fix(shop, "price", PRICE_FIX))
    path = ws.path(shop)
    old = time.time() - 60
    os.utime(path, (old, old))
    first = engine.unpersisted()
    known = engine._unpersisted._known[shop.__name__]
    assert engine.unpersisted() == first and engine._unpersisted._known[shop.__name__] is known
    ws.edit(shop, "def price(n):\n    return n * 10\n", PRICE_FIX)  # a new stamp: read again
    assert engine.unpersisted() == []
    engine.rollback()
    assert engine.unpersisted() == [] and shop.__name__ not in engine._unpersisted._known


# -- a file edited since the fix ----------------------------------------------------------------

TAX = "def tax(n):\n    return math.ceil(n * 0.2)\n"
TAX_FIX = "def tax(n):\n    return math.ceil(n * 0.3)\n"
TAX_HAND = "def tax(n):\n    return math.ceil(n * 0.25)  # hand edit\n"


def edited(engine):
    return [(u.qualname, u.generation) for u in engine.unpersisted() if u.edited]


def test_a_definition_edited_in_the_file_since_the_fix_is_flagged(engine, ws, shop):
    """The file's version is neither what runs nor what ran before the fix: someone edited it
    since, and persisting would write over that edit."""
    engine.apply(fix(shop, "tax", TAX_FIX))
    engine.apply(fix(shop, "price", PRICE_FIX))
    assert edited(engine) == [] and "editedInFile" not in engine.unpersisted()[0].to_wire()
    ws.edit(shop, TAX, TAX_HAND)
    assert edited(engine) == [("tax", 1)]  # price, behind the fix only, is not
    (entry,) = [u for u in engine.unpersisted() if u.qualname == "tax"]
    assert entry.sources == (TAX_FIX,) and entry.to_wire()["editedInFile"] is True
    # A comment is an edit too; the edit taken back out leaves the file only behind the fix.
    ws.edit(shop, TAX_HAND, TAX.replace("0.2)", "0.2)  # why 0.2"))
    assert edited(engine) == [("tax", 1)]
    ws.edit(shop, "  # why 0.2", "")
    assert edited(engine) == []
    # Deleted from the file since: an edit as well (persisting would put it back).
    ws.edit(shop, "\n\n" + TAX, "\n")
    assert edited(engine) == [("tax", 1)]


def test_every_version_run_since_the_file_was_read_is_the_files_past(engine, ws, shop):
    """Several fixes of one definition: a file holding any version the process ran before the
    newest is behind it, not edited; what the process read from the file last ends that past."""
    engine.apply(fix(shop, "tax", TAX_FIX))
    engine.apply(fix(shop, "tax", "def tax(n):\n    return 0\n"))
    ws.edit(shop, TAX, TAX_FIX)
    assert [(u.qualname, u.generation, u.edited) for u in engine.unpersisted()] == [("tax", 2, False)]
    engine.rollback()  # back to the first fix, which the file now has
    assert engine.unpersisted() == []
    ws.edit(shop, TAX_FIX, TAX_HAND)
    engine.reload_modules([shop.__name__])  # the process runs the hand edit, read from the file
    assert engine.unpersisted() == []
    engine.apply(fix(shop, "tax", "def tax(n):\n    return 1\n"))
    assert edited(engine) == []  # the file has what ran before the fix: the hand edit
    ws.edit(shop, TAX_HAND, TAX)  # the original again: not what the process last read from the file
    assert edited(engine) == [("tax", 4)]


def test_a_definition_the_fix_added_is_not_an_edit_the_file_lacks(engine, ws, shop):
    engine.apply(fix(shop, "Cart.clear", "def clear(self):\n    self.items = []\n"))
    ws.edit(shop, TAX, TAX_HAND)  # an edit of another definition
    (entry,) = engine.unpersisted()
    assert entry.qualname == "Cart.clear" and not entry.edited


# -- status once the file says what runs ---------------------------------------------------------


def test_status_after_a_persist_says_what_runs_at_other_lines_and_nothing_else(engine, ws, shop):
    """The file says what runs, but not line for line: status names the definitions that run
    at other lines than the file's (a reload moves them), and claims none when none does."""
    engine.apply(fix(shop, "price", PRICE_FIX))
    ws.edit(shop, "def price(n):\n    return n * 10\n", PRICE_FIX)  # persisted
    assert engine.unpersisted() == [] and engine.modified_modules([shop.__name__]) == []
    # A comment line the file has and the running text lacks, above tax: tax runs a line early.
    ws.edit(shop, "def tax(n):", "# a comment added by hand\ndef tax(n):")
    assert engine.modified_modules([shop.__name__]) == [{
        "name": shop.__name__, "path": shop.__file__, "changed": [], "added": [], "removed": [], "moved": ["tax"],
    }]
    # One at the end of the file moves nothing: no definition is said to run at other lines.
    ws.edit(shop, "# a comment added by hand\n", "")
    ws.edit(shop, "return math.ceil(n * 0.2)\n", "return math.ceil(n * 0.2)\n# the end\n")
    (status,) = engine.modified_modules([shop.__name__])
    assert status["changed"] == [] and "moved" not in status
    assert "other lines" not in status["note"] and "comments" in status["note"]


def test_a_class_whose_text_differs_only_in_comments_is_not_changed(engine, ws, shop):
    ws.edit(shop, "    def total(self):", "    # the total\n    def total(self):")
    (status,) = engine.modified_modules([shop.__name__])
    assert status["changed"] == status["added"] == status["removed"] == []
    assert status["moved"] == ["Cart.size", "Cart.total", "price", "tax"]


def test_an_answer_found_while_a_fix_was_verified_is_not_kept(engine, ws, shop):
    """A commit sets the running text, verifies, then records its generation: a status asked in
    between sees the new text without the generation that made it, and what it finds then must
    not outlive the commit (the file's stamp is old enough to be trusted)."""
    engine.apply(fix(shop, "tax", TAX_FIX))
    ws.edit(shop, TAX, TAX_FIX)  # persisted
    old = time.time() - 60
    os.utime(ws.path(shop), (old, old))
    engine.apply(fix(shop, "tax", "def tax(n):\n    return 0\n"), verify=lambda: engine.unpersisted() is not None)
    (entry,) = engine.unpersisted()
    assert entry.generation == 2 and not entry.edited  # the file has the first fix, which ran
