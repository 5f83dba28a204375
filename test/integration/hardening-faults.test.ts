/**
 * Fault injection through real processes: the server SIGKILLed mid-session,
 * hooks and rules failing while the server keeps deciding, an audit log that
 * cannot be written.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadHooks } from '../../src/hooks/config.js';
import { HookEngine } from '../../src/hooks/engine.js';
import { createDecisionPipeline } from '../../src/policy/decision-pipeline.js';
import { EscalationServer } from '../../src/server/escalation-server.js';
import { tempDir } from '../helpers/harness.js';
import { RawClient } from '../helpers/raw-client.js';

const fixture = path.resolve(import.meta.dirname, '../fixtures/hardening/server-child.ts');
const logFixture = path.resolve(import.meta.dirname, '../fixtures/hardening/unwritable-log.ts');
const hooksFixtures = path.resolve(import.meta.dirname, '../fixtures/hooks');

/** Pids of processes whose argv is exactly `argv`. */
function pidsRunning(argv: string[]): number[] {
  const want = argv.join('\0') + '\0';
  const found: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8') === want) found.push(Number(p));
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

describe('server SIGKILLed mid-session', () => {
  it('wrappers waiting on a decision and on an escalated command exit 126 with a message within 1 s; no escalated process survives', async () => {
    const dir = tempDir('cse-kill-');
    const out = path.join(dir, 'shell.out');
    const tag = `31.${process.pid}`; // unique argv to find the escalated sleep
    const script = [
      `( /usr/bin/echo slow; echo "slow-status=$?" ) &`,
      `( /usr/bin/sleep ${tag}; echo "sleep-status=$?" ) &`,
      'wait',
    ].join('\n');
    const child = spawn(process.execPath, ['--import', 'tsx', fixture], { env: { ...process.env, SCRIPT: script, SHELL_OUT: out }, stdio: ['ignore', 'pipe', 'inherit'] });
    let seen = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        seen += d;
        if (seen.includes('asked slow') && seen.includes(`escalated /usr/bin/sleep ${tag}`)) resolve();
      });
      child.once('exit', () => reject(new Error(`server exited early: ${seen}`)));
    });
    // The escalated command really runs, as the server's child.
    const deadline0 = Date.now() + 2000;
    while (pidsRunning(['/usr/bin/sleep', tag]).length === 0 && Date.now() < deadline0) await sleep(10);
    expect(pidsRunning(['/usr/bin/sleep', tag])).toHaveLength(1);

    const killedAt = Date.now();
    child.kill('SIGKILL');
    const statuses = () => readFileSync(out, 'utf8');
    while (!(statuses().includes('slow-status=') && statuses().includes('sleep-status=')) && Date.now() - killedAt < 3000) await sleep(10);
    const elapsed = Date.now() - killedAt;
    const text = statuses();
    expect(text).toContain('slow-status=126');
    expect(text).toContain('sleep-status=126');
    expect(elapsed).toBeLessThan(1000);
    // Each wrapper said why.
    expect(text).toMatch(/codex-execve-wrapper: \/usr\/bin\/echo: .+/);
    expect(text).toMatch(/codex-execve-wrapper: \/usr\/bin\/sleep: .+/);
    // No orphan: the escalated command died with its server.
    while (pidsRunning(['/usr/bin/sleep', tag]).length > 0 && Date.now() - killedAt < 1000) await sleep(10);
    expect(pidsRunning(['/usr/bin/sleep', tag])).toEqual([]);
  });
});

/** One TOML exec.before hook, applied only to commands matching `when`. */
function gated(when: string, body: string): string {
  return `[[hooks.exec]]\nevent = "exec.before"\nrequired = true\n${body}\n[hooks.exec.conditions]\ncommand = "${when}"\n`;
}

