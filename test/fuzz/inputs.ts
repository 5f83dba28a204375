/**
 * Hostile inputs for both channels: a hand-written corpus of nasty cases and
 * fast-check generators. Each input is one datagram, or one private stream
 * connection (chunks written in order, then EOF).
 */
import fc from 'fast-check';
import { MAX_FRAME_BYTES } from '../../src/protocol/constants.js';
import { encodeFrame, FD_KINDS, probeRequest, rawFrame, TRUE_PROGRAM, ECHO_PROGRAM, type FdKind, type StreamChunk } from './harness.js';

export type FuzzInput =
  | { readonly channel: 'datagram'; readonly name: string; readonly bytes: Buffer; readonly fds: readonly FdKind[] }
  | { readonly channel: 'stream'; readonly name: string; readonly chunks: readonly StreamChunk[] };

const dgram = (name: string, bytes: Buffer, fds: readonly FdKind[]): FuzzInput => ({ channel: 'datagram', name, bytes, fds });
const stream = (name: string, ...chunks: StreamChunk[]): FuzzInput => ({ channel: 'stream', name, chunks });
const b = (s: string) => Buffer.from(s);

const requestFrame = encodeFrame(probeRequest(ECHO_PROGRAM));
const escalateFrame = encodeFrame(probeRequest(TRUE_PROGRAM));

function lengthOnly(n: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32LE(n >>> 0, 0);
  return h;
}

