/**
 * Just enough Python source handling for the editor side: find a definition's text in a
 * file by qualified name, and compare two versions of a definition ignoring indentation.
 *
 * Used for the history diff's "before" side and for counting unpersisted changes; the
 * language server does the exact work (persist edits) with libcst.
 */

const DEFINITION = /^(\s*)(?:async\s+def|def|class)\s+([A-Za-z_][A-Za-z0-9_]*)\b/;

/** The text of the definition `qualname` (e.g. `Cart.total`) in `text`, decorators included. */
export function extractDefinition(text: string, qualname: string): string | undefined {
  const lines = text.split(/\r?\n/);
  let start = 0;
  let end = lines.length;
  let found: { first: number; last: number } | undefined;
  for (const name of qualname.split('.').filter((part) => part !== '<locals>')) {
    found = findDefinition(lines, name, start, end);
    if (!found) {
      return undefined;
    }
    start = found.first + 1;
    end = found.last + 1;
  }
  if (!found) {
    return undefined;
  }
  let first = found.first;
  while (first > 0 && /^\s*@/.test(lines[first - 1])) {
    first -= 1;
  }
  return lines.slice(first, found.last + 1).join('\n');
}

function findDefinition(lines: string[], name: string, start: number, end: number): { first: number; last: number } | undefined {
  let outer: number | undefined;
  for (let index = start; index < end; index++) {
    const match = DEFINITION.exec(lines[index]);
    if (!match) {
      continue;
    }
    const indent = match[1].length;
    // Only direct children of the enclosing block: the shallowest definitions in range.
    if (outer === undefined) {
      outer = indent;
    }
    if (indent !== outer || match[2] !== name) {
      continue;
    }
    let last = index;
    for (let next = index + 1; next < end; next++) {
      const line = lines[next];
      if (line.trim() === '') {
        continue;
      }
      if (indentation(line) <= indent) {
        break;
      }
      last = next;
    }
    // The last occurrence wins, as it does when Python runs the module.
    const later = findDefinition(lines, name, last + 1, end);
    return later && indentation(lines[later.first]) === indent ? later : { first: index, last };
  }
  return undefined;
}

function indentation(line: string): number {
  return line.length - line.trimStart().length;
}

/** Removes the common indentation and trailing blanks, so nesting does not count as a change. */
export function normalize(source: string): string {
  const lines = source.replace(/\r\n/g, '\n').split('\n').map((line) => line.replace(/\s+$/, ''));
  while (lines.length && lines[0] === '') lines.shift();
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  const common = Math.min(...lines.filter((line) => line !== '').map(indentation));
  return lines.map((line) => line.slice(Number.isFinite(common) ? common : 0)).join('\n');
}

export function sameDefinition(a: string, b: string): boolean {
  return normalize(a) === normalize(b);
}
