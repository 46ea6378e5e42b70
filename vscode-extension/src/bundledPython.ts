/**
 * The extension's own Python environment for the adapter and the language server, made on
 * first use from the wheels the .vsix carries (`bundled/python/`, written by
 * scripts/bundle_python.py), as VS Code's Python Debugger carries debugpy.
 *
 * No network and nothing installed into the developer's interpreter: a private venv in the
 * extension's global storage, `<storage>/python/<livefix>-<digest>-py3.X/`, made with
 * `<base> -m venv --without-pip` (which works where ensurepip is missing, as on Debian without
 * python3-venv) and filled by the bundled pip wheel with `pip install --no-index --find-links
 * <wheels> livefix==<version>`. The base is the developer's interpreter when the bundle has
 * wheels for its version (debugpy's compiled speedups then match the debuggee), else the
 * first of python3, python3.13 ... python3.10 that has. It is built in a temporary folder and
 * renamed into place, with a marker written last, so two windows starting at once never use
 * a half-made environment. The debugged program keeps running on the developer's
 * interpreter; the adapter injects debugpy and livefix's standard-library engine into it.
 */

import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { ProcessResult, RunProcess } from './interpreter';

/** bundled/python/manifest.json (the fields the extension reads). */
export interface BundleManifest {
  livefix: string;
  /** The VS Code target the wheels are for (`linux-x64`, `darwin-arm64`, ...). */
  target: string;
  /** CPython versions with wheels, e.g. ["3.10", "3.11", "3.12", "3.13"]. */
  pythons: string[];
  /** pip's wheel, which installs the others. */
  pip: string;
  wheels: string[];
  /** sha256 of the wheels: a new bundle gets a new environment. */
  digest: string;
}

export type EnvironmentResult = { python: string; base: string } | { error: string };

/** Written last into a complete environment. */
export const MARKER = 'livefix-environment.json';
/** Imported once in a new environment: every compiled part the adapter and the server load. */
export const SMOKE_TEST = 'import livefix.adapter.client, livefix.lsp.server, libcst; libcst.parse_module("x = 1\\n")';
/** Imported when an existing environment is reused (its base interpreter may be gone). */
export const REUSE_CHECK = 'import livefix.adapter, livefix.lsp';
const PROBE =
  'import json, platform, sys, importlib.util as u; ' +
  'print(json.dumps({"implementation": platform.python_implementation(), "version": "%d.%d" % sys.version_info[:2], ' +
  '"executable": sys.executable, "venv": u.find_spec("venv") is not None}))';
const STALE_TEMPORARY_MS = 60 * 60 * 1000;

/**
 * This machine as a VS Code target name (what `vsce package --target` calls it); `glibc` is
 * Node's `process.report` header field, absent on musl (Alpine).
 */
export function currentTarget(platform: string, arch: string, glibc: string | undefined): string {
  const os = platform === 'linux' && !glibc ? 'alpine' : platform;
  return `${os}-${arch === 'arm' ? 'armhf' : arch}`;
}

export function hostTarget(): string {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return currentTarget(process.platform, process.arch, report?.header?.glibcVersionRuntime);
}

export function venvPython(directory: string, platform: string): string {
  return platform === 'win32' ? path.win32.join(directory, 'Scripts', 'python.exe') : path.posix.join(directory, 'bin', 'python');
}

export async function readManifest(root: string): Promise<BundleManifest | undefined> {
  try {
    const manifest = JSON.parse(await fs.readFile(path.join(root, 'manifest.json'), 'utf8')) as BundleManifest;
    return typeof manifest.livefix === 'string' && typeof manifest.digest === 'string' && Array.isArray(manifest.pythons) ? manifest : undefined;
  } catch {
    return undefined;
  }
}

export interface BundledPythonOptions {
  /** `<extension>/bundled/python`. */
  root: string;
  /** The extension's global storage folder. */
  storage: string;
  /** This machine (hostTarget()). */
  target: string;
  /** process.platform: where a venv keeps its interpreter. */
  platform: string;
  run: RunProcess;
  log: (line: string) => void;
  /** Shows `title` while `task` runs (a notification in VS Code). */
  progress: <T>(title: string, task: () => Promise<T>) => Promise<T>;
}

interface Probe {
  implementation: string;
  version: string;
  executable: string;
  venv: boolean;
}

const SETTING_HINT = 'or set "livefix.python" to an interpreter where livefix is installed';

export class BundledPython {
  /** One environment check or creation per environment folder at a time, and once per run when it succeeds. */
  private readonly environments = new Map<string, Promise<EnvironmentResult>>();

