// The executor's side of an escalation, attacked as a hostile client on the
// session socket would (no wrapper): every malformed fd hand-over runs
// nothing and leaves no fd behind in the server.
import { existsSync, openSync, closeSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EscalationServer } from '../../src/server/escalation-server.js';
import { createStaticPolicy } from '../../src/policy/static-policy.js';
import { openFdCount } from '../helpers/harness.js';
import { waitFor } from '../helpers/e2e.js';
import { RawClient } from '../helpers/raw-client.js';

let server: EscalationServer;
const proofs: string[] = [];
const proof = (name: string): string => {
  const p = `/var/tmp/cse-executor-${name}-${process.pid}`;
  rmSync(p, { force: true });
  proofs.push(p);
  return p;
};

beforeAll(() => {
  server = new EscalationServer({ policy: createStaticPolicy({ escalate: ['touch'] }) });
});
afterAll(async () => {
  await server.close();
  for (const p of proofs) rmSync(p, { force: true });
});

/** Ask for `touch <file>` to be escalated; resolves with the connection once the server said Escalate. */
async function escalated(sessionFd: number, file: string): Promise<RawClient> {
  const c = RawClient.connect(sessionFd);
  c.send({ file: '/usr/bin/touch', argv: ['touch', file], workdir: process.cwd(), env: {}, ext: 1 });
  expect(await c.receive(5000)).toEqual({ action: 'Escalate' });
  return c;
}

describe('fd hand-over after Escalate', () => {
  it('control: a well-formed hand-over runs the command and reports its exit (the proof file appears)', async () => {
    const session = await server.startSession();
    const p = proof('control');
    const devnull = openSync('/dev/null', 'r+');
    const c = await escalated(session.clientFd, p);
    try {
      c.send({ fds: [0, 1, 2] }, [devnull, devnull, devnull]);
      expect(await c.receive(5000)).toEqual({ exit_code: 0 });
      expect(existsSync(p)).toBe(true);
    } finally {
      c.close();
      closeSync(devnull);
      await session.end();
    }
  });

  const malformed: [string, (c: RawClient, fd: number) => void][] = [
    ['a target fd listed twice', (c, fd) => c.send({ fds: [0, 0] }, [fd, fd])],
    ['more targets listed than fds attached', (c, fd) => c.send({ fds: [0, 1] }, [fd])],
    ['more fds attached than targets listed', (c, fd) => c.send({ fds: [0] }, [fd, fd, fd])],
    ['a frame that is not a SuperExecMessage', (c, fd) => c.send({ fds: 'all' }, [fd])],
    ['a frame that is not JSON', (c, fd) => c.sendRaw(Buffer.concat([Buffer.from([4, 0, 0, 0]), Buffer.from('nope')]), [fd])],
    ['a negative target', (c, fd) => c.send({ fds: [-1] }, [fd])],
    [
      'more than 1024 fds across continued frames',
      (c, fd) => {
        for (let i = 0; i < 66; i++) {
          try {
            c.send({ fds: Array.from({ length: 16 }, (_, j) => 3 + i * 16 + j), more: true }, Array.from({ length: 16 }, () => fd));
          } catch {
            return; // dropped by the server meanwhile
          }
        }
      },
    ],
    ['more: true, then hang-up', (c, fd) => c.send({ fds: [0], more: true }, [fd])],
  ];

  for (const [name, attack] of malformed) {
    it(`${name}: nothing runs, the connection is dropped, no fd is left in the server`, async () => {
      const session = await server.startSession();
      const baseline = openFdCount();
      const p = proof(name.replace(/\W+/g, '-'));
      const devnull = openSync('/dev/null', 'r+');
      const c = await escalated(session.clientFd, p);
      try {
        attack(c, devnull);
        if (name.endsWith('hang-up')) c.close();
        else expect(await c.receive(5000).catch((e: Error) => (/ECONNRESET/.test(e.message) ? 'eof' : e.message))).toBe('eof');
      } finally {
        c.close();
        closeSync(devnull);
      }
      await waitFor(() => openFdCount() <= baseline, `fds back to ${baseline} (now ${openFdCount()})`);
      expect(existsSync(p)).toBe(false);
      await session.end();
      expect(existsSync(p)).toBe(false);
    });
  }

  it('a hand-over that arrives after the session ended starts nothing', async () => {
    const session = await server.startSession();
    const p = proof('after-end');
    const devnull = openSync('/dev/null', 'r+');
    const c = await escalated(session.clientFd, p);
    try {
      await session.end();
      try {
        c.send({ fds: [0, 1, 2] }, [devnull, devnull, devnull]);
      } catch {
        // Already closed by the server: nothing to hand over to.
      }
      expect(await c.receive(5000).catch(() => 'eof')).toBe('eof');
      expect(existsSync(p)).toBe(false);
    } finally {
      c.close();
      closeSync(devnull);
    }
  });
});
