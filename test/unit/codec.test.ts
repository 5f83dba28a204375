import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  bytesToWireString,
  encodeFrame,
  encodeJsonFrame,
  FrameReader,
  parseJsonPayload,
  ProtocolError,
  wireStringToBytes,
} from '../../src/protocol/codec.js';
import { EscalateRequestSchema, EscalateResponseSchema, toWireResponse } from '../../src/protocol/messages.js';

describe('frame codec', () => {
  it('types outgoing frames by their schemas (a drifted literal does not compile)', () => {
    expect(encodeFrame({ exit_code: 3, signal: 9 }).subarray(4).toString()).toBe('{"exit_code":3,"signal":9}');
    // @ts-expect-error exit_code is a number in SuperExecResultSchema
    expect(encodeFrame({ exit_code: '3' }).subarray(4).toString()).toBe('{"exit_code":"3"}');
    // @ts-expect-error no message has an exitCode field
    expect(encodeFrame({ exitCode: 3 }).length).toBeGreaterThan(4);
  });

  it('round-trips a message through encode and an incremental reader fed byte by byte', () => {
    const msg = { file: '/bin/echo', argv: ['echo', 'hi'], workdir: '/', env: { A: 'b' } };
    const frame = encodeFrame(msg);
    expect(frame.readUInt32LE(0)).toBe(frame.length - 4);
    const reader = new FrameReader();
    const out: Buffer[] = [];
    for (const byte of frame) out.push(...reader.push(Buffer.of(byte)));
    expect(out).toHaveLength(1);
    expect(parseJsonPayload(out[0]!)).toEqual(msg);
    expect(reader.idle).toBe(true);
  });

  it('splits several frames arriving in one chunk', () => {
    const reader = new FrameReader();
    const chunk = Buffer.concat([encodeJsonFrame({ a: 1 }), encodeJsonFrame({ b: 2 }), encodeJsonFrame({ c: 3 }).subarray(0, 5)]);
    const frames = reader.push(chunk).map((p) => parseJsonPayload(p));
    expect(frames).toEqual([{ a: 1 }, { b: 2 }]);
    expect(reader.idle).toBe(false);
  });

  it('refuses a 4 GiB length prefix before allocating anything', () => {
    const reader = new FrameReader();
    const header = Buffer.alloc(4);
    header.writeUInt32LE(0xffffffff, 0);
    expect(() => reader.push(header)).toThrow(ProtocolError);
    expect(() => new FrameReader(100).push(Buffer.from([101, 0, 0, 0]))).toThrow(/exceeds the 100-byte limit/);
  });

  it('asks for exactly the rest of the current frame', () => {
    const reader = new FrameReader();
    expect(reader.wanted).toBe(4);
    reader.push(Buffer.from([10, 0]));
    expect(reader.wanted).toBe(2);
    reader.push(Buffer.from([0, 0]));
    expect(reader.wanted).toBe(10);
  });

  it('rejects invalid JSON and invalid UTF-8 payloads with a ProtocolError', () => {
    expect(() => parseJsonPayload(Buffer.from('{"a":'))).toThrow(/not valid JSON/);
    expect(() => parseJsonPayload(Buffer.from([0x22, 0xff, 0x22]))).toThrow(/not valid UTF-8/);
  });
});

describe('non-UTF-8 bytes as lone surrogates', () => {
  it('maps invalid bytes to U+DC80..U+DCFF and back exactly', () => {
    const raw = Buffer.from([0x66, 0x6f, 0xff, 0x80, 0xc3, 0xa9, 0xed, 0xa0, 0x80]);
    const wire = bytesToWireString(raw);
    expect(wire).toBe('fo\udcff\udc80é\udced\udca0\udc80');
    expect(wireStringToBytes(wire).equals(raw)).toBe(true);
    // And through JSON, as it travels.
    expect(wireStringToBytes(JSON.parse(JSON.stringify(wire)) as string).equals(raw)).toBe(true);
  });

  it('round-trips arbitrary byte strings (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (arr) => {
        const raw = Buffer.from(arr);
        expect(wireStringToBytes(bytesToWireString(raw)).equals(raw)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('leaves valid UTF-8 (including astral characters) alone', () => {
    const s = 'héllo 🌍 日本';
    expect(bytesToWireString(Buffer.from(s))).toBe(s);
    expect(wireStringToBytes(s).toString('utf8')).toBe(s);
  });

  it('rejects lone surrogates that are not escaped bytes', () => {
    expect(() => wireStringToBytes('a\ud800b')).toThrow(ProtocolError);
    expect(() => wireStringToBytes('a\udc10b')).toThrow(ProtocolError);
  });
});

describe('message schemas', () => {
  it('accepts the upstream request shape and our optional ext marker', () => {
    const base = { file: 'ls', argv: ['ls'], workdir: '/tmp', env: { PATH: '/bin' } };
    expect(EscalateRequestSchema.parse(base)).toEqual(base);
    expect(EscalateRequestSchema.parse({ ...base, ext: 1 }).ext).toBe(1);
  });

  it.each([
    [{ file: '', argv: [], workdir: '/', env: {} }, /file is empty/],
    [{ file: 'a\0b', argv: [], workdir: '/', env: {} }, /NUL/],
    [{ file: 'a', argv: ['x\0'], workdir: '/', env: {} }, /NUL/],
    [{ file: 'a', argv: [], workdir: '/', env: { 'A=B': 'c' } }, /invalid env name/],
    [{ file: 'a', argv: [1], workdir: '/', env: {} }, /expected string/i],
    [{ argv: [], workdir: '/', env: {} }, /file/],
  ])('rejects %j', (input, message) => {
    const r = EscalateRequestSchema.safeParse(input);
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toMatch(message);
  });

  it('serialises actions exactly as serde does upstream', () => {
    expect(JSON.stringify(toWireResponse({ kind: 'run' }))).toBe('{"action":"Run"}');
    expect(JSON.stringify(toWireResponse({ kind: 'escalate' }))).toBe('{"action":"Escalate"}');
    expect(JSON.stringify(toWireResponse({ kind: 'deny', reason: null }))).toBe('{"action":{"Deny":{"reason":null}}}');
    expect(JSON.stringify(toWireResponse({ kind: 'deny', reason: 'no "way"' }))).toBe('{"action":{"Deny":{"reason":"no \\"way\\""}}}');
    expect(EscalateResponseSchema.parse({ action: { Deny: { reason: 'x' } } })).toEqual({ action: { Deny: { reason: 'x' } } });
  });
});

describe('ByteBudget shared by frame readers', () => {
  it('refuses a frame that would exceed the budget and gives bytes back on completion and dispose', async () => {
    const { ByteBudget } = await import('../../src/protocol/codec.js');
    const budget = new ByteBudget(100);
    const a = new FrameReader(1000, budget);
    const b = new FrameReader(1000, budget);
    a.push(Buffer.from([60, 0, 0, 0]));
    expect(budget.inUse).toBe(60);
    expect(() => b.push(Buffer.from([50, 0, 0, 0]))).toThrow(/half-received frames/);
    a.dispose();
    expect(budget.inUse).toBe(0);
    const c = new FrameReader(1000, budget);
    const frames = c.push(encodeJsonFrame({ ok: 1 }));
    expect(frames).toHaveLength(1);
    expect(budget.inUse).toBe(0);
  });
});
