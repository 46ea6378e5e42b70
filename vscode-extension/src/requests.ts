/**
 * Sends livefix's custom requests to debug sessions: structured errors, the approval
 * round trip, and one outcome per process.
 *
 * VS Code's `DebugSession.customRequest` rejects with the one-line message only, so a
 * debug adapter tracker hands every failed livefix response to `FailedResponses`, and the
 * `body.livefix` error (kind, impact...) is read back from there when a request rejects.
 * The tracker sees the response before VS Code settles the request, so the lookup never races.
 */

import type { Host, SessionRef } from './host';
import { askMigrations, openGaps } from './migrate';
import { APPLY, RELOAD, type ChangeResultBody, type ErrorBody, type Impact, type InstanceGap, type Migrations } from './protocol';

/** A failed livefix response: its structured error, and whether VS Code already showed it. */
export interface Failure {
  error: ErrorBody;
  /**
   * VS Code itself notifies the user of an error response whose `body.error.showUser` is
   * true (RawDebugSession.handleErrorResponse), so the extension must not show it again.
   */
  shownByEditor: boolean;
}

export class FailedResponses {
  private readonly failures = new Map<string, Map<string, Failure>>();

  /** Feed every message the adapter sends (DebugAdapterTracker.onDidSendMessage). */
  record(sessionId: string, message: unknown): void {
    const m = message as {
      type?: string;
      command?: string;
      success?: boolean;
      message?: string;
      body?: { livefix?: ErrorBody; error?: { format?: string; showUser?: boolean } };
    };
    if (m?.type !== 'response' || m.success !== false || typeof m.command !== 'string' || !m.command.startsWith('livefix/')) {
      return;
    }
    const error: ErrorBody = m.body?.livefix ?? { kind: 'failed', message: m.message ?? 'livefix request failed' };
    let bySession = this.failures.get(sessionId);
    if (!bySession) {
      bySession = new Map();
      this.failures.set(sessionId, bySession);
    }
    bySession.set(m.command, { error, shownByEditor: Boolean(m.body?.error?.showUser && m.body.error.format) });
  }

  take(sessionId: string, command: string): Failure | undefined {
    const error = this.failures.get(sessionId)?.get(command);
    this.failures.get(sessionId)?.delete(command);
    return error;
  }

  forget(sessionId: string): void {
    this.failures.delete(sessionId);
  }
}

export class LivefixRequestError extends Error {
  constructor(
    readonly session: SessionRef,
    readonly command: string,
    readonly error: ErrorBody,
    /** VS Code already showed this error as a notification. */
    readonly shownByEditor = false,
  ) {
    super(error.message);
  }

  get kind(): string {
    return this.error.kind;
  }
}

const APPROVE = 'Apply anyway';
const MIGRATE = 'Migrate…';

export type Outcome<T> = { session: SessionRef; body: T } | { session: SessionRef; error: LivefixRequestError };

export class Requests {
  constructor(
    private readonly host: Host,
    private readonly failures: FailedResponses,
  ) {}

  /** One request to one session; rejects with LivefixRequestError carrying the structured error. */
  async send<T>(session: SessionRef, command: string, args: object): Promise<T> {
    this.failures.take(session.id, command); // a stale failure must not be read as this one's
    try {
      return (await session.customRequest(command, args)) as T;
    } catch (reason) {
      const message = reason instanceof Error ? reason.message : String(reason);
      const failure = this.failures.take(session.id, command);
      throw new LivefixRequestError(session, command, failure?.error ?? { kind: 'failed', message }, failure?.shownByEditor ?? false);
    }
  }

  /**
   * Sends a change (apply, reload, rollback) and, when the process answers
   * `approvalRequired`, shows the impact in a modal and re-sends with `approved: true`
   * if the developer agrees. When live instances of a changed class lack attributes the
   * new code uses, the modal also offers "Migrate…": defaults (or a `migrate(obj)`) per
   * class, re-sent as `migrate` with `approved: true`. Declining is an outcome, not an error.
   */
  async sendWithApproval<T>(session: SessionRef, command: string, args: object): Promise<T | 'declined'> {
    try {
      return await this.send<T>(session, command, args);
    } catch (error) {
      if (!(error instanceof LivefixRequestError) || error.kind !== 'approvalRequired') {
        throw error;
      }
      const message = `livefix: ${describeCommand(command)} in "${session.name}" needs your approval`;
      const detail = approvalDetail(error.error);
      const gaps = openGaps(await this.instanceGaps(session, command, args, error.error));
      let migrate: Migrations | undefined;
      if (gaps.length === 0) {
        if (!(await this.host.confirm(message, detail, APPROVE))) return this.declined(session, command);
      } else {
        const choice = await this.host.choose(message, detail, [APPROVE, MIGRATE]);
        if (choice === MIGRATE) {
          migrate = await askMigrations(this.host, gaps);
          if (!migrate) return this.declined(session, command);
        } else if (choice !== APPROVE) {
          return this.declined(session, command);
        }
      }
      const given = (args as { migrate?: Migrations }).migrate;
      return await this.send<T>(session, command, { ...args, ...(migrate ? { migrate: { ...given, ...migrate } } : {}), approved: true });
    }
  }

