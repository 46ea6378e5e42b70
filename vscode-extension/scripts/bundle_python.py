"""Bundles livefix and every wheel its adapter and language server need into the extension.

`vscode:prepublish` runs this (through scripts/bundle-python.mjs), so `vsce package` and
`vsce publish` carry it. Output, in vscode-extension/bundled/python/ (gitignored, in the .vsix):

  wheels/                  livefix built from this checkout; the wheels of its dependency closure
                           for CPython 3.10-3.13 on one VS Code target platform, at the versions
                           pinned in scripts/bundled-requirements.txt; pip's own wheel, which
                           installs them into the private environment (no ensurepip needed)
  manifest.json            what the extension reads (src/bundledPython.ts): livefix's version,
                           the target, the Pythons, pip's wheel, a digest of the wheels
  THIRD-PARTY-NOTICES.txt  name, version, licence and licence texts of every bundled distribution

Why a walk of our own instead of one `pip download`: with `--python-version`, pip evaluates
environment markers against the interpreter running it, not the target (cattrs needs
exceptiongroup on 3.10 only, libcst needs pyyaml-ft on 3.13 only). So the closure is walked
here, each requirement's marker evaluated with the target's marker environment, and every
wheel fetched with `--no-deps`.

Linux targets get two passes: wheels for glibc 2.28 (the oldest glibc VS Code runs on), which
every machine can install, and wheels for newer glibc where a package has them (debugpy's
compiled speedups need 2.34); pip picks the best one on the user's machine.

Usage: python scripts/bundle_python.py [--target linux-x64] [--force]
The target defaults to $LIVEFIX_VSCODE_TARGET, else this machine's. Needs pip and the
network (PyPI, through pip's own configuration); skipped when nothing changed since the last run.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import email.parser
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # pip vendors packaging; the build needs pip anyway
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name

EXTENSION = Path(__file__).resolve().parent.parent
REPOSITORY = EXTENSION.parent
OUT = EXTENSION / "bundled" / "python"
PINS = EXTENSION / "scripts" / "bundled-requirements.txt"
PYTHONS = ("3.10", "3.11", "3.12", "3.13")  # pyproject.toml: requires-python >=3.10,<3.14
# What pyproject.toml's [tool.setuptools] package-dir maps, plus the files its metadata reads.
# The wheel is built from a copy of these (a build in the checkout would reuse a stale build/).
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "livefix", "adapter", "lsp", "pydevd_plugins")
# Files the extension runs; a wheel without them is a broken build, not a smaller one.
REQUIRED_IN_WHEEL = (
    "livefix/adapter/__main__.py",
    "livefix/lsp/__main__.py",
    "livefix/engine/__init__.py",
    "pydevd_plugins/extensions/pydevd_plugin_livefix.py",
)


def _manylinux(arch: str, newest: int) -> list[str]:
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(newest, 4, -1)]
    return tags + [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}"]


def _linux(arch: str) -> dict:
    # glibc 2.28 is the oldest VS Code supports; 2.40 leaves room for wheels newer than 2.34.
    return {"tiers": [_manylinux(arch, 28), _manylinux(arch, 40)], "sys_platform": "linux",
            "platform_system": "Linux", "platform_machine": arch, "os_name": "posix"}


def _musl(arch: str) -> dict:
    return {"tiers": [[f"musllinux_1_2_{arch}", f"musllinux_1_1_{arch}"]], "sys_platform": "linux",
            "platform_system": "Linux", "platform_machine": arch, "os_name": "posix"}


def _mac(arch: str) -> dict:
    # pip widens a macosx tag to every older release and to universal2 by itself. macOS 11 is
    # the oldest VS Code supports; debugpy's compiled wheels need a newer one.
    return {"tiers": [[f"macosx_11_0_{arch}"], [f"macosx_15_0_{arch}"]], "sys_platform": "darwin",
            "platform_system": "Darwin", "platform_machine": arch, "os_name": "posix"}


def _windows(tag: str, machine: str) -> dict:
    return {"tiers": [[tag]], "sys_platform": "win32", "platform_system": "Windows",
            "platform_machine": machine, "os_name": "nt"}


# VS Code's target names (`vsce package --target`) -> pip platform tags and marker environment.
TARGETS = {
    "linux-x64": _linux("x86_64"),
    "linux-arm64": _linux("aarch64"),
    "alpine-x64": _musl("x86_64"),
    "alpine-arm64": _musl("aarch64"),
    "darwin-x64": _mac("x86_64"),
    "darwin-arm64": _mac("arm64"),
    "win32-x64": _windows("win_amd64", "AMD64"),
    # Not win32-arm64 nor linux-armhf: PyYAML, which libcst needs, lacks wheels there (for
    # CPython 3.10 and 3.11 on win32-arm64, for any version on armhf); use livefix.python there.
}


class BundleError(Exception):
    pass


def host_target() -> str:
    """This machine as a VS Code target (the same rule as src/bundledPython.ts)."""
    system = platform.system()
    machine = platform.machine().lower()
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    if system == "Linux":
        return f"{'linux' if platform.libc_ver()[0] == 'glibc' else 'alpine'}-{arch}"
    return f"{ {'Darwin': 'darwin', 'Windows': 'win32'}.get(system, system.lower()) }-{arch}"


def marker_environment(target: str, version: str) -> dict[str, str]:
    spec = TARGETS[target]
    return {
        "implementation_name": "cpython", "implementation_version": f"{version}.0",
        "platform_python_implementation": "CPython", "python_version": version,
        "python_full_version": f"{version}.0", "platform_release": "", "platform_version": "",
        "sys_platform": spec["sys_platform"], "platform_system": spec["platform_system"],
        "platform_machine": spec["platform_machine"], "os_name": spec["os_name"], "extra": "",
    }


def read_pins(path: Path, target: str) -> dict[str, str]:
    """NAME==VERSION lines; `NAME==VERSION; target == "darwin-x64"` overrides for one target."""
    pins, overrides = {}, {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r'([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)(?:\s*;\s*target\s*==\s*"([a-z0-9-]+)")?', line)
        if not match or (match[3] and match[3] not in TARGETS):
            raise BundleError(f'{path.name}:{number}: expected NAME==VERSION [; target == "TARGET"], not {line!r}')
        if match[3] is None:
            pins[canonicalize_name(match[1])] = match[2]
        elif match[3] == target:
            overrides[canonicalize_name(match[1])] = match[2]
    return {**pins, **overrides}


def source_files() -> list[Path]:
    files = []
    for name in SOURCES:
        path = REPOSITORY / name
        if not path.exists():
            raise BundleError(f"{path} is missing (pyproject.toml's build reads it)")
        if path.is_file():
            files.append(path)
            continue
        for file in sorted(path.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc":
                files.append(file)
    return files


def inputs_digest(target: str) -> str:
    """Everything the bundle is made from: when it is unchanged, the bundle is too."""
    digest = hashlib.sha256(f"{target}\n".encode())
    for file in [Path(__file__).resolve(), PINS, *source_files()]:
        digest.update(f"{file.relative_to(REPOSITORY)}\n".encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise BundleError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")


def build_livefix_wheel(into: Path, scratch: Path) -> Path:
    copy = scratch / "source"
    copy.mkdir()
    for name in SOURCES:
        path = REPOSITORY / name
        if path.is_dir():
            shutil.copytree(path, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, copy / name)
    pip("wheel", "--no-deps", "--wheel-dir", str(scratch / "built"), str(copy))
    [wheel] = (scratch / "built").glob("livefix-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    missing = [name for name in REQUIRED_IN_WHEEL if name not in names]
    if not any(re.fullmatch(r"livefix-[^/]+\.dist-info/licenses/LICENSE", name) for name in names):
        missing.append("livefix-*.dist-info/licenses/LICENSE")
    if missing:
        raise BundleError(f"the livefix wheel lacks {', '.join(missing)}")
    return Path(shutil.copy2(wheel, into / wheel.name))


def wheel_metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
        return email.parser.Parser().parsestr(archive.read(name).decode("utf-8"))


def wheel_name(wheel: Path) -> str:
    return canonicalize_name(wheel.name.split("-", 1)[0])


def download(requirements: list[str], version: str, platforms: list[str], scratch: Path) -> list[Path]:
    """One `pip download --no-deps` into an empty folder: its files are exactly pip's choices."""
    into = Path(tempfile.mkdtemp(prefix="download-", dir=scratch))
    args = ["download", "--no-deps", "--only-binary=:all:", "--implementation", "cp",
            "--python-version", version, "--dest", str(into)]
    for tag in platforms:
        args += ["--platform", tag]
    pip(*args, *requirements)
    return sorted(into.iterdir())


