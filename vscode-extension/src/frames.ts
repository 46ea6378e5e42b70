/** Formats a `livefix/captureFrames` answer as the read-only text the developer reads. */

import type { CaptureFramesBody } from './protocol';

export function formatFrames(sessionName: string, body: CaptureFramesBody, when: Date): string {
  const lines = [`# Threads of "${sessionName}" captured at ${when.toISOString()}`, ''];
  for (const thread of body.threads) {
    const marker = thread.livefix ? ' (serving this capture)' : '';
    lines.push(`Thread ${thread.id} "${thread.name}"${marker}`);
    if (thread.frames.length === 0) {
      lines.push('  (no Python frames)');
    }
    for (const frame of thread.frames) {
      lines.push(`  ${frame.qualname || frame.name}  ${frame.path}:${frame.line}${frame.module ? `  [${frame.module}]` : ''}`);
      for (const [name, value] of Object.entries(frame.locals ?? {})) {
        lines.push(`      ${name} = ${value}`);
      }
    }
    lines.push('');
  }
  return lines.join('\n');
}
