/**
 * The extension's settings (`livefix.*`), read and validated in one place.
 *
 * Takes a getter rather than `vscode.workspace.getConfiguration` so that bad values can be
 * reported and replaced by defaults, and so that tests can feed any value.
 */

import { checkCanary } from './canary';
import type { CanaryArgs } from './protocol';

export type ApplyMode = 'manual' | 'onSave' | 'never';
export const APPLY_MODES: readonly ApplyMode[] = ['manual', 'onSave', 'never'];

export interface Settings {
  /** An interpreter with livefix installed, for the adapter, the language server and programs; '' = the extension's own environment. */
  python: string;
  applyMode: ApplyMode;
  /** Start `python -m livefix.lsp` (code actions, drift diagnostics, persist). */
  languageServer: boolean;
  /** Sent as `canary` with every apply and reload (null: none; the process still watches the fix). */
  canary: CanaryArgs | null;
}

export const DEFAULT_SETTINGS: Settings = { python: '', applyMode: 'manual', languageServer: true, canary: null };

/** Reads a raw value of `livefix.<key>`; undefined when unset. */
export type SettingGetter = (key: string) => unknown;

/**
 * Returns valid settings plus one message per bad value (each replaced by its default),
 * so that a typo in settings.json is reported instead of breaking the extension.
 */
export function readSettings(get: SettingGetter): { settings: Settings; problems: string[] } {
  const problems: string[] = [];
  const settings: Settings = { ...DEFAULT_SETTINGS };

  const python = get('python');
  if (typeof python === 'string') {
    settings.python = python.trim();
  } else if (python !== undefined && python !== null) {
    problems.push('livefix.python must be a path to a Python interpreter; using the default.');
  }

  const mode = get('applyMode');
  if (typeof mode === 'string' && (APPLY_MODES as readonly string[]).includes(mode)) {
    settings.applyMode = mode as ApplyMode;
  } else if (mode !== undefined && mode !== null) {
    problems.push(`livefix.applyMode must be one of ${APPLY_MODES.join(', ')}, not ${JSON.stringify(mode)}; using "manual".`);
  }

  const server = get('languageServer.enabled');
  if (typeof server === 'boolean') {
    settings.languageServer = server;
  } else if (server !== undefined && server !== null) {
    problems.push('livefix.languageServer.enabled must be true or false; using true.');
  }

  const canary = checkCanary(get('canary'));
  settings.canary = canary.canary;
  if (canary.problem) problems.push(canary.problem);
  return { settings, problems };
}

/** Whether a settings change needs the language server restarted (another interpreter, or on/off). */
export function languageServerChanged(previous: Settings, next: Settings): boolean {
  return previous.python !== next.python || previous.languageServer !== next.languageServer;
}
