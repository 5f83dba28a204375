import { isUtf8 } from 'node:buffer';
import { LENGTH_PREFIX_SIZE, MAX_FRAME_BYTES } from './constants.js';
import type { ClientFrame, ServerFrame } from './messages.js';

/**
 * Stream framing: 4-byte little-endian length, then that many bytes of JSON.
 * Pure functions, no I/O, so the fuzz and unit tests can hammer them directly.
 */

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
}

/**
 * Encode one protocol message as a frame; typed, so an outgoing frame cannot
 * drift from its schema. JSON.stringify writes lone surrogates as \udcXX
 * escapes, which is how non-UTF-8 bytes travel (see wireStringToBytes).
 */
export function encodeFrame(message: ServerFrame | ClientFrame): Buffer {
  return encodeJsonFrame(message);
}

/** Any JSON value as a frame: for peers (and tests) that must send what no schema allows. */
export function encodeJsonFrame(message: unknown): Buffer {
  const json = JSON.stringify(message);
  const body = Buffer.from(json, 'utf8');
  if (body.length > MAX_FRAME_BYTES) throw new ProtocolError(`frame of ${body.length} bytes exceeds the ${MAX_FRAME_BYTES}-byte limit`);
  const frame = Buffer.allocUnsafe(LENGTH_PREFIX_SIZE + body.length);
  frame.writeUInt32LE(body.length, 0);
  body.copy(frame, LENGTH_PREFIX_SIZE);
  return frame;
}

/** A shared allowance of buffered bytes (e.g. per session), so many half-sent frames cannot add up to an out-of-memory. */
export class ByteBudget {
  private used = 0;
  constructor(readonly limit: number) {}
  get inUse(): number {
    return this.used;
  }
  reserve(n: number): boolean {
    if (this.used + n > this.limit) return false;
    this.used += n;
    return true;
  }
  release(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
}

/**
 * Incremental frame reader. Feed it whatever recv returned; it yields whole
 * payloads. The length is checked against the limit before anything is
 * allocated, so a hostile 4 GiB prefix costs nothing.
 */
export class FrameReader {
  /** The length prefix read so far, little-endian (a number, not a Buffer: one reader per connection, so per decision). */
  private header = 0;
  private headerFilled = 0;
  /** The length of a frame whose prefix is complete and whose payload buffer is not allocated yet; -1: none. */
  private pendingLength = -1;
  private payload: Buffer | null = null;
  private payloadFilled = 0;

  constructor(
    private readonly maxFrameBytes: number = MAX_FRAME_BYTES,
    private readonly budget?: ByteBudget,
  ) {}

  /** Give back the budget held by a partial frame (call when the connection goes away). */
  dispose(): void {
    if (this.payload) this.budget?.release(this.payload.length);
    else if (this.pendingLength >= 0) this.budget?.release(this.pendingLength);
    this.payload = null;
    this.pendingLength = -1;
    this.header = 0;
    this.headerFilled = 0;
  }

  /** True when no partial frame is buffered (a clean point to see EOF). */
  get idle(): boolean {
    return this.headerFilled === 0 && this.payload === null && this.pendingLength < 0;
  }

  /** Bytes still needed to complete the current frame (header first). */
  get wanted(): number {
    if (this.pendingLength >= 0) return this.pendingLength;
    if (this.payload === null) return LENGTH_PREFIX_SIZE - this.headerFilled;
    return this.payload.length - this.payloadFilled;
  }