  constructor(private readonly options: BundledPythonOptions) {}

  /** The command that installs the bundled livefix into `python` (for people who set livefix.python). */
  async installCommand(python: string): Promise<string | undefined> {
    const manifest = await readManifest(this.options.root);
    if (!manifest || manifest.target !== this.options.target) return undefined;
    return `${quote(python)} -m pip install --no-index --find-links ${quote(path.join(this.options.root, 'wheels'))} livefix==${manifest.livefix}`;
  }

  /**
   * The private environment's interpreter, made on first use; `user` is the developer's
   * interpreter (the Python extension's, else python3), preferred as its base.
   */
  async environment(user: string): Promise<EnvironmentResult> {
    const manifest = await readManifest(this.options.root);
    if (!manifest) {
      return { error: `livefix: this build of the extension carries no Python environment (${path.join(this.options.root, 'manifest.json')} is missing or unreadable); reinstall it, ${SETTING_HINT}.` };
    }
    if (manifest.target !== this.options.target) {
      return {
        error:
          `livefix: this extension carries its Python environment for ${manifest.target}, and this machine is ${this.options.target}. ` +
          `Install the livefix extension built for ${this.options.target}, ${SETTING_HINT}.`,
      };
    }
    const base = await this.chooseBase(user, manifest.pythons);
    if ('error' in base) return base;
    const name = `${manifest.livefix}-${manifest.digest.slice(0, 12)}-py${base.version}`;
    let pending = this.environments.get(name);
    if (!pending) {
      pending = this.ensure(manifest, base, name);
      this.environments.set(name, pending);
      // A failure is not remembered: the next session tries again (the developer may have fixed it).
      void pending.then((result) => 'error' in result && this.environments.delete(name));
    }
    return pending;
  }

  private async chooseBase(user: string, pythons: string[]): Promise<Probe | { error: string }> {
    const candidates = [user, ...(this.options.platform === 'win32' ? ['python', 'python3'] : ['python3', ...[...pythons].reverse().map((v) => `python${v}`), 'python'])];
    const tried: string[] = [];
    for (const command of [...new Set(candidates)]) {
      const result = await this.options.run(command, ['-E', '-c', PROBE]);
      const probe = result.code === 0 ? parseProbe(result.stdout) : undefined;
      if (!probe) {
        tried.push(`${command}: ${result.spawnError ? 'not found' : `does not run (${lastLine(result.stderr) || `exit ${result.code}`})`}`);
      } else if (probe.implementation !== 'CPython' || !pythons.includes(probe.version)) {
        tried.push(`${command} is ${probe.implementation} ${probe.version}`);
      } else if (!probe.venv) {
        tried.push(`${command} (${probe.version}) has no venv module`);
      } else {
        if (command !== user) this.options.log(`bundled Python: ${user} cannot be the base (${tried.join('; ')}); using ${command} (${probe.executable})`);
        return probe;
      }
    }
    return {
      error:
        `livefix needs CPython ${pythons.join(', ')} on this machine to run its adapter and language server, and found none (${tried.join('; ')}). ` +
        `Install one or select it in the Python extension, ${SETTING_HINT}.`,
    };
  }

  private async ensure(manifest: BundleManifest, base: Probe, name: string): Promise<EnvironmentResult> {
    const parent = path.join(this.options.storage, 'python');
    const directory = path.join(parent, name);
    const python = venvPython(directory, this.options.platform);
    if (await this.usable(directory, manifest)) {
      return { python, base: base.executable };
    }
    const title = `livefix: preparing its Python environment (first use, Python ${base.version}, offline)`;
    const created = await this.options.progress(title, () => this.create(manifest, base, parent, name));
    if ('error' in created) return created;
    await this.removeStale(parent, `${manifest.livefix}-${manifest.digest.slice(0, 12)}-`);
    return { python, base: base.executable };
  }

  /** Complete (marker of this bundle) and still starting (its base interpreter may be gone). */
  private async usable(directory: string, manifest: BundleManifest): Promise<boolean> {
    try {
      const marker = JSON.parse(await fs.readFile(path.join(directory, MARKER), 'utf8')) as { digest?: string };
      if (marker.digest !== manifest.digest) return false;
    } catch {
      return false;
    }
    const check = await this.options.run(venvPython(directory, this.options.platform), ['-E', '-c', REUSE_CHECK]);
    if (check.code === 0) return true;
    this.options.log(`bundled Python: ${directory} no longer runs (${lastLine(check.stderr) || check.spawnError || `exit ${check.code}`}); making it again`);
    return false;
  }