def closure(livefix: Path, target: str, version: str, pins: dict[str, str], scratch: Path) -> dict[str, list[Path]]:
    """The wheels livefix needs on CPython `version` for `target`, by distribution name."""
    environment = marker_environment(target, version)
    chosen: dict[str, list[Path]] = {"livefix": [livefix]}
    metadata = {"livefix": wheel_metadata(livefix)}
    level = ["livefix"]
    while level:
        wanted: dict[str, str] = {}
        for parent in level:
            for line in metadata[parent].get_all("Requires-Dist") or []:
                requirement = Requirement(line)
                if requirement.marker and not requirement.marker.evaluate(environment):
                    continue
                name = canonicalize_name(requirement.name)
                pin = pins.get(name)
                if pin is None:
                    raise BundleError(f"{parent} needs {requirement} on Python {version}: pin it in {PINS.name} (NAME==VERSION)")
                if not requirement.specifier.contains(pin, prereleases=True):
                    raise BundleError(f"{parent} needs {requirement}; {PINS.name} pins {name}=={pin}")
                if name not in chosen:
                    wanted[name] = pin
        if not wanted:
            break
        # The walk takes the wheels every machine of the target can install (the first tier).
        for wheel in download([f"{name}=={pin}" for name, pin in sorted(wanted.items())], version, TARGETS[target]["tiers"][0], scratch):
            chosen[wheel_name(wheel)] = [wheel]
        for name in wanted:
            metadata[name] = wheel_metadata(chosen[name][0])
        level = sorted(wanted)
    # Then the better wheels newer systems can use, for the same distributions.
    pinned = [f"{name}=={pins[name]}" for name in sorted(chosen) if name != "livefix"]
    for tier in TARGETS[target]["tiers"][1:]:
        for wheel in download(pinned, version, tier, scratch):
            files = chosen[wheel_name(wheel)]
            if wheel.name not in {f.name for f in files}:
                files.append(wheel)
    return chosen