  /** Append bytes; returns the payloads completed by them (usually 0 or 1). */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      if (this.payload === null && this.pendingLength < 0) {
        while (this.headerFilled < LENGTH_PREFIX_SIZE && offset < chunk.length) {
          // Little-endian; a multiplication, not <<, so the top byte cannot make it negative.
          this.header += chunk[offset++]! * 2 ** (8 * this.headerFilled++);
        }
        if (this.headerFilled < LENGTH_PREFIX_SIZE) break;
        const length = this.header;
        if (length > this.maxFrameBytes) {
          throw new ProtocolError(`frame length ${length} exceeds the ${this.maxFrameBytes}-byte limit`);
        }
        this.header = 0;
        this.headerFilled = 0;
        if (length === 0) {
          out.push(Buffer.alloc(0));
          continue;
        }
        if (this.budget && !this.budget.reserve(length)) {
          throw new ProtocolError(`frame of ${length} bytes refused: ${this.budget.inUse} bytes of half-received frames already buffered (limit ${this.budget.limit})`);
        }
        this.pendingLength = length;
      } else if (this.payload === null) {
        const length = this.pendingLength;
        this.pendingLength = -1;
        if (offset === 0 && chunk.length === length && chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength) {
          // This chunk is exactly the payload, in a buffer of its own (the server reads a payload with one recv of its
          // size): hand it out as it is instead of allocating and copying a second one.
          this.budget?.release(length);
          out.push(chunk);
          offset = chunk.length;
          continue;
        }
        this.payload = Buffer.allocUnsafe(length);
        this.payloadFilled = 0;
      } else {
        const n = Math.min(this.payload.length - this.payloadFilled, chunk.length - offset);
        chunk.copy(this.payload, this.payloadFilled, offset, offset + n);
        this.payloadFilled += n;
        offset += n;
        if (this.payloadFilled === this.payload.length) {
          this.budget?.release(this.payload.length);
          out.push(this.payload);
          this.payload = null;
        }
      }
    }
    return out;
  }
}

/** Parse a frame payload as JSON, with a protocol-level error on failure. */
export function parseJsonPayload(payload: Buffer): unknown {
  // Invalid UTF-8 would be silently replaced by U+FFFD: refuse it instead, since the wrapper escapes such bytes as \udcXX.
  // isUtf8 is strict (no overlongs, no encoded surrogates) and far cheaper than a decode/encode round trip.
  if (!isUtf8(payload)) throw new ProtocolError('frame is not valid UTF-8');
  const text = payload.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ProtocolError(`frame is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Wire strings carry bytes that are not valid UTF-8 as lone low surrogates
 * U+DC80..U+DCFF (one per byte, the "surrogateescape" convention). Valid
 * UTF-8 can never produce a lone surrogate, so the mapping is unambiguous.
 */
export function wireStringToBytes(s: string): Buffer {
  if (!hasEscapedBytes(s)) return Buffer.from(s, 'utf8');
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++; // a proper pair: ordinary UTF-8
        continue;
      }
      throw new ProtocolError('string contains a lone high surrogate');
    }
    if (c >= 0xdc00 && c <= 0xdfff) {
      if (c < 0xdc80 || c > 0xdcff) throw new ProtocolError('string contains a lone surrogate outside the escaped-byte range');
      parts.push(Buffer.from(s.slice(start, i), 'utf8'), Buffer.of(c - 0xdc00));
      start = i + 1;
    }
  }
  parts.push(Buffer.from(s.slice(start), 'utf8'));
  return Buffer.concat(parts);
}

/** How many bytes the wire string stands for (escaped bytes count one each), without building them in the usual case. */
export function wireByteLength(s: string): number {
  if (!hasEscapedBytes(s)) return Buffer.byteLength(s, 'utf8');
  try {
    return wireStringToBytes(s).length;
  } catch {
    return Buffer.byteLength(s, 'utf8'); // not producible at all: the schema and resolve refuse it later
  }
}

/** The inverse of wireStringToBytes: exact bytes to a wire string. */
export function bytesToWireString(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(bytes)) return text;
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const len = utf8SequenceLength(bytes, i);
    if (len > 0) {
      out += bytes.toString('utf8', i, i + len);
      i += len;
    } else {
      out += String.fromCharCode(0xdc00 + bytes[i]!);
      i += 1;
    }
  }
  return out;
}

/** True when the string carries escaped (non-UTF-8) bytes or any lone surrogate. */
export function hasEscapedBytes(s: string): boolean {
  return !s.isWellFormed();
}

/** Length of the valid UTF-8 sequence starting at i, or 0 if the byte there starts none (strict: no overlongs, no surrogates, <= U+10FFFF). */
function utf8SequenceLength(b: Buffer, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number) => i + k < b.length && (b[i + k]! & 0xc0) === 0x80;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    const c1 = b[i + 1]!;
    if (c === 0xe0 && c1 < 0xa0) return 0; // overlong
    if (c === 0xed && c1 >= 0xa0) return 0; // surrogate
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const c1 = b[i + 1]!;
    if (c === 0xf0 && c1 < 0x90) return 0; // overlong
    if (c === 0xf4 && c1 >= 0x90) return 0; // > U+10FFFF
    return 4;
  }
  return 0;
}
