/**
 * What the developer reads about a fix's live evidence: the evidence status item while the
 * new code is watched and after, the notification when the figures are final, the canary's
 * verdict, the evidence document of a generation and the figures of watched functions.
 * Pure functions of the wire bodies (protocol.ts); the polling is in evidenceWatcher.ts.
 */

import type { StatusItemState } from './host';
import type { CanaryVerdict, EvidenceBody, EvidenceState, Figures, GenerationInfo, WatchBody } from './protocol';
import { describeCanary } from './canary';
import { SHOW_HISTORY_COMMAND } from './statusBar';

const STATUS_REPORT_LENGTH = 60;

function shorten(text: string, length: number): string {
  return text.length <= length ? text : `${text.slice(0, length - 1)}…`;
}

/** While the window is open: "livefix gen 3: watching… 24 s" (the figures so far in the tooltip). */
export function watchingStatus(sessionName: string, generation: number, evidence: EvidenceState | EvidenceBody, nowSeconds: number): StatusItemState {
  const left = Math.max(0, Math.ceil(evidence.until - nowSeconds));
  const canary = 'canary' in evidence && evidence.canary ? ` A canary judges it (${describeCanary(evidence.canary)}).` : '';
  const sofar = 'report' in evidence && evidence.report ? `\nSo far: ${evidence.report}` : '';
  return {
    text: `$(pulse) livefix gen ${generation}: watching… ${left} s`,
    tooltip: `livefix: "${sessionName}" counts calls, errors and latency of generation ${generation}'s new code for ${left} more seconds.${canary}${sofar}\nClick for the history.`,
    command: SHOW_HISTORY_COMMAND,
  };
}

/** Once final: the report itself (shortened; in full in the tooltip), or the canary's outcome. */
export function finalStatus(sessionName: string, body: EvidenceBody): StatusItemState {
  const verdict = body.canary?.verdict;
  const icon = verdict && (verdict.outcome === 'rolledBack' || verdict.outcome === 'failed') ? '$(error)' : '$(pass)';
  const what = verdict ? canaryWords(verdict) : shorten(body.report, STATUS_REPORT_LENGTH);
  return {
    text: `${icon} livefix gen ${body.generation}: ${what}`,
    tooltip: `livefix: evidence of generation ${body.generation} in "${sessionName}":\n${body.report}${verdict ? `\n${verdict.report}` : ''}\nClick for the history.`,
    command: SHOW_HISTORY_COMMAND,
  };
}

/** When a canary decided before the figures were polled final. */
export function verdictStatus(sessionName: string, verdict: CanaryVerdict): StatusItemState {
  const bad = verdict.outcome === 'rolledBack' || verdict.outcome === 'failed';
  return {
    text: `${bad ? '$(error)' : '$(pass)'} livefix gen ${verdict.generation}: ${canaryWords(verdict)}`,
    tooltip: `livefix: "${sessionName}": ${verdict.report}\nClick for the history.`,
    command: SHOW_HISTORY_COMMAND,
  };
}

function canaryWords(verdict: CanaryVerdict): string {
  switch (verdict.outcome) {
    case 'passed':
      return 'canary passed';
    case 'rolledBack':
      return 'rolled back by canary';
    case 'failed':
      return 'canary failed, not rolled back';
    case 'inconclusive':
      return 'canary inconclusive';
    case 'rolledBackByUser':
      return 'canary stopped (rolled back)';
    default:
      return String((verdict as { outcome: unknown }).outcome);
  }
}

/** The notification once a fix's figures are final. */
export function finalMessage(sessionName: string, body: EvidenceBody): string {
  return `livefix [${sessionName}]: evidence of generation ${body.generation}: ${body.report}`;
}

/**
 * A canary's verdict as a notification: a warning when it rolled the fix back (the process
 * now runs the previous generation) or failed to; information otherwise. The process's own
 * report already says it ("Canary rolled back generation 3: shop.price: p99 ...").
 */
export function canaryNotice(sessionName: string, verdict: CanaryVerdict): { severity: 'warning' | 'info'; message: string } {
  const severity = verdict.outcome === 'rolledBack' || verdict.outcome === 'failed' ? 'warning' : 'info';
  const where = sessionName ? ` [${sessionName}]` : '';
  return { severity, message: `livefix${where}: ${verdict.report}` };
}

