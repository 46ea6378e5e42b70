// The bundle step of `vscode:prepublish`: runs scripts/bundle_python.py (livefix and the wheels
// its adapter and language server need, into bundled/python/) with a Python that has pip.
// Which Python: $LIVEFIX_BUNDLE_PYTHON, else the first of python3, python (3.10 or newer).
// Which target: vsce's own --target when vsce runs this (vsce does not pass it to prepublish
// scripts, so it is read from vsce's command line among this process's ancestors, with `ps`;
// not on Windows), else $LIVEFIX_VSCODE_TARGET, else this machine's. So
//   npx @vscode/vsce package --target linux-arm64
// bundles linux-arm64's wheels. Extra arguments go to bundle_python.py (--force rebuilds).

import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function fail(message) {
  console.error(`bundle-python: ${message}`);
  process.exit(1);
}

/** The targets on the command line of the `vsce package|publish` that runs us ([] = none given; undefined = not run by vsce, or no `ps`). */
function vsceTargets() {
  if (process.platform === 'win32') return undefined;
  let pid = process.ppid;
  for (let depth = 0; pid > 1 && depth < 10; depth++) {
    const ps = spawnSync('ps', ['-ww', '-o', 'ppid=', '-o', 'args=', '-p', String(pid)], { encoding: 'utf8' });
    const match = ps.status === 0 ? /^\s*(\d+)\s+(.*)$/s.exec(ps.stdout.trim()) : null;
    if (!match) return undefined;
    const args = match[2].split(/\s+/);
    const command = args.findIndex((arg) => arg === 'package' || arg === 'publish');
    if (command > 0 && args.slice(0, command).some((arg) => /(^|[\\/@])vsce(\.js)?$/.test(arg))) {
      const targets = [];
      for (let i = command + 1; i < args.length; i++) {
        const inline = /^--target=(.+)$/.exec(args[i]);
        if (inline) targets.push(inline[1]);
        if (args[i] === '--target' || args[i] === '-t') {
          while (i + 1 < args.length && !args[i + 1].startsWith('-')) targets.push(args[++i]);
        }
      }
      return targets;
    }
    pid = Number(match[1]);
  }
  return undefined;
}

const fromVsce = vsceTargets() ?? [];
if (fromVsce.length > 1) {
  fail(
    `vsce was given several targets (${fromVsce.join(', ')}), and prepublish runs once for all of them: ` +
      'package each target (npx @vscode/vsce package --target TARGET) and publish the packages (vsce publish --packagePath ...).',
  );
}
const fromEnvironment = process.env.LIVEFIX_VSCODE_TARGET;
if (fromVsce.length === 1 && fromEnvironment && fromEnvironment !== fromVsce[0]) {
  fail(`vsce packages for ${fromVsce[0]} and LIVEFIX_VSCODE_TARGET says ${fromEnvironment}`);
}
const target = fromVsce[0] ?? fromEnvironment;

const script = join(dirname(fileURLToPath(import.meta.url)), 'bundle_python.py');
const probe = 'import sys, pip; sys.exit(0 if sys.version_info >= (3, 10) else 1)';
const candidates = process.env.LIVEFIX_BUNDLE_PYTHON ? [process.env.LIVEFIX_BUNDLE_PYTHON] : ['python3', 'python'];
const python = candidates.find((command) => spawnSync(command, ['-c', probe], { stdio: 'ignore' }).status === 0);
if (!python) {
  fail(`no Python 3.10+ with pip among ${candidates.join(', ')}; set LIVEFIX_BUNDLE_PYTHON to one (it downloads the wheels the extension carries).`);
}
const result = spawnSync(python, [script, ...(target ? ['--target', target] : []), ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(result.status ?? 1);
