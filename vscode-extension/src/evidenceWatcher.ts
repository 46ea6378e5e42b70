/**
 * Follows a fix's live evidence: after an apply/reload whose response says the new code is
 * watched, polls `livefix/evidence {generation}` once a second until the process says the
 * figures are final (or the session ends), keeping the evidence status item up to date;
 * then shows the report. Canary verdicts (the `livefix/canary` event) update the same item.
 */

import type { Host, SessionRef } from './host';
import { finalMessage, finalStatus, verdictStatus, watchingStatus } from './evidence';
import * as protocol from './protocol';
import { LivefixRequestError, type Requests } from './requests';

export interface EvidenceWatcherDeps {
  host: Host;
  requests: Requests;
  /** Resolves after `ms` milliseconds (tests resolve at once and count the calls). */
  sleep: (ms: number) => Promise<void>;
  /** Seconds since the epoch. */
  now: () => number;
}

export const POLL_MS = 1000;
/** Past the window's end by this much and still not final: stop asking (the process is stuck or gone). */
const GRACE_SECONDS = 30;

export const realSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class EvidenceWatcher {
  private readonly ended = new Set<string>();
  /** `session#generation` whose evidence the status item shows. */
  private shown: string | undefined;

  constructor(private readonly deps: EvidenceWatcherDeps) {}

  private show(key: string, state: Parameters<Host['setEvidenceStatus']>[0]): void {
    if (this.shown === key) this.deps.host.setEvidenceStatus(state);
  }

  /**
   * Polls until the figures of `generation` are final; resolves to the final body, or
   * undefined when the session ended or the process stopped answering first. The newest
   * fix followed owns the status item; earlier ones still poll and notify.
   */
  async follow(session: SessionRef, generation: number, state: protocol.EvidenceState): Promise<protocol.EvidenceBody | undefined> {
    const key = `${session.id}#${generation}`;
    this.shown = key;
    this.deps.host.setEvidenceStatus(watchingStatus(session.name, generation, state, this.deps.now()));
    for (;;) {
      await this.deps.sleep(POLL_MS);
      if (this.ended.has(session.id)) return undefined;
      let body: protocol.EvidenceBody;
      try {
        body = await this.deps.requests.send<protocol.EvidenceBody>(session, protocol.EVIDENCE, { generation } satisfies protocol.EvidenceArguments);
      } catch (error) {
        if (!(error instanceof LivefixRequestError)) throw error;
        this.deps.host.log(`[${session.name}] ${protocol.EVIDENCE} of generation ${generation} failed (${error.kind}): ${error.message}; not following it any more`);
        this.show(key, undefined);
        return undefined;
      }
      if (this.ended.has(session.id)) return undefined;
      if (body.state === 'final') {
        this.show(key, finalStatus(session.name, body));
        // A canary's verdict has its own notification (the livefix/canary event).
        if (!body.canary?.verdict) this.deps.host.showInfo(finalMessage(session.name, body));
        return body;
      }
      this.show(key, watchingStatus(session.name, generation, body, this.deps.now()));
      if (this.deps.now() > body.until + GRACE_SECONDS) {
        this.deps.host.log(`[${session.name}] evidence of generation ${generation} still not final ${GRACE_SECONDS} s after its window; not following it any more`);
        this.show(key, undefined);
        return undefined;
      }
    }
  }

  /** A `livefix/canary` event: the verdict takes the item (the newest news about a fix). */
  verdict(session: SessionRef, verdict: protocol.CanaryVerdict): void {
    this.shown = `${session.id}#${verdict.generation}`;
    this.deps.host.setEvidenceStatus(verdictStatus(session.name, verdict));
  }

  /** Stops polling the session's evidence, and hides the item when it showed that session's. */
  sessionEnded(sessionId: string): void {
    this.ended.add(sessionId);
    if (this.shown?.startsWith(`${sessionId}#`)) {
      this.shown = undefined;
      this.deps.host.setEvidenceStatus(undefined);
    }
  }
}
