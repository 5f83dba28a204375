/**
 * Is this bash the patched one? Decided by reading the binary, never by
 * running it (a --shell path may be anything): the patch compiles in the name
 * of the variable it reads, EXEC_WRAPPER (and the legacy BASH_EXEC_WRAPPER,
 * whose tail the linker may merge with it). A stock bash has neither.
 */
import { accessSync, closeSync, constants, openSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import { CliError } from './errors.js';

const MARKER = Buffer.from('EXEC_WRAPPER\0');
const CHUNK = 1 << 20;

/** True when the file contains the patch's marker string. */
export function hasExecWrapperMarker(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(CHUNK + MARKER.length);
    let carry = 0;
    for (;;) {
      const n = readSync(fd, buf, carry, CHUNK, null);
      if (n === 0) return false;
      const end = carry + n;
      if (buf.subarray(0, end).indexOf(MARKER) >= 0) return true;
      // Keep the tail so a marker split across two reads is still found.
      carry = Math.min(MARKER.length - 1, end);
      buf.copy(buf, 0, end - carry, end);
    }
  } finally {
    closeSync(fd);
  }
}

/** Why `file` cannot be the shell, or undefined when it can. */
export function shellProblem(file: string, unpatchedOk = false): string | undefined {
  let st;
  try {
    st = statSync(file);
  } catch (err) {
    return `cannot use it: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`;
  }
  if (!st.isFile()) return 'not a regular file';
  try {
    accessSync(file, constants.X_OK);
  } catch {
    return 'not executable';
  }
  if (unpatchedOk) return undefined;
  let patched;
  try {
    patched = hasExecWrapperMarker(file);
  } catch (err) {
    return `cannot read it: ${(err as Error).message}`;
  }
  if (!patched) return 'not the patched bash (no exec-wrapper support in the binary): its execs would not be decided; omit --shell to use the patched build, or build one with "npm run build:bash"';
  return undefined;
}

/** The --shell path, absolute, or a CliError (exit 125) before anything starts. */
export function checkedShell(file: string, what = '--shell', unpatchedOk = false): string {
  const abs = path.resolve(file);
  const problem = shellProblem(abs, unpatchedOk);
  if (problem !== undefined) throw new CliError(`${what} ${abs}: ${problem}`);
  return abs;
}
