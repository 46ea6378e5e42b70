/**
 * Live instance migration in the approval round trip: which classes' live instances lack
 * attributes the new code uses (the dry run's `instances`), the question asked per class
 * (attribute defaults as JSON, or `def migrate(obj): ...`), and the `migrate` argument built
 * from the answers. The process checks the classes and runs the migration; this only asks.
 */

import type { Host } from './host';
import type { InstanceGap, Migrations } from './protocol';

/** Classes with instances that actually lack something (a gap with nothing lacking asks nothing). */
export function openGaps(gaps: readonly InstanceGap[] | undefined): InstanceGap[] {
  return (gaps ?? []).filter((gap) => Object.keys(gap.lacking ?? {}).length > 0);
}

/** `module:qualname`: unambiguous even when two changed modules have a class of that name. */
export function migrationKey(gap: InstanceGap): string {
  return `${gap.module}:${gap.qualname}`;
}

/** The input box's prefill: every lacking attribute with a placeholder default, `{"discount": 0}`. */
export function migrationTemplate(gap: InstanceGap): string {
  return `{${Object.keys(gap.lacking).map((name) => `${JSON.stringify(name)}: 0`).join(', ')}}`;
}

/** "3 live `shop.Cart` instances lack `discount` (3), `tax` (1)" */
export function describeGap(gap: InstanceGap): string {
  const names = Object.entries(gap.lacking).map(([name, count]) => `\`${name}\` (${count})`);
  return `${gap.instances} live \`${gap.module}.${gap.qualname}\` instance${gap.instances === 1 ? '' : 's'} lack ${names.join(', ')}`;
}

// Python identifiers (ASCII and the Unicode letters the language accepts, roughly).
const IDENTIFIER = /^[\p{L}_][\p{L}\p{N}_]*$/u;

/**
 * One answer: a JSON object of attribute defaults (`{"discount": 0}`), or the source of a
 * `def migrate(obj): ...` function, sent as text (the process compiles it in the module).
 */
export function parseMigration(text: string): { migration: Record<string, unknown> | string } | { error: string } {
  const trimmed = text.trim();
  if (trimmed === '') {
    return { error: 'Give the defaults as a JSON object, e.g. {"discount": 0}, or a function: def migrate(obj): ...' };
  }
  if (/^def\s+migrate\s*\(/.test(trimmed)) {
    return { migration: text };
  }
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch (error) {
    return { error: `Not JSON: ${error instanceof Error ? error.message : String(error)}. Write e.g. {"discount": 0}, or def migrate(obj): ...` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { error: 'The defaults must be a JSON object of attribute names to values, e.g. {"discount": 0}.' };
  }
  const names = Object.keys(value);
  if (names.length === 0) {
    return { error: 'Name at least one attribute, e.g. {"discount": 0}.' };
  }
  const bad = names.filter((name) => !IDENTIFIER.test(name));
  if (bad.length) {
    return { error: `Attribute names must be Python identifiers: ${bad.map((name) => JSON.stringify(name)).join(', ')}.` };
  }
  return { migration: value as Record<string, unknown> };
}

/**
 * Asks, class by class, how its live instances get the attributes they lack. Undefined
 * when the developer cancels any question (then nothing is sent).
 */
export async function askMigrations(host: Host, gaps: readonly InstanceGap[]): Promise<Migrations | undefined> {
  const migrations: Migrations = {};
  for (const gap of gaps) {
    const answer = await host.input({
      title: `livefix: migrate live ${gap.qualname} instances`,
      prompt: `${describeGap(gap)}. Defaults set where an instance lacks them (JSON), or def migrate(obj): ...`,
      value: migrationTemplate(gap),
      validate: (text) => {
        const parsed = parseMigration(text);
        return 'error' in parsed ? parsed.error : undefined;
      },
    });
    if (answer === undefined) {
      return undefined;
    }
    const parsed = parseMigration(answer);
    if ('error' in parsed) {
      host.showError(`livefix: ${parsed.error}`);
      return undefined;
    }
    migrations[migrationKey(gap)] = parsed.migration;
  }
  return migrations;
}
