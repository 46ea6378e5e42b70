/**
 * The canary's terms as the extension sends them: the `livefix.canary` setting checked
 * against `CanaryArgs`, the two questions of "Apply with Canary…", and adding the terms to
 * apply/reload arguments. The process judges; this only builds and checks what it is sent.
 */

import type { Host } from './host';
import { APPLY, RELOAD, type CanaryArgs } from './protocol';

/** Each key of `CanaryArgs`: what a valid value is, in words for the problem message. */
const KEYS: Record<keyof CanaryArgs, { check: (value: unknown) => boolean; means: string }> = {
  before: { check: (v) => isNumber(v) && v >= 0, means: 'seconds (0 or more)' },
  window: { check: (v) => isNumber(v) && v > 0, means: 'seconds (more than 0)' },
  maxErrorRate: { check: (v) => isNumber(v) && v >= 0 && v <= 1, means: 'a rate from 0 to 1' },
  maxP99Ms: { check: (v) => isNumber(v) && v > 0, means: 'milliseconds (more than 0)' },
  minCalls: { check: (v) => Number.isInteger(v) && (v as number) >= 0, means: 'a whole number of calls' },
  maxSlowdown: { check: (v) => isNumber(v) && v > 0, means: 'a factor (more than 0)' },
  compare: { check: (v) => typeof v === 'boolean', means: 'true or false' },
};

function isNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/**
 * The `livefix.canary` setting: null/undefined is "no canary"; an object must hold only
 * `CanaryArgs` keys with valid values. A bad setting is reported and no canary is sent
 * (sending half of what the developer wrote would judge by other terms than theirs).
 */
export function checkCanary(raw: unknown): { canary: CanaryArgs | null; problem?: string } {
  if (raw === undefined || raw === null) {
    return { canary: null };
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    return { canary: null, problem: 'livefix.canary must be an object like {"window": 30, "maxErrorRate": 0.01} or null; sending no canary.' };
  }
  const bad: string[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const rule = KEYS[key as keyof CanaryArgs];
    if (!rule) {
      bad.push(`unknown key "${key}" (known: ${Object.keys(KEYS).join(', ')})`);
    } else if (!rule.check(value)) {
      bad.push(`${key} must be ${rule.means}, not ${JSON.stringify(value)}`);
    }
  }
  if (bad.length) {
    return { canary: null, problem: `livefix.canary: ${bad.join('; ')}; sending no canary.` };
  }
  return { canary: { ...(raw as CanaryArgs) } };
}

/** The canary's terms added to an apply or reload that has none of its own (others unchanged). */
export function withCanary<T extends object>(command: string, args: T, canary: CanaryArgs | null): T | (T & { canary: CanaryArgs }) {
  if (!canary || (command !== APPLY && command !== RELOAD) || 'canary' in args) {
    return args;
  }
  return { ...args, canary };
}

/** "Apply with Canary…", first question: the window in seconds. */
export function validateWindow(text: string): string | undefined {
  const value = Number(text.trim());
  return text.trim() !== '' && Number.isFinite(value) && value > 0 ? undefined : 'The window is a number of seconds, more than 0 (e.g. 30).';
}

/** Second question: "1%", "0.5 %" or "0.01"; empty means no ceiling. */
export function parseErrorRate(text: string): number | null | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return null;
  const percent = trimmed.endsWith('%');
  const value = Number(percent ? trimmed.slice(0, -1).trim() : trimmed);
  if (!Number.isFinite(value)) return undefined;
  const rate = percent ? value / 100 : value;
  return rate >= 0 && rate <= 1 ? rate : undefined;
}

export function validateErrorRate(text: string): string | undefined {
  return parseErrorRate(text) === undefined ? 'An error rate is a percentage ("1%") or a fraction from 0 to 1 ("0.01"); empty: no ceiling.' : undefined;
}

/** How an error rate is prefilled in the question: "1%". */
export function formatRate(rate: number): string {
  return `${Number((rate * 100).toPrecision(6))}%`;
}

/**
 * The terms of "Apply with Canary…": the setting's (if any) with the window and error rate
 * the developer answered. Undefined when an answer does not parse (the input box validates
 * first, so this is the last line of defence).
 */
export function canaryFromAnswers(base: CanaryArgs | null, window: string, errorRate: string): CanaryArgs | undefined {
  if (validateWindow(window) !== undefined) return undefined;
  const rate = parseErrorRate(errorRate);
  if (rate === undefined) return undefined;
  const canary: CanaryArgs = { ...(base ?? {}), window: Number(window.trim()) };
  if (rate === null) {
    delete canary.maxErrorRate;
  } else {
    canary.maxErrorRate = rate;
  }
  return canary;
}

/** "30 s window, error rate at most 1%, p99 at most 200 ms" (for tooltips and logs). */
export function describeCanary(canary: CanaryArgs): string {
  const parts = [`${canary.window ?? 30} s window`];
  if (canary.maxErrorRate !== undefined) parts.push(`error rate at most ${formatRate(canary.maxErrorRate)}`);
  if (canary.maxP99Ms !== undefined) parts.push(`p99 at most ${canary.maxP99Ms} ms`);
  if (canary.maxSlowdown !== undefined) parts.push(`at most ${canary.maxSlowdown}× slower`);
  if (canary.compare === false) parts.push('not compared with the old code');
  return parts.join(', ');
}

/**
 * The questions of "Apply with Canary…" (window, then error-rate ceiling), prefilled from
 * the setting. Undefined when the developer cancels either (then nothing is sent).
 */
export async function askCanary(host: Host, base: CanaryArgs | null): Promise<CanaryArgs | undefined> {
  const window = await host.input({
    title: 'livefix: apply with canary (1/2)',
    prompt: 'For how many seconds the canary judges the new code (then the fix stays, or it is rolled back by itself)',
    value: String(base?.window ?? 30),
    validate: validateWindow,
  });
  if (window === undefined) return undefined;
  const errorRate = await host.input({
    title: 'livefix: apply with canary (2/2)',
    prompt: 'Highest error rate of the new code, e.g. 1% or 0.01 (empty: only compare it with the old code)',
    value: base?.maxErrorRate === undefined ? '' : formatRate(base.maxErrorRate),
    validate: validateErrorRate,
  });
  if (errorRate === undefined) return undefined;
  const canary = canaryFromAnswers(base, window, errorRate);
  if (!canary) host.showError('livefix: the canary window or error rate does not parse; nothing was sent.');
  return canary;
}
