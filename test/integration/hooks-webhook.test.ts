import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { HookEngine } from '../../src/hooks/engine.js';
import { engineFrom, execInfo } from '../fixtures/hooks/helpers.js';

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: unknown;
  at: number;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

/** A real HTTP server on loopback; `reply` decides each answer (by attempt number). */
async function server(reply: (n: number, res: ServerResponse) => void): Promise<{ url: string; got: Received[] }> {
  const got: Received[] = [];
  const srv: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')), at: Date.now() });
      reply(got.length, res);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  );
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/hook`, got };
}

async function webhookEngine(url: string, extra: Record<string, string | number | boolean> = {}, env: NodeJS.ProcessEnv = process.env): Promise<HookEngine> {
  const lines = Object.entries(extra).map(([k, v]) => `${k} = ${typeof v === 'number' ? v : JSON.stringify(v)}`);
  const toml = `[[hooks.exec]]\nevent = "exec.before"\ntype = "webhook"\nurl = "${url}"\n${lines.join('\n')}\n[hooks.exec.headers]\nAuthorization = "Bearer \${HOOK_TOKEN}"\n`;
  const { engine } = await engineFrom(toml, { ...env, HOOK_TOKEN: 'tok-123' });
  cleanups.push(() => engine.close());
  return engine;
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

describe('webhook hooks (real HTTP on loopback)', () => {
  it('POSTs the seed payload with configured headers; a JSON answer decides', async () => {
    const s = await server((_n, res) => json(res, 200, { hookSpecificOutput: { permissionDecision: 'deny', permissionDecisionReason: 'webhook says no' } }));
    const engine = await webhookEngine(s.url);
    const v = await engine.preToolUse(execInfo(['rm', '-rf', '/'], { requestId: 'r-7' }));
    expect(v).toMatchObject({ decision: 'deny', reason: expect.stringContaining('webhook says no') });
    expect(s.got).toHaveLength(1);
    expect(s.got[0]).toMatchObject({ method: 'POST', headers: { authorization: 'Bearer tok-123', 'content-type': 'application/json' } });
    expect(s.got[0]!.body).toMatchObject({
      event: { type: 'exec.before', sessionId: 'sess-1', requestId: 'r-7', command: ['rm', '-rf', '/'], workdir: '/tmp' },
      context: { hook_event_name: 'PreToolUse', tool_name: 'Bash' },
    });
  });

  it('an empty or non-JSON 2xx body is no opinion', async () => {
    const s = await server((n, res) => (n === 1 ? res.writeHead(204).end() : res.writeHead(200, { 'content-type': 'text/plain' }).end('ok')));
    const engine = await webhookEngine(s.url);
    expect((await engine.preToolUse(execInfo(['ls']))).decision).toBe('none');
    const v = await engine.preToolUse(execInfo(['ls']));
    expect(v.decision).toBe('none');
    expect(v.runs[0]?.status).toBe('completed');
  });

  it('retries 5xx with backoff, then succeeds', async () => {
    const s = await server((n, res) => (n < 3 ? json(res, 503, { error: 'busy' }) : json(res, 200, { decision: 'approve' })));
    const engine = await webhookEngine(s.url, { retry_count: 3 });
    const v = await engine.preToolUse(execInfo(['ls']));
    expect(v.decision).toBe('allow');
    expect(s.got).toHaveLength(3);
    // Backoff: 100 ms then 200 ms between attempts.
    expect(s.got[1]!.at - s.got[0]!.at).toBeGreaterThanOrEqual(90);
    expect(s.got[2]!.at - s.got[1]!.at).toBeGreaterThanOrEqual(190);
  });

  it('never retries a 4xx; a required hook then denies', async () => {
    const s = await server((_n, res) => json(res, 403, { error: 'forbidden' }));
    // `required` must be a boolean: a number is a config error, not a silent truthy value.
    await expect(webhookEngine(s.url, { retry_count: 3, required: 1 })).rejects.toThrow(/field "required"/);
    const e2 = await engineFrom(
      `[[hooks.exec]]\nevent = "exec.before"\ntype = "webhook"\nurl = "${s.url}"\nretry_count = 3\nrequired = true\n`,
    );
    cleanups.push(() => e2.engine.close());
    const v = await e2.engine.preToolUse(execInfo(['ls']));
    expect(s.got).toHaveLength(1);
    expect(v.runs[0]).toMatchObject({ status: 'failed', error: expect.stringContaining('HTTP 403') });
    expect(v.decision).toBe('deny');
  });

  it('gives up after retry_count on persistent 5xx', async () => {
    const s = await server((_n, res) => json(res, 500, {}));
    const engine = await webhookEngine(s.url, { retry_count: 2, required: false });
    const v = await engine.preToolUse(execInfo(['ls']));
    expect(s.got).toHaveLength(3);
    expect(v.runs[0]).toMatchObject({ status: 'failed', error: expect.stringContaining('3 attempt') });
    expect(v.decision).toBe('none');
  });

  it('retries network errors (connection refused)', async () => {
    const s = await server((_n, res) => json(res, 200, {}));
    const port = Number(new URL(s.url).port);
    await Promise.all(cleanups.splice(0).map((c) => c())); // server gone: the port now refuses
    const engine = await webhookEngine(`http://127.0.0.1:${port}/hook`, { retry_count: 2 });
    const v = await engine.preToolUse(execInfo(['ls']));
    expect(v.runs[0]).toMatchObject({ status: 'failed', error: expect.stringMatching(/3 attempt.*ECONNREFUSED/) });
  });

  it('times out a server that never answers', async () => {
    const s = await server(() => {
      /* never answer */
    });
    const engine = await webhookEngine(s.url, { timeout: 0.4, retry_count: 3 });
    const t0 = Date.now();
    const v = await engine.preToolUse(execInfo(['ls']));
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(v.runs[0]?.status).toBe('timed_out');
  });

  it('sends PostToolUse outcomes', async () => {
    const s = await server((_n, res) => res.writeHead(204).end());
    const { engine } = await engineFrom({ hooks: { PostToolUse: [{ matcher: '*', hooks: [{ type: 'http', url: s.url }] }] } });
    cleanups.push(() => engine.close());
    const runs = await engine.postToolUse({ ...execInfo(['make']), outcome: 'exited', exitCode: 2, durationMs: 850 });
    expect(runs[0]?.status).toBe('completed');
    expect(s.got[0]!.body).toMatchObject({ event: { type: 'exec.after', outcome: 'exited', exitCode: 2, duration: 850 } });
  });
});
