import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteBudget, encodeJsonFrame, FrameReader } from '../../src/protocol/codec.js';
import { pathFileName } from '../../src/policy/rules/ruleset.js';

/** pathFileName as it was before its fast path (Rust's Path::file_name). */
function referenceFileName(p: string): string | undefined {
  const parts = p.split('/').filter((s, i) => s !== '' && !(s === '.' && (i > 0 || p.startsWith('/'))));
  const last = parts[parts.length - 1];
  if (last === undefined || last === '..' || last === '.') return undefined;
  return last;
}

describe('hot-path shortcuts decide as the code they replace', () => {
  it('pathFileName: its fast path agrees with the full split on every path made of /, ., .., names', () => {
    const seg = fc.constantFrom('/', '.', '..', 'a', 'bin', ' ', '...', '//');
    fc.assert(
      fc.property(fc.array(seg, { maxLength: 8 }), (parts) => {
        const p = parts.join('');
        expect(pathFileName(p)).toBe(referenceFileName(p));
      }),
      { numRuns: 5000 },
    );
    for (const p of ['/usr/bin/true', 'true', '/', '', '.', '..', '/a/..', '/a/.', 'a/.', './a', '/a/b/', '/a//b']) expect(pathFileName(p)).toBe(referenceFileName(p));
  });

  it('FrameReader: frames split anywhere, or a payload read in one recv of its size, give the same payloads, budget back to 0', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 40 }), { minLength: 1, maxLength: 4 }), fc.array(fc.integer({ min: 1, max: 50 }), { maxLength: 10 }), (payloads, cuts) => {
        const frames = payloads.map((p) => encodeJsonFrame(p));
        const all = Buffer.concat(frames);
        const budget = new ByteBudget(1 << 20);
        const reader = new FrameReader(1 << 20, budget);
        const got: string[] = [];
        let off = 0;
        let i = 0;
        while (off < all.length) {
          // Each chunk in a buffer of its own, as recvMsg returns them (the zero-copy case applies to some).
          const n = Math.min(cuts[i++ % Math.max(1, cuts.length)] ?? all.length, all.length - off);
          const chunk = Buffer.alloc(n);
          all.copy(chunk, 0, off, off + n);
          off += n;
          for (const f of reader.push(chunk)) got.push(JSON.parse(f.toString('utf8')) as string);
        }
        expect(got).toEqual(payloads);
        expect(reader.idle).toBe(true);
        expect(budget.inUse).toBe(0);
      }),
      { numRuns: 2000 },
    );
    // The server's own pattern: the 4-byte prefix, then exactly `wanted` bytes, handed out without a copy.
    const frame = encodeJsonFrame({ file: '/bin/true' });
    const reader = new FrameReader();
    expect(reader.push(Buffer.from(frame.subarray(0, 4)))).toEqual([]);
    expect(reader.wanted).toBe(frame.length - 4);
    const payload = Buffer.alloc(frame.length - 4);
    frame.copy(payload, 0, 4);
    const [out] = reader.push(payload);
    expect(out).toBe(payload);
    expect(reader.idle).toBe(true);
    // A pending prefix counts against the budget until its payload is complete, and dispose() gives it back.
    const budget = new ByteBudget(100);
    const r2 = new FrameReader(1000, budget);
    r2.push(Buffer.from([50, 0, 0, 0]));
    expect(budget.inUse).toBe(50);
    expect(r2.idle).toBe(false);
    r2.dispose();
    expect(budget.inUse).toBe(0);
  });
});