def license_of(metadata: email.message.Message) -> str:
    if metadata.get("License-Expression"):
        return metadata["License-Expression"]
    classifiers = [c.split(" :: ")[-1] for c in metadata.get_all("Classifier") or [] if c.startswith("License ::")]
    first_line = (metadata.get("License") or "").strip().splitlines()[:1]
    return "; ".join(classifiers) or (first_line[0] if first_line else "see the licence text")


def notices(wheels: list[Path]) -> str:
    parts = [
        "Third-party software carried by the livefix extension (as wheels, installed into a private",
        "Python environment on first use). Each is distributed under its own licence, below.",
        "",
    ]
    seen = set()
    for wheel in sorted(wheels, key=lambda w: w.name.lower()):
        metadata = wheel_metadata(wheel)
        key = (wheel_name(wheel), metadata["Version"])
        if key in seen or key[0] == "livefix":
            continue
        seen.add(key)
        parts += ["=" * 78, f"{metadata['Name']} {metadata['Version']}: {license_of(metadata)}", "=" * 78]
        with zipfile.ZipFile(wheel) as archive:
            for name in sorted(archive.namelist()):
                leaf = name.rsplit("/", 1)[-1]
                in_dist_info = re.match(r"[^/]+\.dist-info/", name)
                if in_dist_info and re.match(r"(LICEN[CS]E|COPYING|NOTICE|AUTHORS)", leaf, re.I):
                    parts += [f"--- {name.split('/', 1)[1]}", archive.read(name).decode("utf-8", "replace").rstrip(), ""]
    return "\n".join(parts) + "\n"


