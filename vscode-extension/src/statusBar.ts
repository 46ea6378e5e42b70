/** The status bar item of a livefix session: current generation and unpersisted changes. */

import type { StatusItemState } from './host';
import type { RunningSource } from './protocol';

export const SHOW_HISTORY_COMMAND = 'livefix.showHistory';

export function statusItem(sessionName: string | undefined, generation: number, unpersisted: RunningSource[]): StatusItemState | undefined {
  if (sessionName === undefined) {
    return undefined;
  }
  const pending = unpersisted.length;
  const names = unpersisted.map((source) => `${source.module}.${source.qualname}`).join(', ');
  return {
    text: `$(zap) gen ${generation}${pending ? ` · ${pending} unpersisted` : ''}`,
    tooltip:
      `livefix: "${sessionName}" runs generation ${generation}` +
      (pending ? `; ${pending} definition${pending === 1 ? '' : 's'} not in ${pending === 1 ? 'its file' : 'their files'}: ${names}` : '') +
      '. Click for the history.',
    command: SHOW_HISTORY_COMMAND,
  };
}
