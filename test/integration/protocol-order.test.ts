import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPath, closeFd } from '../../src/native/index.js';
import { encodeJsonFrame } from '../../src/protocol/codec.js';
import { EscalationServer, type DecisionRecord, type EscalationSession } from '../../src/server/escalation-server.js';
import { createDecisionPipeline } from '../../src/policy/decision-pipeline.js';
import { waitFor } from '../helpers/e2e.js';
import { RawClient } from '../helpers/raw-client.js';

/**
 * When the request is written relative to the handshake (docs/protocol.md, "Per exec"): our wrapper writes it
 * into the stream before the handshake, so the server can answer at once; an upstream client sends it after.
 * The server must serve both, and a request too large for the socket buffer split around the handshake.
 * (The wrapper's side, against an upstream-style server: wrapper/tests/test_wrapper.py, TestRun.)
 */
describe('request before or after the handshake, on the real server', () => {
  let server: EscalationServer;
  let session: EscalationSession;
  const decided: DecisionRecord[] = [];
  beforeAll(async () => {
    server = new EscalationServer({ policy: createDecisionPipeline({ denyPrefixes: ['rm'] }), observer: { decided: (r) => decided.push(r) } });
    session = await server.startSession();
  });
  afterAll(() => server.close());

  const request = (argv: string[], env: Record<string, string> = {}, ext?: number) => ({ file: '/usr/bin/true', argv, workdir: '/', env, ...(ext !== undefined ? { ext } : {}) });

  it('a request already in the stream (our wrapper, with its program fd) is decided as one sent later', async () => {
    const prog = openPath('/usr/bin/true');
    const { client, early } = await RawClient.connectWithRequest(session.clientFd, encodeJsonFrame(request(['true', 'early'], {}, 2)), [prog]);
    closeFd(prog);
    try {
      expect(await client.receive()).toMatchObject({ action: 'Run' });
      expect(early).toBeGreaterThan(0);
      const rec = decided.at(-1)!;
      expect(rec.request.argv).toEqual(['true', 'early']);
      expect(rec.request.resolved).toBe(true);
    } finally {
      client.close();
    }
    // And a Deny the same way: the decision is the policy's, whatever the order.
    const denied = await RawClient.connectWithRequest(session.clientFd, encodeJsonFrame({ ...request(['rm', '-rf', 'x']), file: '/usr/bin/rm' }));
    try {
      expect(await denied.client.receive()).toEqual({ action: { Deny: { reason: 'matches --deny "rm"' } } });
    } finally {
      denied.client.close();
    }
  });

  it('an upstream client that sends its request only after the server holds the connection is waited for', async () => {
    const client = RawClient.connect(session.clientFd);
    try {
      const frame = encodeJsonFrame(request(['true', 'late']));
      // Half a frame first: once the server has read it (its budget shows it), it is waiting in a poll for the rest.
      client.sendRaw(frame.subarray(0, 10));
      await waitFor(() => session.bufferedFrameBytes > 0, 'the server holding half a frame');
      client.sendRaw(frame.subarray(10));
      expect(await client.receive()).toEqual({ action: 'Run' });
      expect(decided.at(-1)!.request.argv).toEqual(['true', 'late']);
    } finally {
      client.close();
    }
  });

  it('a request larger than the socket buffer goes partly before and partly after the handshake, and arrives whole', async () => {
    const env = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`BIG${i}`, String.fromCharCode(97 + i).repeat(100_000)]));
    const frame = encodeJsonFrame(request(['true', 'big'], env));
    const { client, early } = await RawClient.connectWithRequest(session.clientFd, frame);
    try {
      expect(await client.receive()).toEqual({ action: 'Run' });
      expect(early).toBeGreaterThan(0);
      expect(early).toBeLessThan(frame.length);
      expect(decided.at(-1)!.request.env).toEqual(env);
    } finally {
      client.close();
    }
  });
});
