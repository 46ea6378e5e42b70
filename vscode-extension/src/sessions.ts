/**
 * The livefix debug sessions VS Code is running, grouped by launch.
 *
 * A launch with `subProcess` gets one session per process (children have a parent); a
 * request about a module goes to every session of the launch, because only the process
 * itself knows whether it runs that module (the others answer `notFound`).
 */

import type { SessionRef } from './host';

export class SessionRegistry {
  private readonly sessions = new Map<string, SessionRef>();

  add(session: SessionRef): void {
    this.sessions.set(session.id, session);
  }

  remove(sessionId: string): void {
    this.sessions.delete(sessionId);
  }

  get(sessionId: string): SessionRef | undefined {
    return this.sessions.get(sessionId);
  }

  all(): SessionRef[] {
    return [...this.sessions.values()];
  }

  isEmpty(): boolean {
    return this.sessions.size === 0;
  }

  /** The id of the top-level session of `session`'s launch (itself when it has no livefix parent). */
  rootOf(session: SessionRef): string {
    let current = session;
    const seen = new Set<string>();
    while (current.parentId && this.sessions.has(current.parentId) && !seen.has(current.id)) {
      seen.add(current.id);
      current = this.sessions.get(current.parentId)!;
    }
    return current.id;
  }

  /** Every session of the launch `session` belongs to, the top-level one first. */
  launchOf(session: SessionRef): SessionRef[] {
    const root = this.rootOf(session);
    return this.all()
      .filter((candidate) => this.rootOf(candidate) === root)
      .sort((a, b) => (a.id === root ? -1 : b.id === root ? 1 : 0));
  }

  /**
   * Where a request goes: the launch of the active session when it is a livefix one,
   * else the launch of the only livefix session there is. Empty when it is ambiguous or
   * nothing runs, so the caller can say so instead of guessing.
   */
  targets(active: SessionRef | undefined): SessionRef[] {
    if (active && this.sessions.has(active.id)) {
      return this.launchOf(active);
    }
    const roots = new Set(this.all().map((session) => this.rootOf(session)));
    if (roots.size === 1) {
      return this.launchOf(this.all()[0]);
    }
    return [];
  }
}
