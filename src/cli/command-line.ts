/**
 * What `run` hands to bash: `-- SCRIPT` (one word), `-- CMD ARGS...` (several
 * words: run exactly that command through the patched shell, so its exec is
 * decided) or `-c SCRIPT [NAME ARGS...]` (bash -c's positional parameters).
 */
import { CliError } from './errors.js';

/** Several words: bash runs "$@" exactly (exec, so a builtin or function of that name is not used instead). */
export const COMMAND_SCRIPT = 'exec -- "$@"';
/** $0 of the shell in command mode. */
export const COMMAND_ARGV0 = 'codex-escalate';

export interface ShellInvocation {
  /** Arguments after the shell's path. */
  readonly args: readonly string[];
  /** The script as a user would read it (the command line, quoted, in command mode): what run-level hooks see. */
  readonly script: string;
  /** Its positional parameters ($0 $1 ...), for run-level hooks. */
  readonly scriptArgs: readonly string[];
}

export function shellInvocation(words: readonly string[], command: string | undefined): ShellInvocation {
  if (command !== undefined) return { args: ['-c', command, ...words], script: command, scriptArgs: words };
  if (words.length === 0) throw new CliError('nothing to run: give a SCRIPT (one word) or CMD ARGS... after --, or -c SCRIPT');
  if (words.length === 1) return { args: ['-c', words[0]!], script: words[0]!, scriptArgs: [] };
  return { args: ['-c', COMMAND_SCRIPT, COMMAND_ARGV0, ...words], script: quoteCommandLine(words), scriptArgs: [] };
}

const PLAIN = /^[A-Za-z0-9_@%+=:,./-]+$/;
// Bytes a '...' word cannot show on one line (controls, DEL): written with $'...' escapes.
const CONTROL = /[\x00-\x1f\x7f]/;

/** One word as bash would need it typed: bare, '...' or $'...'. */
export function quoteWord(w: string): string {
  if (PLAIN.test(w)) return w;
  if (!CONTROL.test(w)) return `'${w.replace(/'/g, `'\\''`)}'`;
  const body = [...w]
    .map((c) => {
      if (c === '\\' || c === "'") return `\\${c}`;
      const code = c.charCodeAt(0);
      if (c === '\n') return '\\n';
      if (c === '\t') return '\\t';
      if (code < 0x20 || code === 0x7f) return `\\x${code.toString(16).padStart(2, '0')}`;
      return c;
    })
    .join('');
  return `$'${body}'`;
}

export function quoteCommandLine(words: readonly string[]): string {
  return words.map(quoteWord).join(' ');
}