describe('failing hooks, through the real server: fail closed, and the server keeps deciding', () => {
  let httpServer: Server;
  let url = '';
  const engines: HookEngine[] = [];
  const servers: EscalationServer[] = [];
  beforeAll(async () => {
    httpServer = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        if (body.includes('W500')) res.writeHead(500).end('boom');
        else if (body.includes('W404')) res.writeHead(404).end('nope');
        else if (body.includes('WHANG')) return; // never answers
        else res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}/hook`;
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await Promise.all(engines.map((e) => e.close()));
    httpServer.closeAllConnections();
    httpServer.close();
  });

  it('hang, crash, 10 MiB, invalid JSON, exit 2 without a reason, persistent death, webhook 500/404/silence, MCP crash: each denies; ordinary requests in between are still decided', async () => {
    const dir = tempDir('cse-hookfault-');
    const toml = [
      '[hooks]\ntimeout_seconds = 1\n',
      gated('HHANG', 'type = "command"\ncommand = "sleep 60"\ntimeout = 6'),
      gated('HCRASH', 'type = "command"\ncommand = "kill -SEGV $$"'),
      gated('HBIG', 'type = "command"\ncommand = "head -c 10485760 /dev/zero | tr \\"\\\\\\\\0\\" a"\ntimeout = 10'),
      gated('HJUNK', 'type = "command"\ncommand = "echo not json"'),
      gated('HEXIT2', 'type = "command"\ncommand = "exit 2"'),
      gated('HPDIE', `type = "command"\ncommand = ["node", "${path.join(hooksFixtures, 'persistent-hook.mjs')}"]\npersistent = true\ntimeout = 5\n[hooks.exec.environment]\nMODE = "die"`),
      gated('W500|W404|WHANG', `type = "webhook"\nurl = "${url}"\ntimeout = 1\nretry_count = 1`),
      gated('MCPDIE', 'type = "mcp_tool"\nserver = "test"\ntool = "die"\ntimeout = 5\n[hooks.exec.arguments]\nx = 1'),
      `[mcp_servers.test]\ncommand = "node"\nargs = ["${path.join(hooksFixtures, 'mcp-server.mjs')}"]\n`,
    ].join('\n');
    const file = path.join(dir, 'hooks.toml');
    writeFileSync(file, toml);
    const engine = new HookEngine(await loadHooks({ files: [file], env: process.env }), { env: process.env });
    engines.push(engine);
    const server = new EscalationServer({ policy: createDecisionPipeline({ hooks: engine }) });
    servers.push(server);
    const session = await server.startSession();

    const ask = async (word: string) => {
      const c = RawClient.connect(session.clientFd);
      const t0 = Date.now();
      try {
        c.send({ file: '/usr/bin/echo', argv: ['echo', word], workdir: process.cwd(), env: {} });
        return { reply: (await c.receive(30_000)) as { action: unknown }, ms: Date.now() - t0 };
      } finally {
        c.close();
      }
    };
    const failing = ['HHANG', 'HCRASH', 'HBIG', 'HJUNK', 'HEXIT2', 'HPDIE', 'W500', 'W404', 'WHANG', 'MCPDIE'];
    let hangAnswered = false;
    const pending = failing.map((w) =>
      ask(w).then((r) => {
        if (w === 'HHANG') hangAnswered = true;
        return [w, r] as const;
      }),
    );
    // While those fail, ordinary requests are decided without waiting for them: every one is answered while
    // the hanging hook (killed only at its 6 s timeout) is still pending. An ordering, not a stopwatch.
    for (let i = 0; i < 10; i++) {
      const r = await ask(`ordinary-${i}`);
      expect(r.reply).toEqual({ action: 'Run' });
      expect(hangAnswered, `ordinary-${i} waited for the hanging hook`).toBe(false);
    }
    for (const [word, r] of await Promise.all(pending)) {
      // Oversized output is a block by rule (the output is untrustworthy); exit 2 is a block even without a reason
      // (as Claude Code treats it); the rest are failures of a required hook.
      const why = word === 'HBIG' ? 'exceeded the 1 MiB cap' : word === 'HEXIT2' ? 'hook exited 2 (no reason on stderr)' : 'required hook';
      expect(r.reply, word).toMatchObject({ action: { Deny: { reason: expect.stringContaining(why) } } });
      // Bounded by each hook's own timeout (HHANG: 6 s), never by the 60 s the hook would take.
      expect(r.ms, word).toBeLessThan(20_000);
    }
    // And after all of them, still deciding.
    expect((await ask('after')).reply).toEqual({ action: 'Run' });
  });
});

describe('an audit log that cannot be written', () => {
  it.each([
    ['/dev/full (disk full)', () => '/dev/full'],
    ['a file whose directory was removed', () => {
      const d = tempDir('cse-gone-');
      return { dir: d, file: path.join(d, 'audit.jsonl') };
    }],
    ['a path in a directory that does not exist', () => '/nonexistent/dir/audit.jsonl'],
  ])('%s: decisions continue, the error is reported once', async (_name, make) => {
    const target = make();
    const file = typeof target === 'string' ? target : target.file;
    const child = spawn(process.execPath, ['--import', 'tsx', logFixture, file, typeof target === 'string' ? '' : target.dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as { decided: number; wanted: number; stderr: string };
    expect(result.decided).toBe(result.wanted);
    expect(result.stderr.match(/audit log .* is not writable/g)).toHaveLength(1);
  });
});
