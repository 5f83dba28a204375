/**
 * Where the sandbox can write. Everything under these roots is hostile: a
 * program there may be one the script just made, a policy file there may be
 * one the script just edited. The roots are real paths (symlink-free), so a
 * plain prefix test against another real path is exact.
 */
import { lstatSync, readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';

/**
 * Always hostile besides the session's own paths: the sandbox's private /tmp,
 * /dev/shm and /dev (bwrap's --dev is its own tmpfs) map differently from
 * ours, and with --sandbox none they are plainly writable.
 */
export const ALWAYS_WRITABLE = ['/tmp', '/dev/shm', '/dev'] as const;

/** Real path of `p`, or of its nearest existing ancestor joined with the rest (a path that does not exist yet). */
export function realpathOrLexical(p: string): string {
  const abs = path.resolve(p);
  try {
    return realpathSync(abs);
  } catch {
    const parent = path.dirname(abs);
    if (parent === abs) return abs;
    return path.join(realpathOrLexical(parent), path.basename(abs));
  }
}

/** The session's sandbox-writable roots: cwd, every --writable path, /tmp and /dev/shm (real paths, deduplicated). */
export function sandboxWritableRoots(cwd: string, writable: readonly string[] = []): string[] {
  const out: string[] = [];
  for (const p of [cwd, ...writable, ...ALWAYS_WRITABLE]) {
    const r = realpathOrLexical(p);
    if (!out.includes(r)) out.push(r);
  }
  return out;
}

/** The root `real` (an absolute, symlink-free path) lies under, if any. */
export function rootContaining(real: string, roots: readonly string[]): string | undefined {
  for (const r of roots) {
    if (r === '/' || real === r || real.startsWith(`${r}/`)) return r;
  }
  return undefined;
}

export interface PathExposure {
  /** The path (the file itself, or a symlink on the way to it) that the sandbox can change. */
  readonly path: string;
  readonly root: string;
  readonly why: 'inside' | 'symlink' | 'hardlink';
}

/**
 * Can the sandbox change what `p` names or contains? Follows the symlink
 * chain by hand: a link that lives under a root can be re-pointed later, even
 * when today it leads outside. A regular file with other hard links may share
 * its inode with a path under a root, which we cannot see from here: reported
 * too (fail closed). Undefined: out of the sandbox's reach.
 */
export function sandboxExposure(p: string, roots: readonly string[], opts: { readonly hardlinks?: boolean } = {}): PathExposure | undefined {
  let pending = path.resolve(p).split('/').filter(Boolean);
  let cur = '/';
  for (let hops = 0; pending.length > 0; ) {
    const name = pending.shift()!;
    if (name === '.') continue;
    if (name === '..') {
      cur = path.dirname(cur);
      continue;
    }
    const next = path.join(cur, name);
    let st;
    try {
      st = lstatSync(next);
    } catch {
      // Does not exist (yet): whoever can create it is whoever can write its directory.
      const real = path.join(cur, ...[name, ...pending]);
      const root = rootContaining(real, roots);
      return root === undefined ? undefined : { path: real, root, why: 'inside' };
    }
    if (st.isSymbolicLink()) {
      const root = rootContaining(next, roots);
      if (root !== undefined) return { path: next, root, why: 'symlink' };
      if (++hops > 40) return { path: next, root: '/', why: 'symlink' }; // ELOOP: cannot tell, so hostile
      const target = readlinkSync(next);
      pending = [...target.split('/').filter(Boolean), ...pending];
      if (target.startsWith('/')) cur = '/';
      continue;
    }
    cur = next;
    if (pending.length === 0 && opts.hardlinks !== false && st.isFile() && st.nlink > 1) {
      const root = rootContaining(cur, roots);
      return { path: cur, root: root ?? '(unknown: another hard link)', why: root === undefined ? 'hardlink' : 'inside' };
    }
  }
  const root = rootContaining(cur, roots);
  return root === undefined ? undefined : { path: cur, root, why: 'inside' };
}

/** One line for a warning: why `file` is within the sandbox's reach. */
export function describeExposure(file: string, e: PathExposure): string {
  if (e.why === 'symlink') return `${file} goes through the symlink ${e.path}, which lies in the sandbox-writable ${e.root}`;
  if (e.why === 'hardlink') return `${file} has other hard links, which may lie in a sandbox-writable location`;
  return `${file} lies in the sandbox-writable ${e.root}`;
}
