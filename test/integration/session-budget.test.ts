import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EscalationServer, type EscalationSession } from '../../src/server/escalation-server.js';
import { recordingPolicy } from '../helpers/harness.js';
import { waitFor } from '../helpers/e2e.js';
import { RawClient } from '../helpers/raw-client.js';

/** A sandbox must not be able to make the server buffer without bound by opening many half-sent frames. */
describe('per-session budget for half-received frames', () => {
  let server: EscalationServer;
  let session: EscalationSession;
  beforeAll(async () => {
    server = new EscalationServer({ policy: recordingPolicy().policy, sessionFrameBudgetBytes: 1 << 20 });
    session = await server.startSession();
  });
  afterAll(() => server.close());

  const header = (n: number) => {
    const h = Buffer.alloc(4);
    h.writeUInt32LE(n, 0);
    return h;
  };

  it('drops a connection whose frame would exceed the budget, and recovers once the holder goes away', async () => {
    const holder = RawClient.connect(session.clientFd);
    holder.sendRaw(Buffer.concat([header(900_000), Buffer.alloc(10, 0x20)]));
    // The holder's frame is reserved in full once its first bytes are read.
    await waitFor(() => session.bufferedFrameBytes >= 900_000, "the holder's frame in the budget");
    const greedy = RawClient.connect(session.clientFd);
    greedy.sendRaw(Buffer.concat([header(500_000), Buffer.alloc(10, 0x20)]));
    // Dropped: EOF, or a reset because its unread bytes were discarded.
    const outcome = await greedy.receive(2000).catch((e: Error) => (/ECONNRESET/.test(e.message) ? 'reset' : e.message));
    expect(['eof', 'reset']).toContain(outcome);
    greedy.close();
    holder.close();
    await waitFor(() => session.bufferedFrameBytes === 0, 'the budget released');
    const ok = RawClient.connect(session.clientFd);
    ok.send({ file: '/usr/bin/true', argv: ['true'], workdir: '/', env: {} });
    expect(await ok.receive(2000)).toEqual({ action: 'Run' });
    ok.close();
  });
});
