/**
 * The history view's content: one quick-pick item per generation, and the two sides of
 * the diff of a generation (what ran before it, what it introduced).
 */

import { historyEvidence } from './evidence';
import type { PickItem } from './host';
import type { GenerationInfo, HistoryBody } from './protocol';
import { extractDefinition } from './pythonSource';
import { LivefixState, sourceKey } from './state';

export type HistoryChoice = { kind: 'generation'; generation: GenerationInfo } | { kind: 'asLoaded' };

export function historyItems(history: HistoryBody): PickItem<HistoryChoice>[] {
  const items: PickItem<HistoryChoice>[] = [...history.generations]
    .sort((a, b) => b.generation - a.generation)
    .map((generation) => ({
      label: `${generation.generation === history.generation ? '$(debug-stackframe) ' : ''}Generation ${generation.generation}: ${generation.action}`,
      description: `${generation.status === 'active' ? 'active' : 'rolled back'} · ${new Date(generation.time * 1000).toLocaleTimeString()}`,
      // The quick pick's detail is one line: the definitions, then the live evidence and canary.
      detail: [
        generation.changes.map((change) => `${change.kind} ${change.module}.${change.qualname}`).join(', ') || '(no definitions)',
        historyEvidence(generation),
      ]
        .filter(Boolean)
        .join(' · '),
      value: { kind: 'generation', generation },
    }));
  items.push({
    label: `${history.generation === 0 ? '$(debug-stackframe) ' : ''}Generation 0: as loaded`,
    description: 'the code the process started with',
    value: { kind: 'asLoaded' },
  });
  return items;
}

export interface DiffSides {
  title: string;
  left: { name: string; text: string };
  right: { name: string; text: string };
}

/**
 * Left: each definition as it ran before the generation (an earlier generation's source
 * seen by this window, else the definition in its file). Right: what the generation
 * brought. Generations applied by another client show what is known: their summary.
 */
export async function generationDiff(
  launchId: string,
  generation: GenerationInfo,
  state: LivefixState,
  readFile: (path: string) => Promise<string | undefined>,
): Promise<DiffSides> {
  const introduced = state.introducedBy(launchId, generation.generation);
  const title = `livefix generation ${generation.generation} (${generation.action}, ${generation.status === 'active' ? 'active' : 'rolled back'})`;
  if (!introduced) {
    const summary = generation.changes.map((change) => `# ${change.kind}: ${change.module}.${change.qualname}`).join('\n');
    return {
      title,
      left: { name: `before-${generation.generation}.py`, text: '# (sources of this generation were not seen by this window)\n' },
      right: { name: `generation-${generation.generation}.py`, text: `${summary}\n` },
    };
  }
  const before: string[] = [];
  const after: string[] = [];
  for (const source of introduced) {
    const header = `# ${source.module}.${source.qualname}`;
    let previous = state.versionBefore(launchId, generation.generation, sourceKey(source));
    if (previous === undefined && source.path) {
      const text = await readFile(source.path);
      previous = text === undefined ? undefined : extractDefinition(text, source.qualname);
    }
    before.push(header, previous ?? '# (not defined before)', '');
    after.push(header, source.source ?? '# (removed)', '');
  }
  return {
    title,
    left: { name: `before-generation-${generation.generation}.py`, text: before.join('\n') },
    right: { name: `generation-${generation.generation}.py`, text: after.join('\n') },
  };
}