/** Hand-written nasty cases. Every one must be rejected or decided, never crash or leak. */
export function corpus(): FuzzInput[] {
  const out: FuzzInput[] = [
    // --- datagram channel
    dgram('empty datagram', Buffer.alloc(0), []),
    dgram('handshake byte without an fd', Buffer.of(0), []),
    dgram('wrong handshake byte', Buffer.of(1), ['stream']),
    dgram('two bytes', Buffer.of(0, 0), ['stream']),
    dgram('long datagram', Buffer.alloc(4096), ['stream']),
    dgram('two stream fds', Buffer.of(0), ['stream', 'stream']),
    dgram('16 fds', Buffer.of(0), Array<FdKind>(16).fill('stream')),
    dgram('17 fds (control truncated)', Buffer.of(0), Array<FdKind>(17).fill('devnull')),
    dgram('250 fds', Buffer.of(0), Array<FdKind>(250).fill('devnull')),
    dgram('a pipe as the connection', Buffer.of(0), ['pipe']),
    dgram('a regular file as the connection', Buffer.of(0), ['file']),
    dgram('/dev/null as the connection', Buffer.of(0), ['devnull']),
    dgram('a listening socket as the connection', Buffer.of(0), ['listen']),
    dgram('a datagram socket as the connection', Buffer.of(0), ['dgram']),
    // --- stream channel
    stream('connect and close at once'),
    stream('random bytes', { bytes: Buffer.from([0x13, 0x37, 0xde, 0xad, 0xbe, 0xef, 0, 1, 2]) }),
    stream('4 GiB length prefix', { bytes: lengthOnly(0xffffffff) }),
    stream('length just over the limit', { bytes: lengthOnly(MAX_FRAME_BYTES + 1) }),
    stream('length at the limit, nothing follows', { bytes: lengthOnly(MAX_FRAME_BYTES) }),
    stream('empty frame', { bytes: rawFrame('') }),
    stream('valid length, invalid JSON', { bytes: rawFrame('{"file": ') }),
    stream('invalid UTF-8', { bytes: rawFrame(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])) }),
    stream('JSON null', { bytes: rawFrame('null') }),
    stream('JSON array', { bytes: rawFrame('[1,2,3]') }),
    stream('deeply nested JSON', { bytes: rawFrame('['.repeat(100_000) + ']'.repeat(100_000)) }),
    stream('deep nesting inside a field', { bytes: rawFrame(`{"file":"/bin/true","argv":${'['.repeat(50_000)}${']'.repeat(50_000)},"workdir":"/","env":{}}`) }),
    stream('argv of numbers', { bytes: encodeFrame({ file: '/bin/true', argv: [1, 2], workdir: '/', env: {} }) }),
    stream('env of arrays', { bytes: encodeFrame({ file: '/bin/true', argv: ['true'], workdir: '/', env: { A: ['x'] } }) }),
    stream('env name with =', { bytes: encodeFrame({ file: '/bin/true', argv: ['true'], workdir: '/', env: { 'A=B': 'x' } }) }),
    stream('NUL in argv', { bytes: encodeFrame({ file: '/bin/true', argv: ['true', 'a\0b'], workdir: '/', env: {} }) }),
    stream('NUL in file', { bytes: encodeFrame({ file: '/bin/true\0/x', argv: ['true'], workdir: '/', env: {} }) }),
    stream('relative workdir', { bytes: encodeFrame({ file: 'true', argv: ['true'], workdir: 'bin', env: {} }) }),
    stream('lone high surrogate', { bytes: rawFrame('{"file":"/bin/\\ud800","argv":["x"],"workdir":"/","env":{}}') }),
    stream('__proto__ env key', { bytes: rawFrame('{"file":"/usr/bin/echo","argv":["echo"],"workdir":"/","env":{"__proto__":{"polluted":"1"}}}') }),
    stream('truncated request frame', { bytes: requestFrame.subarray(0, requestFrame.length - 3) }),
    stream('request, then extra frames', { bytes: Buffer.concat([requestFrame, requestFrame, rawFrame('garbage')]) }),
    stream('request with fds attached', { bytes: requestFrame, fds: ['stream', 'pipe', 'file'] }),
    stream('request with 16 fds attached', { bytes: requestFrame, fds: Array<FdKind>(16).fill('devnull') }),
    stream('request with 40 fds attached', { bytes: requestFrame, fds: Array<FdKind>(40).fill('devnull') }),
    stream('fds on a later byte of the frame', { bytes: requestFrame.subarray(0, 10) }, { bytes: requestFrame.subarray(10), fds: ['pipe', 'devnull'] }),
    stream('SuperExecMessage without an Escalate', { bytes: encodeFrame({ fds: [0] }), fds: ['devnull'] }),
    stream('signal frame before the decision', { bytes: Buffer.concat([escalateFrame, encodeFrame({ signal: 9 })]) }),
    // --- the escalation phase (after the server said Escalate)
    stream('escalate: fds listed but none attached', { bytes: escalateFrame }, { bytes: encodeFrame({ fds: [0, 1, 2] }), afterReply: true }),
    stream('escalate: more fds attached than listed', { bytes: escalateFrame }, { bytes: encodeFrame({ fds: [0] }), fds: ['devnull', 'devnull'], afterReply: true }),
    stream('escalate: a target listed twice', { bytes: escalateFrame }, { bytes: encodeFrame({ fds: [1, 1] }), fds: ['devnull', 'devnull'], afterReply: true }),
    stream('escalate: negative target', { bytes: escalateFrame }, { bytes: encodeFrame({ fds: [-1] }), fds: ['devnull'], afterReply: true }),
    stream('escalate: target beyond the fd limit', { bytes: escalateFrame }, { bytes: encodeFrame({ fds: [1 << 20] }), fds: ['devnull'], afterReply: true }),
    stream('escalate: a listening socket as stdin', { bytes: escalateFrame }, { bytes: encodeFrame({ fds: [0] }), fds: ['listen'], afterReply: true }),
    stream('escalate: invalid JSON', { bytes: escalateFrame }, { bytes: rawFrame('{"fds": [0'), fds: ['devnull'], afterReply: true }),
    stream('escalate: more=true then EOF', { bytes: escalateFrame }, { bytes: encodeFrame({ fds: [0], more: true }), fds: ['devnull'], afterReply: true }),
    stream(
      'escalate: signal frames and garbage while running',
      { bytes: escalateFrame },
      { bytes: Buffer.concat([encodeFrame({ fds: [0, 1, 2] }), encodeFrame({ signal: 15 }), encodeFrame({ signal: 99 }), rawFrame('junk')]), fds: ['devnull', 'devnull', 'devnull'], afterReply: true },
    ),
  ];
  // EOF at every byte offset of a valid request.
  for (let i = 0; i < requestFrame.length; i++) out.push(stream(`EOF after ${i} bytes`, { bytes: requestFrame.subarray(0, i) }));
  return out;
}

// ---------------------------------------------------------------------------
// Generators

