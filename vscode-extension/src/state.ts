/**
 * What each livefix launch is running, learnt from its `livefix/applied` events: the
 * current generation, the source of every replaced definition, and per generation the
 * sources it introduced (for the history diff).
 */

import type { ChangeResultBody, RunningSource } from './protocol';
import { extractDefinition, sameDefinition } from './pythonSource';

interface LaunchState {
  generation: number;
  /** `path|qualname` (or `module|qualname`) -> what runs now. */
  running: Map<string, RunningSource>;
  /** generation -> the sources it introduced. */
  introduced: Map<number, RunningSource[]>;
}

export function sourceKey(source: Pick<RunningSource, 'module' | 'path' | 'qualname'>): string {
  return `${source.path ?? source.module}|${source.qualname}`;
}

export class LivefixState {
  private readonly launches = new Map<string, LaunchState>();

  private launch(launchId: string): LaunchState {
    let state = this.launches.get(launchId);
    if (!state) {
      state = { generation: 0, running: new Map(), introduced: new Map() };
      this.launches.set(launchId, state);
    }
    return state;
  }

  onApplied(launchId: string, body: ChangeResultBody): void {
    const state = this.launch(launchId);
    state.generation = body.generation;
    const sources = body.sources ?? [];
    if (body.action !== 'rollback' && sources.length) {
      state.introduced.set(body.generation, sources);
    }
    for (const source of sources) {
      if (source.source === null) {
        state.running.delete(sourceKey(source)); // back to what the file had when loaded
      } else {
        state.running.set(sourceKey(source), source);
      }
    }
  }

  setGeneration(launchId: string, generation: number): void {
    this.launch(launchId).generation = generation;
  }

  forget(launchId: string): void {
    this.launches.delete(launchId);
  }

  generation(launchId: string): number {
    return this.launches.get(launchId)?.generation ?? 0;
  }

  running(launchId: string): RunningSource[] {
    return [...(this.launches.get(launchId)?.running.values() ?? [])];
  }

  introducedBy(launchId: string, generation: number): RunningSource[] | undefined {
    return this.launches.get(launchId)?.introduced.get(generation);
  }

  /** The version of a definition before `generation` (undefined: as loaded from its file). */
  versionBefore(launchId: string, generation: number, key: string): string | undefined {
    const state = this.launches.get(launchId);
    if (!state) return undefined;
    const earlier = [...state.introduced.keys()].filter((g) => g < generation).sort((a, b) => b - a);
    for (const g of earlier) {
      const hit = state.introduced.get(g)!.find((source) => sourceKey(source) === key);
      if (hit?.source) return hit.source;
    }
    return undefined;
  }

  /**
   * What a `livefix/applied` event of rolling `generation` back would have said, for a
   * rollback the process made by itself (a canary's), which sends only `livefix/canary`:
   * each definition the generation introduced runs its version from before it again
   * (null: as loaded, as far as this window saw). `now` is the generation running after it.
   */
  rolledBackBody(launchId: string, generation: number, now: number): ChangeResultBody {
    const sources = (this.introducedBy(launchId, generation) ?? []).map((source) => ({
      ...source,
      source: this.versionBefore(launchId, generation, sourceKey(source)) ?? null,
      generation: now,
    }));
    return {
      generation: now,
      applied: [],
      impact: { threads: [], signatureChanges: [], removals: [] },
      report: `Rolled back generation ${generation} (canary)`,
      dryRun: false,
      warnings: [],
      action: 'rollback',
      sources,
    };
  }

  /**
   * Definitions whose running code is not what their file says: replaced in the process
   * and not yet written back (persist, or the developer saved the same text).
   */
  async unpersisted(launchId: string, readFile: (path: string) => Promise<string | undefined>): Promise<RunningSource[]> {
    const pending: RunningSource[] = [];
    for (const source of this.running(launchId)) {
      if (source.source === null) continue;
      const fileText = source.path ? await readFile(source.path) : undefined;
      const onDisk = fileText === undefined ? undefined : extractDefinition(fileText, source.qualname);
      if (onDisk === undefined || !sameDefinition(onDisk, source.source)) {
        pending.push(source);
      }
    }
    return pending;
  }
}
