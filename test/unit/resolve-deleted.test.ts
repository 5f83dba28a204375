import { linkSync, mkdtempSync, realpathSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openPath } from '../../src/native/index.js';
import { resolveRequest } from '../../src/server/resolve-request.js';
import { closeQuietly } from '../../src/server/owned-fds.js';

// Real path: the kernel names the fd by it.
const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'cse-deleted-')));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** resolveRequest on the wrapper's own O_PATH fd (ext 2), as the server calls it. */
function resolveFd(fd: number) {
  const r = resolveRequest({ file: 'prog', argv: ['prog'], workdir: dir, env: {}, ext: 2 }, { sessionId: 's', requestId: 'r' }, { peerFd: -1, attachedFd: fd });
  if (r.programFd !== undefined) closeQuietly(r.programFd);
  return r;
}

describe('program fd resolution: the fstat for nlink only behind a " (deleted)" name', () => {
  it('a file unlinked after the wrapper opened it (nlink 0) is not resolved; one that kept another name, or is named "… (deleted)", is', () => {
    const gone = path.join(dir, 'gone');
    writeFileSync(gone, '#!/bin/sh\n', { mode: 0o755 });
    const fdGone = openPath(gone);
    unlinkSync(gone);
    expect(resolveFd(fdGone)).toMatchObject({ resolved: false, resolveError: expect.stringMatching(/^ENOENT/) });

    const a = path.join(dir, 'a');
    writeFileSync(a, '#!/bin/sh\n', { mode: 0o755 });
    linkSync(a, path.join(dir, 'b'));
    const fdA = openPath(a);
    unlinkSync(a); // its dentry reads "…/a (deleted)", but the file still has a name (nlink 1)
    expect(resolveFd(fdA)).toMatchObject({ resolved: true, program: `${a} (deleted)` });

    const named = path.join(dir, 'tool (deleted)');
    writeFileSync(named, '#!/bin/sh\n', { mode: 0o755 });
    expect(resolveFd(openPath(named))).toMatchObject({ resolved: true, program: named });

    const plain = path.join(dir, 'plain');
    writeFileSync(plain, '#!/bin/sh\n', { mode: 0o755 });
    expect(resolveFd(openPath(plain))).toMatchObject({ resolved: true, program: plain });
  });
});
