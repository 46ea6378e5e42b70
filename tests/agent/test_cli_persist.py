"""`livefix persist` and the unpersisted list of `livefix status`, against real service
processes (tests/agent/worker.py) and the real command line, on a file whose bytes outside
the fixed definitions must survive: a latin-1 coding cookie and a latin-1 character, CRLF
line breaks, tab-indented bodies beside space-indented ones, comments above the
definitions and odd spacing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from agent_support import WAIT, Worker

from livefix.errors import LivefixError
from livefix.persist_command import write_atomically

APP = (
    "# -*- coding: latin-1 -*-\n"
    "# Prices for the caf\u00e9.\n"
    "import math\n"
    "\n"
    "RATE  =  10      # odd spacing, kept\n"
    "\n"
    "\n"
    "class Cart:\n"
    '\t"""A cart."""\n'
    "\n"
    "\tdef __init__(self):\n"
    "\t\tself.items = []\n"
    "\n"
    "\t# the total, as billed\n"
    "\tdef total(self, n):\n"
    "\t\treturn n * RATE\n"
    "\n"
    "\n"
    "# the price of n items\n"
    "def price(n):\n"
    "\treturn n * RATE   # ten each\n"
    "\n"
    "\n"
    "def total(n):\n"
    "    return price(n) + 1   # spaces here, tabs above\n"
)
PRICE = "def price(n):\n\treturn n * RATE   # ten each\n"
CART_TOTAL = "\tdef total(self, n):\n\t\treturn n * RATE\n"
# The fixes as a person writes them: spaces, LF, UTF-8 (the CLI reads fix.py as UTF-8).
PRICE_FIX = "def price(n):\n    # fixed: a hundred each, caf\u00e9 prices\n    return n * RATE * 10\n"
CART_FIX = "class Cart:\n    def total(self, n):\n        return n * RATE + 1\n"
# ... and as the file's own style has them once persisted: tabs.
PRICE_PERSISTED = "def price(n):\n\t# fixed: a hundred each, caf\u00e9 prices\n\treturn n * RATE * 10\n"
CART_TOTAL_PERSISTED = "\tdef total(self, n):\n\t\treturn n * RATE + 1\n"


def file_bytes(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("latin-1")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    # Run where a user runs it, not from the checkout's root: there `python -m` would find the
    # checkout's livefix/ first, which does not hold livefix.lsp (the persister).
    return subprocess.run([sys.executable, "-m", "livefix.cli", *args], capture_output=True, text=True,
                          timeout=WAIT * 2, stdin=subprocess.DEVNULL, cwd=os.path.dirname(sys.executable))


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture
def shop_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "shop_app"
    directory.mkdir()
    (directory / "shop.py").write_bytes(file_bytes(APP))
    return directory


@pytest.fixture
def fixes(tmp_path: Path) -> Path:
    path = tmp_path / "fix.py"
    path.write_text(PRICE_FIX + "\n\n" + CART_FIX, encoding="utf-8")
    return path


def unpersisted(target: list[str]) -> Any:
    return json.loads(ok(cli("status", *target, "--json")).stdout)


def test_persist_writes_what_runs_byte_exact_and_status_follows(
    spawn: Any, runtime: Path, shop_dir: Path, fixes: Path
) -> None:
    shop = shop_dir / "shop.py"
    shop.chmod(0o640)
    worker = spawn(app_dir=shop_dir)
    target = str(worker.pid)
    assert worker.call() == 21
    ok(cli("apply", target, f"{fixes}::price", "--module", "shop"))
    ok(cli("apply", target, f"{fixes}::Cart.total", "--module", "shop"))
    assert worker.call() == 201

    status = ok(cli("status", target))
    assert "unpersisted: 2 definitions run that their files do not say yet" in status.stdout
    assert f"`livefix persist {worker.pid}` writes them there" in status.stdout
    assert f"shop.price (generation 1) -> {shop}" in status.stdout
    assert f"shop.Cart.total (generation 2) -> {shop}" in status.stdout
    body = unpersisted([target])
    assert body["unpersisted"] == [
        {"generation": 1, "module": "shop", "qualname": "price", "path": str(shop)},
        {"generation": 2, "module": "shop", "qualname": "Cart.total", "path": str(shop)},
    ]

    dry = ok(cli("persist", target, "--dry-run"))
    assert f"Would persist shop.price (generation 1) into {shop}" in dry.stdout
    assert f"+\t# fixed: a hundred each, caf\u00e9 prices" in dry.stdout and "-\treturn n * RATE   # ten each" in dry.stdout
    assert "Dry run: nothing was written." in dry.stdout
    assert shop.read_bytes() == file_bytes(APP)

    done = ok(cli("persist", target))
    assert f"Persisted shop.price (generation 1) into {shop}" in done.stdout
    assert f"Persisted shop.Cart.total (generation 2) into {shop}" in done.stdout
    expected = APP.replace(PRICE, PRICE_PERSISTED).replace(CART_TOTAL, CART_TOTAL_PERSISTED)
    assert shop.read_bytes() == file_bytes(expected)  # every byte outside the two definitions kept
    assert oct(shop.stat().st_mode & 0o777) == oct(0o640)
    assert [p.name for p in shop_dir.iterdir() if p.name != "__pycache__"] == ["shop.py"]  # no temporary left
    assert worker.call() == 201  # the process runs what it ran

    after = ok(cli("status", target))
    assert "unpersisted" not in after.stdout and "no loaded module differs from its file" in after.stdout
    assert unpersisted([target])["unpersisted"] == [] and unpersisted([target])["modules"] == []
    again = ok(cli("persist", target))
    assert again.stdout.strip() == "Nothing to persist: the files already say what runs."
    assert shop.read_bytes() == file_bytes(expected)
    # A new process imports what the old one runs.
    assert subprocess.run([sys.executable, "-c", "import shop; print(shop.total(2), shop.Cart().total(1))"],
                          cwd=shop_dir, capture_output=True, text=True, timeout=WAIT).stdout.split() == ["201", "11"]


def test_qualnames_choose_what_is_persisted(spawn: Any, runtime: Path, shop_dir: Path, fixes: Path) -> None:
    shop = shop_dir / "shop.py"
    worker = spawn(app_dir=shop_dir)
    target = str(worker.pid)
    ok(cli("apply", target, f"{fixes}::price", "--module", "shop"))
    ok(cli("apply", target, f"{fixes}::Cart.total", "--module", "shop"))
    done = ok(cli("persist", target, "shop.Cart", "nosuch.thing", "--json"))
    result = json.loads(done.stdout)
    assert [(d["qualname"], d["outcome"]) for d in result["definitions"]] == [("Cart.total", "persisted")]
    assert result["unmatched"] == ["nosuch.thing"]
    assert shop.read_bytes() == file_bytes(APP.replace(CART_TOTAL, CART_TOTAL_PERSISTED))
    assert [(e["qualname"], e["generation"]) for e in unpersisted([target])["unpersisted"]] == [("price", 1)]
    ok(cli("persist", target, "shop:price"))
    assert unpersisted([target])["unpersisted"] == []


def test_a_rolled_back_generation_is_not_persisted(spawn: Any, runtime: Path, shop_dir: Path, fixes: Path,
                                                   tmp_path: Path) -> None:
    shop = shop_dir / "shop.py"
    worker = spawn(app_dir=shop_dir)
    target = str(worker.pid)
    ok(cli("apply", target, f"{fixes}::price", "--module", "shop"))
    ok(cli("rollback", target))
    assert unpersisted([target])["unpersisted"] == []
    assert ok(cli("persist", target)).stdout.strip() == "Nothing to persist: the files already say what runs."
    assert shop.read_bytes() == file_bytes(APP)
    # Of two generations, the one rolled back is not what is written: the one that runs is.
    ok(cli("apply", target, f"{fixes}::price", "--module", "shop"))
    worse = tmp_path / "worse.py"
    worse.write_text("def price(n):\n    return -1\n")
    ok(cli("apply", target, f"{worse}::price", "--module", "shop"))
    ok(cli("rollback", target))
    assert [(e["qualname"], e["generation"]) for e in unpersisted([target])["unpersisted"]] == [("price", 2)]
    assert "Persisted shop.price (generation 2)" in ok(cli("persist", target)).stdout
    assert shop.read_bytes() == file_bytes(APP.replace(PRICE, PRICE_PERSISTED))


def test_a_file_that_does_not_parse_is_refused_and_left_alone(
    spawn: Any, runtime: Path, shop_dir: Path, fixes: Path
) -> None:
    """The file was edited and no longer parses: status says why it cannot tell, persist refuses
    with a structured error and changes no byte."""
    shop = shop_dir / "shop.py"
    worker = spawn(app_dir=shop_dir)
    target = str(worker.pid)
    ok(cli("apply", target, f"{fixes}::price", "--module", "shop"))
    broken = shop.read_bytes().replace(b"def total(n):", b"def total(n:")
    shop.write_bytes(broken)
    status = unpersisted([target])
    (entry,) = status["unpersisted"]
    assert entry["qualname"] == "price" and "does not parse" in entry["fileError"]
    assert "does not parse" in ok(cli("status", target)).stdout
    done = cli("persist", target, "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    result = json.loads(done.stdout)
    (definition,) = result["definitions"]
    assert definition["outcome"] == "refused" and definition["error"]["kind"] == "syntax"
    assert definition["error"]["qualname"] == "price" and definition["error"]["path"] == str(shop)
    assert shop.read_bytes() == broken
    human = cli("persist", target)
    assert human.returncode == 1
    assert "Not persisted: shop.price (generation 1): shop.price into" in human.stdout
    assert "the file does not parse (line 24" in human.stdout and "document" not in human.stdout
    # A dry run says what it would not do, that it wrote nothing, and exits as the real run would.
    dry = cli("persist", target, "--dry-run")
    assert dry.returncode == 1, dry.stdout + dry.stderr
    assert dry.stdout.startswith("Would not persist shop.price (generation 1): shop.price into")
    assert "the file does not parse (line 24" in dry.stdout and "Not persisted" not in dry.stdout
    assert "document" not in dry.stdout and dry.stdout.rstrip().endswith("Dry run: nothing was written.")
    assert shop.read_bytes() == broken
    assert worker.call() == 201


TWO_SHOP = "import extra\n\n\ndef price(n):\n    return n * 10\n\n\ndef total(n):\n    return price(n) + extra.bonus(n)\n"


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """An app of two modules (two files): `shop` and the `extra` it imports."""
    directory = tmp_path / "two"
    directory.mkdir()
    (directory / "shop.py").write_text(TWO_SHOP)
    (directory / "extra.py").write_text("def bonus(n):\n    return 1\n")
    return directory


def fix_both(spawn: Any, app_dir: Path, tmp_path: Path) -> tuple[Worker, str]:
    """A service running a fix of shop.price (generation 1) and one of extra.bonus (generation 2)."""
    fix = tmp_path / "fix.py"
    fix.write_text("def price(n):\n    return n * 100\n\n\ndef bonus(n):\n    return 2\n")
    worker = spawn(app_dir=app_dir)
    target = str(worker.pid)
    ok(cli("apply", target, f"{fix}::price", "--module", "shop"))
    ok(cli("apply", target, f"{fix}::bonus", "--module", "extra"))
    assert worker.call() == 202
    return worker, target


def test_one_refused_file_does_not_stop_another(spawn: Any, runtime: Path, app_dir: Path, tmp_path: Path) -> None:
    worker, target = fix_both(spawn, app_dir, tmp_path)
    broken = "import extra\n\n\ndef price(n):\n    return n * 10\n\n\ndef total(n:\n    pass\n"
    (app_dir / "shop.py").write_text(broken)
    done = cli("persist", target)
    assert done.returncode == 1
    assert f"Persisted extra.bonus (generation 2) into {app_dir / 'extra.py'}" in done.stdout
    assert "Not persisted: shop.price (generation 1)" in done.stdout
    assert (app_dir / "extra.py").read_text() == "def bonus(n):\n    return 2\n"
    assert (app_dir / "shop.py").read_text() == broken


def test_an_edit_made_in_the_file_since_the_fix_is_not_overwritten(
    spawn: Any, runtime: Path, app_dir: Path, tmp_path: Path
) -> None:
    """A fix applied, then the same function edited by hand in its file: the file's version is
    neither what runs nor what ran before the fix. Status flags it; persist refuses it, naming
    it and the ways on, and writes nothing to that file (the other file is still written);
    --yes writes what runs over the edit."""
    shop, extra = app_dir / "shop.py", app_dir / "extra.py"
    worker, target = fix_both(spawn, app_dir, tmp_path)
    edited = TWO_SHOP.replace("return n * 10\n", "return n * 30  # hand edit\n")
    shop.write_text(edited)
    entries = unpersisted([target])["unpersisted"]
    assert [(e["qualname"], e.get("editedInFile", False)) for e in entries] == [("price", True), ("bonus", False)]

    dry = cli("persist", target, "--dry-run")
    assert dry.returncode == 1, dry.stdout + dry.stderr
    assert f"Would not persist shop.price (generation 1): {shop} has an edit of shop.price" in dry.stdout
    assert f"Would persist extra.bonus (generation 2) into {extra}" in dry.stdout
    done = cli("persist", target, "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert [(d["qualname"], d["outcome"]) for d in result["definitions"]] == [("price", "refused"), ("bonus", "persisted")]
    error = result["definitions"][0]["error"]
    assert (error["kind"], error["reason"], error["qualname"], error["path"]) == ("invalid", "editedInFile", "price", str(shop))
    assert "made since the fix" in error["message"] and "nothing was written" in error["message"]
    assert f"livefix reload {target} shop" in error["message"] and "--yes" in error["message"]
    assert shop.read_text() == edited and extra.read_text() == "def bonus(n):\n    return 2\n"
    assert worker.call() == 202  # the process runs what it ran

    human = cli("persist", target)
    assert human.returncode == 1
    assert human.stdout.startswith(f"Not persisted: shop.price (generation 1): {shop} has an edit of shop.price")
    assert shop.read_text() == edited
    forced = ok(cli("persist", target, "--yes"))
    assert forced.stdout.strip() == f"Persisted shop.price (generation 1) into {shop}"
    assert shop.read_text() == TWO_SHOP.replace("return n * 10\n", "return n * 100\n")
    assert unpersisted([target])["unpersisted"] == []


def test_reloading_runs_the_files_edit_instead(spawn: Any, runtime: Path, app_dir: Path, tmp_path: Path) -> None:
    shop = app_dir / "shop.py"
    worker, target = fix_both(spawn, app_dir, tmp_path)
    ok(cli("persist", target, "extra"))
    edited = TWO_SHOP.replace("return n * 10\n", "return n * 30  # hand edit\n")
    shop.write_text(edited)
    ok(cli("reload", target, "shop"))
    assert worker.call() == 62  # the hand edit runs
    assert ok(cli("persist", target)).stdout.strip() == "Nothing to persist: the files already say what runs."
    assert shop.read_text() == edited


def test_status_after_a_persist_says_only_what_is_true(spawn: Any, runtime: Path, shop_dir: Path,
                                                       tmp_path: Path) -> None:
    """A fix that adds a decorator and a line, persisted into the CRLF, tab-indented file: the
    file says what runs, at the lines it runs at. A comment added to the file afterwards: status
    names what runs at other lines because of it, and never claims lines moved that did not."""
    shop = shop_dir / "shop.py"
    shop.write_bytes(file_bytes(APP.replace("import math\n", "import functools, math\n")))
    fix = tmp_path / "fix.py"
    fix.write_text("@functools.lru_cache\ndef price(n):\n    cents = n * RATE * 10\n    return cents\n")
    worker = spawn(app_dir=shop_dir)
    target = str(worker.pid)
    ok(cli("apply", target, f"{fix}::price", "--module", "shop"))
    assert worker.call() == 201
    ok(cli("persist", target))
    assert b"\r\n@functools.lru_cache\r\ndef price(n):\r\n\tcents = n * RATE * 10\r\n\treturn cents\r\n" in shop.read_bytes()
    assert ok(cli("status", target)).stdout.splitlines()[1:] == ["no loaded module differs from its file"]

    persisted = shop.read_bytes()
    shop.write_bytes(persisted.replace(b"\r\ndef total(n):", b"\r\n# added by hand\r\ndef total(n):"))
    status = ok(cli("status", target)).stdout
    assert "moved: total (same code, at other lines than the file's)" in status and "only comments" not in status
    shop.write_bytes(persisted + b"# the end\r\n")
    status = ok(cli("status", target)).stdout
    assert "moved" not in status and "other lines" not in status and "unpersisted" not in status


def test_a_path_missing_on_this_machine_is_a_clear_error(spawn: Any, runtime: Path, shop_dir: Path,
                                                        fixes: Path) -> None:
    worker = spawn(app_dir=shop_dir)
    ok(cli("apply", str(worker.pid), f"{fixes}::price", "--module", "shop"))
    (shop_dir / "shop.py").unlink()  # as a container's path would be, seen from the host
    done = cli("persist", str(worker.pid))
    assert done.returncode == 1
    assert "does not exist on this machine" in done.stdout and "run livefix persist where" in done.stdout
    assert not (shop_dir / "shop.py").exists()


def start_fleet(spawn: Any, app_dir: Path, count: int) -> list[Worker]:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _: spawn(app_dir=app_dir, service="shop"), range(count)))


def test_a_fleet_is_persisted_once(spawn: Any, runtime: Path, shop_dir: Path, fixes: Path) -> None:
    shop = shop_dir / "shop.py"
    workers = start_fleet(spawn, shop_dir, 2)
    ok(cli("apply", "--service", "shop", f"{fixes}::price", "--module", "shop"))
    assert [w.call() for w in workers] == [201, 201]
    status = ok(cli("status", "--service", "shop"))
    assert status.stdout.count("`livefix persist --service shop` writes it there") == 2
    done = ok(cli("persist", "--service", "shop"))
    assert done.stdout.count("Persisted shop.price (generation 1)") == 1, done.stdout
    assert shop.read_bytes() == file_bytes(APP.replace(PRICE, PRICE_PERSISTED))
    status = ok(cli("status", "--service", "shop", "--json"))
    assert [w["body"]["unpersisted"] for w in json.loads(status.stdout)["workers"]] == [[], []]
    assert ok(cli("persist", "service:shop")).stdout.strip() == "Nothing to persist: the files already say what runs."


def test_a_fleet_whose_workers_differ_is_refused(spawn: Any, runtime: Path, shop_dir: Path, fixes: Path,
                                                  tmp_path: Path) -> None:
    shop = shop_dir / "shop.py"
    first, second = start_fleet(spawn, shop_dir, 2)
    ok(cli("apply", str(first.pid), f"{fixes}::price", "--module", "shop"))  # one worker only
    done = cli("persist", "--service", "shop")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "the workers do not run the same code" in done.stderr and "nothing was written" in done.stderr
    assert f"one version on worker {first.pid}" in done.stderr
    assert f"what the file says on worker {second.pid}" in done.stderr
    assert shop.read_bytes() == file_bytes(APP)
    # Two different fixes: refused the same way, naming both.
    other = tmp_path / "other.py"
    other.write_text("def price(n):\n    return n * 7\n")
    ok(cli("apply", str(second.pid), f"{other}::price", "--module", "shop"))
    refused = cli("persist", "--service", "shop", "--json")
    assert refused.returncode == 1
    error = json.loads(refused.stdout)["error"]
    assert error["reason"] == "workersDiffer" and sorted(error["workers"]) == sorted([first.pid, second.pid])
    assert shop.read_bytes() == file_bytes(APP)


def test_a_file_changed_while_persisting_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_bytes(b"def f():\r\n\treturn 1\r\n")
    before = os.stat(path)
    read = path.read_bytes()
    path.write_bytes(b"def f():\r\n\treturn 2\r\n")  # someone saved meanwhile
    with pytest.raises(LivefixError) as caught:
        write_atomically(str(path), read, before, b"def f():\r\n\treturn 3\r\n")
    assert caught.value.kind == "busy" and caught.value.details["reason"] == "changedOnDisk"
    assert path.read_bytes() == b"def f():\r\n\treturn 2\r\n"
    assert [p.name for p in tmp_path.iterdir()] == ["m.py"]
    write_atomically(str(path), path.read_bytes(), os.stat(path), b"def f():\r\n\treturn 3\r\n")
    assert path.read_bytes() == b"def f():\r\n\treturn 3\r\n"
