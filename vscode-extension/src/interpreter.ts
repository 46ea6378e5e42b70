/**
 * Which Python runs the adapter and the language server, and whether livefix is in it.
 *
 * Order: the `livefix.python` setting, else the interpreter selected in the Python
 * extension (when it is installed), else `python3` on PATH. The check runs the interpreter
 * once (`-c "import livefix.adapter, livefix.lsp"`), so the developer gets one clear message
 * with the pip command instead of a debug session that dies at start.
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

export type RunProcess = (command: string, args: string[]) => Promise<ProcessResult>;

export const runProcess: RunProcess = (command, args) =>
  new Promise((resolve) => {
    execFile(command, args, { timeout: 30_000 }, (error, stdout, stderr) => {
      const spawnError = error && typeof (error as NodeJS.ErrnoException).code === 'string' ? error.message : undefined;
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr), spawnError });
    });
  });

/** The message shown when livefix cannot run in `interpreter`; undefined when it can. */
export async function checkLivefixInstalled(interpreter: Interpreter, run: RunProcess): Promise<string | undefined> {
  const result = await run(interpreter.command, ['-c', 'import livefix.adapter, livefix.lsp']);
  if (result.spawnError) {
    return (
      `livefix: cannot run the Python interpreter "${interpreter.command}" (from ${interpreter.source}): ${result.spawnError}. ` +
      'Set "livefix.python" to the interpreter of your project.'
    );
  }
  if (result.code !== 0) {
    const reason = lastLine(result.stderr);
    return (
      `livefix is not installed in ${interpreter.command} (from ${interpreter.source}). ` +
      `Install it with: ${quote(interpreter.command)} -m pip install livefix` +
      (reason ? ` (${reason})` : '')
    );
  }
  return undefined;
}

function lastLine(text: string): string {
  const lines = text.trim().split(/\r?\n/);
  return lines[lines.length - 1] ?? '';
}

function quote(command: string): string {
  return /\s/.test(command) ? `"${command}"` : command;
}
