/**
 * How VS Code reaches livefix's debug adapter, and the defaults of a `livefix` configuration.
 *
 * A top-level session starts `<python> -m livefix.adapter` over stdio (the adapter is
 * debugpy's adapter plus livefix's requests). A child-process session (debugpy's
 * `startDebugging` reverse request carries `subProcessId` and the parent adapter's
 * `connect` address) goes back to the same adapter over TCP, as debugpy's own extension does.
 */

export const DEBUG_TYPE = 'livefix';

export type AdapterDescriptor =
  | { kind: 'executable'; command: string; args: string[]; env?: Record<string, string> }
  | { kind: 'server'; host: string; port: number };

export function describeAdapter(configuration: Readonly<Record<string, unknown>>, python: string): AdapterDescriptor {
  const connect = configuration['connect'];
  if (configuration['request'] === 'attach' && configuration['subProcessId'] !== undefined && isAddress(connect)) {
    return { kind: 'server', host: connect.host ?? '127.0.0.1', port: Number(connect.port) };
  }
  return { kind: 'executable', command: python, args: ['-m', 'livefix.adapter'] };
}

function isAddress(value: unknown): value is { host?: string; port: number | string } {
  return typeof value === 'object' && value !== null && 'port' in value;
}

/**
 * Fills what a developer leaves out: an empty configuration (F5 without launch.json)
 * debugs the current file; a launch without `python` runs the program with `python`, the
 * developer's interpreter (`livefix.python`, else the Python extension's, else python3: never
 * the extension's own environment). Returns a message instead when nothing can be debugged.
 */
export function resolveConfiguration(
  configuration: Record<string, unknown>,
  python: string,
  activeFile: string | undefined,
): { configuration: Record<string, unknown> } | { error: string } {
  const resolved: Record<string, unknown> = { ...configuration };
  if (!resolved['type'] && !resolved['request'] && !resolved['name']) {
    if (!activeFile) {
      return { error: 'livefix: open a Python file to debug, or add a "livefix" configuration to launch.json.' };
    }
    Object.assign(resolved, { type: DEBUG_TYPE, name: 'Python (livefix): current file', request: 'launch', program: activeFile });
  }
  resolved['type'] = DEBUG_TYPE;
  if (resolved['request'] === 'launch') {
    if (resolved['program'] === undefined && resolved['module'] === undefined && resolved['code'] === undefined) {
      if (!activeFile) {
        return { error: 'livefix: this launch configuration names no "program" or "module".' };
      }
      resolved['program'] = activeFile;
    }
    if (resolved['python'] === undefined) {
      resolved['python'] = python;
    }
    if (resolved['console'] === undefined) {
      resolved['console'] = 'integratedTerminal';
    }
  }
  const options = resolved['livefix'];
  if (options !== undefined) {
    const problem = checkLivefixOptions(options);
    if (problem) {
      return { error: problem };
    }
  }
  return { configuration: resolved };
}

function checkLivefixOptions(options: unknown): string | undefined {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    return 'livefix: the "livefix" option must be an object like {"approval": "risky", "auditLog": "/path"}.';
  }
  const { approval, auditLog } = options as Record<string, unknown>;
  if (approval !== undefined && !['never', 'risky', 'always'].includes(String(approval))) {
    return `livefix: "livefix.approval" must be "never", "risky" or "always", not ${JSON.stringify(approval)}.`;
  }
  if (auditLog !== undefined && typeof auditLog !== 'string') {
    return 'livefix: "livefix.auditLog" must be a file path.';
  }
  return undefined;
}