  private async create(manifest: BundleManifest, base: Probe, parent: string, name: string): Promise<{ ok: true } | { error: string }> {
    const directory = path.join(parent, name);
    const temporary = path.join(parent, `.tmp-${name}-${process.pid}-${randomBytes(4).toString('hex')}`);
    const python = venvPython(temporary, this.options.platform);
    const wheels = path.join(this.options.root, 'wheels');
    const started = Date.now();
    this.options.log(`bundled Python: creating ${directory} from ${base.executable} (${base.version}) and ${wheels}`);
    await fs.mkdir(parent, { recursive: true });
    const steps: [string, string, string[]][] = [
      ['create the virtual environment', base.executable, ['-E', '-m', 'venv', '--without-pip', temporary]],
      [
        'install the bundled wheels',
        python,
        // pip runs from its own wheel (no ensurepip); --isolated ignores PIP_* variables and pip.conf (an index, a proxy).
        ['-E', path.join(wheels, manifest.pip, 'pip'), 'install', '--isolated', '--no-index', '--find-links', wheels, '--only-binary=:all:',
          '--no-cache-dir', '--disable-pip-version-check', '--no-input', '--no-warn-script-location', '--quiet', `livefix==${manifest.livefix}`],
      ],
      ['check it', python, ['-E', '-c', SMOKE_TEST]],
    ];
    try {
      for (const [what, command, args] of steps) {
        const result = await this.options.run(command, args, { timeoutMs: 300_000 });
        if (result.code !== 0) {
          this.options.log(`bundled Python: ${what} failed: ${command} ${args.join(' ')}\n${result.stdout}${result.stderr}${result.spawnError ?? ''}`);
          return { error: `livefix: could not ${what} for its Python environment with ${base.executable} (${failure(result)}). The livefix output channel has the details; ${SETTING_HINT}.` };
        }
      }
      const marker = { livefix: manifest.livefix, digest: manifest.digest, target: manifest.target, base: base.executable, python: base.version, created: new Date().toISOString() };
      await fs.writeFile(path.join(temporary, MARKER), JSON.stringify(marker, null, 2) + '\n');
      // Another window may have finished first: keep its environment (it may be in use) and drop ours.
      if (await this.usable(directory, manifest)) {
        this.options.log(`bundled Python: another window made ${directory} first; using it`);
        return { ok: true };
      }
      await fs.rm(directory, { recursive: true, force: true }); // broken or half-removed: replace it
      try {
        await fs.rename(temporary, directory);
      } catch (error) {
        if (!(await this.usable(directory, manifest))) throw error;
        this.options.log(`bundled Python: another window made ${directory} first; using it`);
      }
      this.options.log(`bundled Python: ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${venvPython(directory, this.options.platform)}`);
      return { ok: true };
    } catch (error) {
      return { error: `livefix: could not set up its Python environment in ${directory}: ${error instanceof Error ? error.message : String(error)}` };
    } finally {
      await fs.rm(temporary, { recursive: true, force: true });
    }
  }

  /** Environments of other bundles (an earlier version of the extension), and abandoned temporary folders. */
  private async removeStale(parent: string, current: string): Promise<void> {
    for (const entry of await fs.readdir(parent).catch(() => [] as string[])) {
      const full = path.join(parent, entry);
      if (entry.startsWith(current)) continue;
      if (entry.startsWith('.tmp-')) {
        const stat = await fs.stat(full).catch(() => undefined);
        if (!stat || Date.now() - stat.mtimeMs < STALE_TEMPORARY_MS) continue; // another window may be making it
      }
      this.options.log(`bundled Python: removing ${full} (not this bundle's)`);
      await fs.rm(full, { recursive: true, force: true }).catch((error) => this.options.log(`bundled Python: could not remove ${full}: ${error}`));
    }
  }
}

function parseProbe(stdout: string): Probe | undefined {
  try {
    const probe = JSON.parse(stdout.trim().split(/\r?\n/).pop() ?? '') as Probe;
    return typeof probe.version === 'string' && typeof probe.executable === 'string' ? probe : undefined;
  } catch {
    return undefined;
  }
}

function failure(result: ProcessResult): string {
  return result.spawnError ?? (lastLine(result.stderr) || lastLine(result.stdout) || `exit ${result.code}`);
}

function lastLine(text: string): string {
  const lines = text.trim().split(/\r?\n/);
  return lines[lines.length - 1] ?? '';
}

function quote(text: string): string {
  return /[\s"]/.test(text) ? `"${text}"` : text;
}
