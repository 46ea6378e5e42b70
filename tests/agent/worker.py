"""A small service process for the agent tests: imports an app module, calls livefix.listen().

Run as `python worker.py APP_DIR JSON_OPTIONS`. Prints one JSON line
`{"ready": ADDRESS, "pid": PID, ...}` once the agent listens, then answers stdin lines:
`import` imports the app (with `import_on_command`), `call` prints the app's `shop.total(2)` (what its users see), `history` prints
`livefix.history()`, `traced` the threads a tracer saw, `exit` ends. With `busy`, a background thread keeps
calling the app, as a busy service would.
"""

from __future__ import annotations

import json
import sys
import threading

app_dir, raw_options = sys.argv[1], sys.argv[2]
sys.path.insert(0, app_dir)
options = json.loads(raw_options)

import importlib  # noqa: E402

import livefix  # noqa: E402

# The app (written by the test into app_dir): module `shop` unless the test names another.
# With `late_import`, it is imported after listen(), as a service that opts in too early.
app_name = options.pop("app", "shop")
late_import = options.pop("late_import", False)
# With `import_on_command`, the app is imported only when stdin says `import` (a worker whose
# app loads lazily, or a pre-fork worker before gunicorn loads the app).
import_on_command = options.pop("import_on_command", False)
shop = None
if not late_import and not import_on_command:
    shop = importlib.import_module(app_name)
# With `save_before_listen` ([file, text]): the file is saved anew after the app loaded it and
# before livefix arrives (a fix saved while the service ran, then listen() on a signal).
saved = options.pop("save_before_listen", None)
if saved:
    import os  # noqa: E402

    target = os.path.join(app_dir, saved[0])
    with open(target, "w") as handle:
        handle.write(saved[1])
    stamp = os.stat(target).st_mtime + 2  # newer than a bytecode cache, whatever the clock's grain
    os.utime(target, (stamp, stamp))

stop = threading.Event()


def busy() -> None:
    while not stop.is_set():
        shop.total(1)
        stop.wait(0.05)  # the service's own pacing (not test synchronisation)


traced: set[str] = set()
if options.pop("trace", False):
    # A tracer like a debugger's or coverage's, installed for every new thread.
    def tracer(frame, event, arg):  # type: ignore[no-untyped-def]
        traced.add(threading.current_thread().name)
        return tracer  # trace lines too, as a debugger does

    def profiler(frame, event, arg):  # type: ignore[no-untyped-def]
        traced.add(threading.current_thread().name)

    threading.settrace(tracer)
    threading.setprofile(profiler)
start_busy = options.pop("busy", False)
if "limits" in options:
    from livefix.agent import Limits

    options["limits"] = Limits(**options["limits"])
agent = livefix.listen(options.pop("address", None), **options)
if late_import:
    shop = importlib.import_module(app_name)
if start_busy:
    threading.Thread(target=busy, name="service-loop", daemon=True).start()
print(json.dumps({"ready": str(agent.address), "pid": __import__("os").getpid(),
                  "catchUp": agent.catch_up, "listening": agent.listening}), flush=True)

for line in sys.stdin:
    command = line.strip()
    if command == "import":
        shop = importlib.import_module(app_name)
        print(json.dumps({"catchUp": agent.catch_up, "pending": livefix.default_engine().pending.pending()}), flush=True)
    elif command == "call":
        print(json.dumps(shop.total(2)), flush=True)
    elif command == "history":
        try:
            print(json.dumps(livefix.history()), flush=True)
        except NotImplementedError:
            print(json.dumps(None), flush=True)
    elif command == "traced":
        print(json.dumps(sorted(traced)), flush=True)
    elif command == "exit":
        break
stop.set()
agent.close()
