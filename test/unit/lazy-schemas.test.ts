/**
 * The wire schemas are loaded on first need (src/protocol/lazy-schemas.ts):
 * the zod-free checks must decide exactly where they claim to, and hand
 * everything else to the one schema module.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';
import { loadSchemas, schemasIfLoaded } from '../../src/protocol/lazy-schemas.js';
import { EscalateRequestSchema, ListenerFrameSchema } from '../../src/protocol/messages.js';
import { LISTENER_FRAME_PAYLOAD } from '../../src/protocol/wire.js';
import { decodeRequest } from '../../src/server/parse-request.js';

const frame = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('decoding a request before and after the schemas are loaded', () => {
  // First in the file: nothing has loaded the schemas yet in this process.
  it('a well-formed request is decoded synchronously without them; a malformed one waits for them and is refused with their message', async () => {
    expect(schemasIfLoaded()).toBeUndefined();
    const ok = decodeRequest(frame({ file: '/bin/true', argv: ['true'], workdir: '/', env: { A: 'b' } }));
    expect(ok).toEqual({ file: '/bin/true', argv: ['true'], workdir: '/', env: { A: 'b' } });
    expect(schemasIfLoaded()).toBeUndefined();
    const bad = decodeRequest(frame({ file: '', argv: [], workdir: '/', env: {} }));
    expect(bad).toBeInstanceOf(Promise);
    await expect(bad).rejects.toThrow('invalid request: file: file is empty');
    expect(schemasIfLoaded()).toBeDefined();
    // Loaded now: the same refusal, synchronously.
    expect(() => decodeRequest(frame({ file: '/bin/true', argv: [], workdir: '', env: {} }))).toThrow('invalid request: workdir: workdir is empty');
  });

  it('loads the one schema module the rest of the code imports (one zod, one set of schemas)', async () => {
    const schemas = await loadSchemas();
    expect(schemas.EscalateRequestSchema).toBe(EscalateRequestSchema);
    expect(schemas.ListenerFrameSchema).toBe(ListenerFrameSchema);
  });
});

describe('the listener frame accepted without zod', () => {
  it('is exactly the bytes our wrapper writes, with their length prefix', () => {
    const src = readFileSync(path.join(packageRoot, 'wrapper', 'codex-execve-wrapper.c'), 'utf8');
    const m = /static const char frame\[\] = "((?:\\x[0-9a-f]{2}){4})(.*)";/.exec(src);
    expect(m).not.toBeNull();
    const prefix = Buffer.from(m![1]!.split('\\x').filter(Boolean).map((h) => parseInt(h, 16)));
    const body = m![2]!.replace(/\\"/g, '"');
    expect(body).toBe(LISTENER_FRAME_PAYLOAD);
    expect(prefix.readUInt32LE(0)).toBe(Buffer.byteLength(LISTENER_FRAME_PAYLOAD));
  });

  it('is a frame the schema accepts, so the shortcut accepts nothing the schema would refuse', () => {
    expect(ListenerFrameSchema.safeParse(JSON.parse(LISTENER_FRAME_PAYLOAD)).success).toBe(true);
    // And what differs by a byte goes to the schema, which judges it on its own (these it refuses).
    for (const other of ['{"listener":false}', '{"listener":true,"x":1}', '{"listener":"true"}']) {
      expect(ListenerFrameSchema.safeParse(JSON.parse(other)).success).toBe(false);
    }
  });
});