  private declined(session: SessionRef, command: string): 'declined' {
    this.host.log(`[${session.name}] ${command}: not approved; nothing changed`);
    return 'declined';
  }

  /**
   * Live instances lacking attributes, for an apply or reload refused for approval. The
   * error's details do not carry them (its reasons say it in words), so the same request
   * goes again as a dry run, whose body has `instances`. Nothing to ask when that fails.
   */
  private async instanceGaps(session: SessionRef, command: string, args: object, error: ErrorBody): Promise<InstanceGap[]> {
    if (Array.isArray(error.instances)) return error.instances;
    if (command !== APPLY && command !== RELOAD) return [];
    try {
      const dryRun = await this.send<ChangeResultBody>(session, command, { ...args, dryRun: true });
      return dryRun.instances ?? [];
    } catch (reason) {
      this.host.log(`[${session.name}] ${command} dry run for live instances failed: ${reason instanceof Error ? reason.message : String(reason)}`);
      return [];
    }
  }

  /** The same change to every session of a launch, each process answering for itself. */
  async sendToAll<T>(sessions: SessionRef[], command: string, args: object): Promise<Outcome<T>[]> {
    const outcomes: Outcome<T>[] = [];
    // One after the other: each may ask for approval in its own modal.
    for (const session of sessions) {
      try {
        const body = await this.sendWithApproval<T>(session, command, args);
        if (body !== 'declined') {
          outcomes.push({ session, body });
        }
      } catch (error) {
        if (error instanceof LivefixRequestError) {
          outcomes.push({ session, error });
        } else {
          throw error;
        }
      }
    }
    return outcomes;
  }

  /**
   * Tells the developer how it went. One process: its error as a notification, unless VS
   * Code already showed it (the adapter printed the report in the debug console). Several: a line per process
   * in the debug console; `notFound` in some processes is expected (they do not run that
   * module), and only an error everywhere or a real failure becomes a notification.
   */
  report<T>(outcomes: Outcome<T>[], command: string): void {
    for (const outcome of outcomes) {
      if ('error' in outcome) {
        this.host.log(`[${outcome.session.name}] ${command} failed (${outcome.error.kind}): ${outcome.error.message}`);
      }
    }
    if (outcomes.length === 1) {
      const only = outcomes[0];
      if ('error' in only && !only.error.shownByEditor) {
        this.host.showError(`livefix: ${only.error.message}`);
      }
      return;
    }
    const succeeded = outcomes.filter((outcome) => 'body' in outcome);
    for (const outcome of outcomes) {
      const summary = 'body' in outcome ? lastLine((outcome.body as { report?: string }).report ?? 'done') : notHereOrError(outcome.error);
      this.host.debugConsole(`livefix [${outcome.session.name}]: ${summary}`);
    }
    for (const outcome of outcomes) {
      if ('error' in outcome && !outcome.error.shownByEditor && (outcome.error.kind !== 'notFound' || succeeded.length === 0)) {
        this.host.showError(`livefix [${outcome.session.name}]: ${outcome.error.message}`);
      }
    }
  }
}

function notHereOrError(error: LivefixRequestError): string {
  return error.kind === 'notFound' ? `not applied here (${error.message})` : `failed: ${error.message}`;
}

/** A report ends with its outcome ("Applied generation 3: 1 replaced, ..."): one line per process. */
function lastLine(text: string): string {
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  return lines[lines.length - 1] ?? '';
}

function describeCommand(command: string): string {
  switch (command) {
    case 'livefix/apply':
      return 'this fix';
    case 'livefix/reload':
      return 'this reload';
    case 'livefix/rollback':
      return 'this rollback';
    default:
      return command;
  }
}

/** The modal's detail: why approval is needed and who is affected, in the words of the impact. */
export function approvalDetail(error: ErrorBody): string {
  const lines: string[] = [];
  for (const reason of error.reasons ?? []) {
    lines.push(`• ${reason}`);
  }
  const impact: Impact | undefined = error.impact;
  if (impact) {
    for (const thread of impact.threads ?? []) {
      lines.push(`• Thread "${thread.name}" is executing ${thread.qualnames.join(', ')} and will finish on the old code.`);
    }
    for (const change of impact.signatureChanges ?? []) {
      lines.push(`• Signature changes: ${change}`);
    }
    for (const removal of impact.removals ?? []) {
      lines.push(`• Removed: ${removal}`);
    }
  }
  if (lines.length === 0) {
    lines.push(error.message);
  }
  if (error.report) {
    lines.push('', error.report);
  }
  return lines.join('\n');
}