def files_digest(wheels: list[Path]) -> str:
    digest = hashlib.sha256()
    for wheel in sorted(wheels, key=lambda w: w.name):
        digest.update(f"{wheel.name} {hashlib.sha256(wheel.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def up_to_date(inputs: str) -> bool:
    try:
        manifest = json.loads((OUT / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    wheels = OUT / "wheels"
    return manifest.get("inputs") == inputs and all((wheels / name).is_file() for name in manifest.get("wheels", []))


def bundle(target: str, force: bool) -> None:
    if target not in TARGETS:
        raise BundleError(f"unknown target {target!r}; one of {', '.join(TARGETS)}")
    inputs = inputs_digest(target)
    if not force and up_to_date(inputs):
        print(f"bundle-python: {OUT.relative_to(EXTENSION)} is up to date for {target}")
        return
    pins = read_pins(PINS, target)
    started = time.monotonic()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".python-", dir=OUT.parent) as tmp:
        scratch = Path(tmp)
        staging = scratch / "python"
        (staging / "wheels").mkdir(parents=True)
        livefix = build_livefix_wheel(staging / "wheels", scratch)
        print(f"bundle-python: built {livefix.name} ({time.monotonic() - started:.1f} s)")
        with concurrent.futures.ThreadPoolExecutor(len(PYTHONS)) as pool:
            closures = list(pool.map(lambda version: closure(livefix, target, version, pins, scratch), PYTHONS))
        pip_wheel = download([f"pip=={pins['pip']}"], PYTHONS[0], TARGETS[target]["tiers"][0], scratch)
        # One copy of each file: pure-Python wheels are chosen for every version.
        every = [wheel for chosen in closures for files in chosen.values() for wheel in files] + pip_wheel
        for wheel in {wheel.name: wheel for wheel in every}.values():
            if wheel.parent != staging / "wheels":
                shutil.copy2(wheel, staging / "wheels" / wheel.name)
        bundled = sorted((staging / "wheels").iterdir())
        (staging / "THIRD-PARTY-NOTICES.txt").write_text(notices(bundled))
        manifest = {
            "livefix": wheel_metadata(livefix)["Version"],
            "target": target,
            "pythons": list(PYTHONS),
            "pip": pip_wheel[0].name,
            "wheels": [wheel.name for wheel in bundled],
            "digest": files_digest(bundled),
            "inputs": inputs,
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if OUT.exists():
            shutil.rmtree(OUT)
        staging.rename(OUT)
    size = sum(wheel.stat().st_size for wheel in (OUT / "wheels").iterdir())
    print(f"bundle-python: {len(manifest['wheels'])} wheels ({size / 1e6:.1f} MB) for {target}, "
          f"CPython {PYTHONS[0]}-{PYTHONS[-1]}, in {OUT.relative_to(EXTENSION)} ({time.monotonic() - started:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default=os.environ.get("LIVEFIX_VSCODE_TARGET") or host_target(),
                        help="VS Code target (default: $LIVEFIX_VSCODE_TARGET, else this machine)")
    parser.add_argument("--force", action="store_true", help="rebuild even when nothing changed")
    args = parser.parse_args(argv)
    try:
        bundle(args.target, args.force)
    except BundleError as error:
        print(f"bundle-python: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