/** "1,200 calls, 3 errors (0.25%: 3 KeyError), p50 1.2 ms, p99 45 ms, 2 running" */
export function figuresLine(figures: Figures): string {
  const parts = [`${figures.calls.toLocaleString('en-US')} call${figures.calls === 1 ? '' : 's'}`];
  let errors = `${figures.errors.toLocaleString('en-US')} error${figures.errors === 1 ? '' : 's'} (${percent(figures.errorRate)}`;
  const types = Object.entries(figures.errorTypes ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (types.length) errors += `: ${types.map(([name, count]) => `${count} ${name}`).join(', ')}`;
  parts.push(`${errors})`);
  if (figures.p50Ms !== null) parts.push(`p50 ${ms(figures.p50Ms)}`);
  if (figures.p99Ms !== null) parts.push(`p99 ${ms(figures.p99Ms)}`);
  if (figures.running) parts.push(`${figures.running} running`);
  return parts.join(', ');
}

function percent(rate: number): string {
  return `${Number((rate * 100).toPrecision(3))}%`;
}

function ms(value: number): string {
  return `${Number(value.toPrecision(3))} ms`;
}

function time(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

/** The read-only document of a generation's evidence: report, per function before/after, canary. */
export function formatEvidence(sessionName: string, body: EvidenceBody): string {
  const lines = [
    `# Evidence of generation ${body.generation} in "${sessionName}" (${body.state === 'final' ? 'final' : 'still watching'})`,
    `# watched from ${time(body.since)} to ${time(body.until)}`,
    '',
    body.report,
    '',
  ];
  for (const [label, pair] of Object.entries(body.functions)) {
    lines.push(label);
    lines.push(`  before (old code): ${pair.before ? figuresLine(pair.before) : 'not recorded'}`);
    lines.push(`  after  (new code): ${pair.after ? figuresLine(pair.after) : 'not recorded'}`);
  }
  if (body.canary) {
    const { verdict, ...terms } = body.canary;
    lines.push('', `Canary: ${describeCanary(terms)}`);
    lines.push(verdict ? `  ${verdict.outcome}: ${verdict.report}` : '  no verdict yet');
    for (const reason of verdict?.reasons ?? []) lines.push(`  - ${reason}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The history pick's words for a generation's evidence: "canary rolledBack · shop.price: error rate ..." */
export function historyEvidence(generation: GenerationInfo): string | undefined {
  const evidence = generation.evidence;
  if (!evidence) return undefined;
  const verdict = evidence.canary?.verdict;
  const canary = verdict ? `canary ${verdict.outcome}` : evidence.canary ? 'canary judging' : undefined;
  const report = evidence.state === 'watching' ? `watching: ${evidence.report}` : evidence.report;
  return [canary, report].filter(Boolean).join(' · ');
}

/** The read-only document of `livefix/watch`: per watched function, each version of its code. */
export function formatWatch(sessionName: string, body: WatchBody, when: Date): string {
  const lines = [`# Functions watched in "${sessionName}" at ${when.toISOString()}`, ''];
  const functions = Object.entries(body.functions);
  if (functions.length === 0) {
    lines.push('(nothing is watched)');
  }
  for (const [label, versions] of functions) {
    lines.push(label);
    if (versions.length === 0) lines.push('  (no calls yet)');
    versions.forEach((figures, index) => {
      const which = versions.length === 1 ? 'code' : index === versions.length - 1 ? `version ${index + 1} (running)` : `version ${index + 1}`;
      lines.push(`  ${which}: ${figuresLine(figures)}`);
    });
    lines.push('');
  }
  return lines.join('\n');
}

/** "module:qualname" (dotted names both sides); empty is allowed: it shows what is watched. */
export function validateWatchTarget(text: string): string | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  return /^[\p{L}_][\p{L}\p{N}_]*(\.[\p{L}_][\p{L}\p{N}_]*)*:[\p{L}_][\p{L}\p{N}_]*(\.[\p{L}_][\p{L}\p{N}_]*)*$/u.test(trimmed)
    ? undefined
    : 'Write the function as module:qualname, e.g. shop.pricing:Cart.total (empty: show what is watched).';
}
