import { shlexSplit } from './rules/shlex.js';

/**
 * `--deny` / `--escalate` prefixes: shell words, matched literally against the
 * program and its arguments. Split with the same tokenizer as rule examples
 * (shlex.ts). Anything a shell would expand or interpret — `$`, backticks,
 * globs, braces, `~`, operators, comments — is refused with a clear error, so
 * a pattern never silently means something other than what it reads as
 * (`echo $HOME` must not become ["echo", ""]). Single quotes make any of
 * those characters literal, as in a shell.
 */

const OPERATORS = new Set(['|', '&', ';', '<', '>', '(', ')']);
const GLOBS = new Set(['*', '?', '[', ']']);

function refuse(pattern: string, what: string): never {
  throw new Error(`pattern ${JSON.stringify(pattern)}: ${what}; only plain words are allowed (single-quote a character to match it literally)`);
}

/** Throws on the first character a shell would not take literally outside single quotes. */
function checkLiteral(pattern: string): void {
  let quote: "'" | '"' | undefined;
  let wordStart = true;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      continue;
    }
    if (c === '\\') {
      i++; // the next character is literal (in double quotes only \$ \` \" \\ are escapes; the rest stay literal too)
      wordStart = false;
      continue;
    }
    if (c === '$' || c === '`') refuse(pattern, `${JSON.stringify(c)} would expand in a shell (a prefix is matched literally, nothing is expanded)`);
    if (quote === '"') {
      if (c === '"') quote = undefined;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\n') {
      wordStart = true;
      continue;
    }
    if (c === "'" || c === '"') quote = c;
    else if (OPERATORS.has(c)) refuse(pattern, `shell operator ${JSON.stringify(c)}`);
    else if (GLOBS.has(c)) refuse(pattern, `glob character ${JSON.stringify(c)} (patterns are not globs)`);
    else if (c === '{' || c === '}') refuse(pattern, `brace ${JSON.stringify(c)} would expand in a shell`);
    else if (wordStart && c === '~') refuse(pattern, '"~" would expand to a home directory in a shell');
    else if (wordStart && c === '#') refuse(pattern, '"#" starts a comment');
    wordStart = false;
  }
  if (quote !== undefined) refuse(pattern, `unclosed ${quote}`);
}

export function parsePrefix(pattern: string): string[] {
  checkLiteral(pattern);
  const words = shlexSplit(pattern);
  if (words === undefined) refuse(pattern, 'unclosed quote or trailing backslash');
  if (words.length === 0) throw new Error('pattern is empty');
  return words;
}

export function matchesPrefix(words: readonly string[], prefix: readonly string[]): boolean {
  if (prefix.length > words.length) return false;
  return prefix.every((w, i) => words[i] === w);
}
