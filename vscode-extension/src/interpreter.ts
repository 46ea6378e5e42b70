/**
 * Which Python runs the adapter and the language server, and which runs the debugged program.
 *
 * The developer's interpreter is the `livefix.python` setting, else the interpreter selected
 * in the Python extension (when it is installed), else `python3` on PATH. With the setting,
 * that interpreter runs everything, as before, and must have livefix: the check runs it once
 * (`-c "import livefix.adapter, livefix.lsp"`) so the developer gets one clear message with
 * the install command instead of a debug session that dies at start. Without it, the adapter
 * and the server run in the extension's own environment (bundledPython.ts) and programs run
 * on the developer's interpreter, which receives only what the adapter injects.
 */

import { execFile } from 'node:child_process';

export interface Interpreter {
  command: string;
  /** Where the choice came from, for messages and the log. */
  source: 'setting' | 'python extension' | 'default';
}

/** Asks the Python extension for the active interpreter's executable (undefined: none/not installed). */
export type PythonExtensionQuery = (resource?: string) => Promise<string | undefined>;

export async function resolveInterpreter(
  setting: string,
  queryPythonExtension: PythonExtensionQuery | undefined,
  resource?: string,
): Promise<Interpreter> {
  if (setting) {
    return { command: setting, source: 'setting' };
  }
  if (queryPythonExtension) {
    try {
      const fromExtension = await queryPythonExtension(resource);
      if (fromExtension) {
        return { command: fromExtension, source: 'python extension' };
      }
    } catch {
      // The Python extension is optional; an API failure means "fall back", not "fail".
    }
  }
  return { command: 'python3', source: 'default' };
}

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Set when the executable could not be started at all (ENOENT...). */
  spawnError?: string;
}

export type RunProcess = (command: string, args: string[], options?: { timeoutMs?: number }) => Promise<ProcessResult>;

export const runProcess: RunProcess = (command, args, options) =>
  new Promise((resolve) => {
    execFile(command, args, { timeout: options?.timeoutMs ?? 30_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const spawnError = error && typeof (error as NodeJS.ErrnoException).code === 'string' ? error.message : undefined;
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr), spawnError });
    });
  });

/**
 * The message shown when livefix cannot run in `interpreter`; undefined when it can.
 * `installCommand` installs livefix there (the extension's bundled wheels), when known.
 */
export async function checkLivefixInstalled(interpreter: Interpreter, run: RunProcess, installCommand?: string): Promise<string | undefined> {
  const result = await run(interpreter.command, ['-c', 'import livefix.adapter, livefix.lsp']);
  if (result.spawnError) {
    return (
      `livefix: cannot run the Python interpreter "${interpreter.command}" (from ${interpreter.source}): ${result.spawnError}. ` +
      'Set "livefix.python" to the interpreter of your project.'
    );
  }
  if (result.code !== 0) {
    const reason = lastLine(result.stderr);
    const install = installCommand ? `Install it with: ${installCommand}` : 'Install livefix into it (pip install a livefix wheel or checkout)';
    return (
      `livefix is not installed in ${interpreter.command} (from ${interpreter.source}). ${install}, ` +
      'or clear "livefix.python" to use the extension\'s own environment' +
      (reason ? ` (${reason})` : '')
    );
  }
  return undefined;
}

/** The interpreters of a session: `tools` runs `-m livefix.adapter` and `-m livefix.lsp`. */
export interface Runtime {
  tools: string;
  /** The default interpreter of launched programs (a launch configuration's `python` wins). */
  program: string;
  /** For the log. */
  description: string;
}

export interface PrivateEnvironment {
  environment(user: string): Promise<{ python: string; base: string } | { error: string }>;
  installCommand(python: string): Promise<string | undefined>;
}

export async function resolveRuntime(
  setting: string,
  queryPythonExtension: PythonExtensionQuery | undefined,
  resource: string | undefined,
  bundled: PrivateEnvironment,
  run: RunProcess,
): Promise<Runtime | { error: string }> {
  const user = await resolveInterpreter(setting, queryPythonExtension, resource);
  if (user.source === 'setting') {
    const problem = await checkLivefixInstalled(user, run, await bundled.installCommand(user.command));
    return problem ? { error: problem } : { tools: user.command, program: user.command, description: `${user.command} (livefix.python)` };
  }
  const environment = await bundled.environment(user.command);
  if ('error' in environment) return environment;
  return {
    tools: environment.python,
    program: user.command,
    description: `${environment.python} (the extension's environment, from ${environment.base}); programs run on ${user.command} (${user.source})`,
  };
}

function lastLine(text: string): string {
  const lines = text.trim().split(/\r?\n/);
  return lines[lines.length - 1] ?? '';
}