const fdKind = fc.constantFrom(...FD_KINDS);
const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((u) => Buffer.from(u));

const datagramArb: fc.Arbitrary<FuzzInput> = fc
  .record({
    bytes: fc.oneof(fc.constant(Buffer.of(0)), bytes(4)),
    fds: fc.oneof({ weight: 4, arbitrary: fc.array(fdKind, { maxLength: 3 }) }, { weight: 1, arbitrary: fc.array(fdKind, { minLength: 2, maxLength: 250 }) }),
  })
  // The one valid shape (one stream fd with 0x00) is a real connection: exercised by the stream inputs.
  .filter((d) => !(d.bytes.length === 1 && d.bytes[0] === 0 && d.fds.length === 1 && d.fds[0] === 'stream'))
  // SCM_RIGHTS needs at least one byte to ride on.
  .map((d) => dgram('generated datagram', d.fds.length > 0 && d.bytes.length === 0 ? Buffer.of(7) : d.bytes, d.fds));

/** Any JSON-ish value, including the wrong types in the right places. */
const jsonish = fc.oneof(fc.string(), fc.integer(), fc.double({ noNaN: true }), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 4 }), fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 }));

const requestLike = fc.record(
  {
    file: fc.oneof(fc.constantFrom(ECHO_PROGRAM, TRUE_PROGRAM, 'echo', './x', '', '/nonexistent'), jsonish),
    argv: fc.oneof(fc.array(fc.string({ unit: 'binary' }), { maxLength: 5 }), jsonish),
    workdir: fc.oneof(fc.constantFrom('/', '/tmp', process.cwd(), '', 'relative', '/nonexistent'), jsonish),
    env: fc.oneof(fc.dictionary(fc.string({ unit: 'binary', maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 8 }), { maxKeys: 4 }), jsonish),
    ext: fc.oneof(fc.nat(), jsonish),
    extra: jsonish,
  },
  { requiredKeys: [] },
);

const frameOf = (v: unknown): Buffer => {
  try {
    return encodeFrame(v);
  } catch {
    return rawFrame('{}');
  }
};

const streamArb: fc.Arbitrary<FuzzInput> = fc.oneof(
  bytes(300).map((x) => stream('random bytes', { bytes: x })),
  fc.string({ unit: 'binary', maxLength: 200 }).map((s) => stream('valid length, arbitrary payload', { bytes: rawFrame(s) })),
  fc.jsonValue({ maxDepth: 4 }).map((v) => stream('arbitrary JSON', { bytes: frameOf(v) })),
  requestLike.map((v) => stream('request-shaped JSON', { bytes: frameOf(v) })),
  fc.integer({ min: MAX_FRAME_BYTES + 1, max: 0xffffffff }).chain((n) => bytes(64).map((tail) => stream('huge length prefix', { bytes: Buffer.concat([lengthOnly(n), tail]) }))),
  fc.nat({ max: requestFrame.length - 1 }).map((i) => stream('truncated request', { bytes: requestFrame.subarray(0, i) })),
  fc.array(bytes(40), { minLength: 1, maxLength: 3 }).map((extra) => stream('request then extra frames', { bytes: Buffer.concat([requestFrame, ...extra.map((e) => rawFrame(e))]) })),
  fc.array(fdKind, { minLength: 1, maxLength: 40 }).map((fds) => stream('request with fds attached', { bytes: requestFrame, fds })),
  fc
    .record({ listed: fc.array(fc.integer({ min: -2, max: 40 }), { maxLength: 18 }), fds: fc.array(fdKind, { maxLength: 16 }), more: fc.boolean() })
    .map((s) => stream('escalation-phase message', { bytes: escalateFrame }, { bytes: frameOf({ fds: s.listed, more: s.more }), fds: s.fds, afterReply: true })),
);

/** Weighted mix of both channels. */
export const fuzzInputArb: fc.Arbitrary<FuzzInput> = fc.oneof({ weight: 1, arbitrary: datagramArb }, { weight: 3, arbitrary: streamArb });

/** Deterministic batch of generated inputs. */
export function generate(count: number, seed: number): FuzzInput[] {
  return fc.sample(fuzzInputArb, { numRuns: count, seed });
}
