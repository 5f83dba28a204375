import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';
import { terminalInjectionFilter } from '../../src/sandbox/seccomp.js';
import { patchedBash, tempDir } from '../helpers/harness.js';
import { lacks, requireTool } from '../helpers/tools.js';

const cli = path.join(packageRoot, 'bin', 'codex-escalate.js');

function run(args: string[], cwd: string) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [cli, 'run', '--sandbox', 'bwrap', '--shell', patchedBash(), '--log-file', path.join(cwd, 'audit.jsonl'), ...args], { cwd, timeout: 30_000, env: { ...process.env, PATH: '/usr/bin:/bin' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('bubblewrap sandbox for Run, escalation outside it', () => {
  requireTool('bwrap');
  // Outside the working directory and outside /tmp (which is private in the sandbox).
  let outside: string;
  beforeAll(() => {
    outside = mkdtempSync('/var/tmp/cse-outside-');
  });
  afterAll(() => rmSync(outside, { recursive: true, force: true }));

  it('a Run\'d touch outside the workdir fails (read-only); the same command escalated by a rule succeeds', async () => {
    const work = tempDir();
    const target = path.join(outside, 'made-by-run');
    const ran = await run(['--', `touch ${target}; echo "status=$?"`], work);
    expect(ran.stdout).toBe('status=1\n');
    expect(ran.stderr).toMatch(/Read-only file system/);
    expect(existsSync(target)).toBe(false);

    const rules = path.join(work, 'allow-touch.rules');
    await import('node:fs').then((fs) => fs.writeFileSync(rules, 'prefix_rule(pattern = ["touch"], decision = "allow")\n'));
    const escalated = await run(['--rules', rules, '--', `touch ${target}; echo "status=$?"`], work);
    expect(escalated.stdout).toBe('status=0\n');
    expect(existsSync(target)).toBe(true);
  });

  it('the working directory is writable and /tmp is private', async () => {
    const work = tempDir();
    const hostOnly = `${tempDir()}-host-only`;
    writeFileSync(hostOnly, 'x');
    const inner = `/tmp/made-inside-${process.pid}`;
    const r = await run(['--', `touch ${work}/inside && echo ok; test -e ${hostOnly} && echo host-visible; touch ${inner} && echo tmp-writable`], work);
    expect(r.stdout).toBe('ok\ntmp-writable\n');
    expect(existsSync(path.join(work, 'inside'))).toBe(true);
    expect(existsSync(inner)).toBe(false);
  });

  describe('network', () => {
    let server: net.Server;
    let port = 0;
    beforeAll(async () => {
      server = net.createServer((s) => s.end('hello from the host\n'));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as net.AddressInfo).port;
    });
    afterAll(() => new Promise<void>((r) => server.close(() => r())));

    const connect = (p: number) => `python3 -c 'import socket; s=socket.create_connection(("127.0.0.1", ${p}), timeout=3); print(s.recv(100).decode().strip())'`;

    it('a Run\'d connection to a loopback server on the host fails; an escalated one succeeds', async () => {
      const work = tempDir();
      const ran = await run(['--', `${connect(port)}; echo "status=$?"`], work);
      expect(ran.stdout).toBe('status=1\n');
      expect(ran.stdout).not.toContain('hello from the host');
      // Prefixes match the resolved program: on Debian python3 is a link to python3.X.
      const python = path.basename(realpathSync('/usr/bin/python3'));
      const escalated = await run(['--escalate', python, '--', `${connect(port)}; echo "status=$?"`], work);
      expect(escalated.stdout).toBe('hello from the host\nstatus=0\n');
    });

    it('--network keeps the host network for Run', async () => {
      const r = await run(['--network', '--', connect(port)], tempDir());
      expect(r.stdout).toBe('hello from the host\n');
    });
  });

  it('a program that is a different file in the sandbox\'s view (private /tmp) is never escalated as the host\'s file', async () => {
    const work = tempDir();
    // The host has this script; the sandbox writes its own at the same path in its private /tmp.
    const hostDir = tempDir('cse-view-');
    const tool = path.join(hostDir, 'tool.sh');
    writeFileSync(tool, '#!/bin/sh\necho HOST\n', { mode: 0o755 });
    const rules = path.join(work, 'allow.rules');
    writeFileSync(rules, `prefix_rule(pattern = [${JSON.stringify(tool)}], decision = "allow")\n`);
    const r = await run(['--rules', rules, '--', `mkdir -p ${hostDir} && printf '#!/bin/sh\\necho SANDBOX\\n' > ${tool} && chmod +x ${tool} && ${tool}; echo "status=$?"`], work);
    expect(r.stdout).toBe('status=126\n');
    expect(r.stderr).toMatch(/not the same file in the requester's view/);
  });

  it('processes see their own pid namespace', async () => {
    const r = await run(['--', 'ps -e -o pid= | wc -l'], tempDir());
    expect(Number(r.stdout.trim())).toBeLessThan(10);
  });

  it('the audit log records each decision of the sandboxed shell', async () => {
    const work = tempDir();
    await run(['--', '/bin/echo hi'], work);
    const lines = readFileSync(path.join(work, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; program?: string });
    expect(lines.filter((l) => l.event === 'decision').map((l) => l.program)).toEqual(['/usr/bin/echo']);
  });
});

describe('seccomp filter against terminal injection', () => {
  it('is a well-formed classic BPF program ending in allow/deny returns', () => {
    const f = terminalInjectionFilter('x64')!;
    expect(f.length % 8).toBe(0);
    const last = f.length / 8 - 1;
    expect(f.readUInt16LE((last - 1) * 8)).toBe(0x06);
    expect(f.readUInt32LE((last - 1) * 8 + 4)).toBe(0x7fff0000);
    expect(f.readUInt32LE(last * 8 + 4)).toBe(0x00050001);
    expect(terminalInjectionFilter('mips')).toBeNull();
  });

  it.skipIf(lacks('bwrap'))('blocks TIOCSTI inside the sandbox (a real pty) while other ioctls work', async () => {
    const work = tempDir();
    const probe = path.join(packageRoot, 'test/fixtures/sandbox/tiocsti-probe.py');
    const r = await new Promise<{ stdout: string }>((resolve) => {
      execFile('python3', [probe, process.execPath, cli, patchedBash(), work], { timeout: 30_000, cwd: work }, (_e, stdout) => resolve({ stdout }));
    });
    expect(r.stdout).toMatch(/isatty=True/);
    expect(r.stdout).toMatch(/TIOCGWINSZ ok/);
    expect(r.stdout).toMatch(/TIOCSTI blocked: \[Errno 1\]/);
  });
});
