/**
 * System tools some suites need (bubblewrap, valgrind, jq, git...). On a
 * machine without one, the tests that need it are skipped and the run ends
 * with ONE summary line naming each missing tool and its install command
 * (test/global-setup.ts prints it); with `CI` set a missing tool fails the
 * suite instead: CI installs every one of them (.ci/run).
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeEach } from 'vitest';
import { bwrapUsable } from '../../src/sandbox/bwrap.js';
import { installHint, MISSING_TOOLS_DIR_ENV, TOOLS, type Tool } from './tool-list.js';

export { installHint, TOOLS, type Tool };

type Probe = { ok: true } | { ok: false; reason: string };
const probes = new Map<Tool, Probe>();

function probeTool(tool: Tool): Probe {
  if (tool === 'bwrap') {
    // Installed is not enough: it must be able to build the sandbox here (user namespaces...).
    const u = bwrapUsable();
    return u.ok ? u : { ok: false, reason: u.reason };
  }
  const r = spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
  return r.status === 0 ? { ok: true } : { ok: false, reason: `${tool} not found in PATH` };
}

/**
 * Whether `tool` works here. Missing: recorded for the summary line, or,
 * with CI set, an error (the suite fails: CI must run every test).
 */
export function hasTool(tool: Tool): boolean {
  let p = probes.get(tool);
  if (p === undefined) {
    p = probeTool(tool);
    probes.set(tool, p);
    if (!p.ok) record(tool, p.reason);
  }
  if (p.ok) return true;
  if (process.env['CI']) throw new Error(`${tool} is required for these tests when CI is set: ${p.reason} (${installHint([tool])})`);
  return false;
}

function record(tool: Tool, reason: string): void {
  const dir = process.env[MISSING_TOOLS_DIR_ENV];
  if (dir) writeFileSync(path.join(dir, tool), reason);
  // Without the global setup (a file run on its own by another runner) say it here, once per tool.
  else process.stderr.write(`[tests] SKIPPING tests that need ${tool}: ${reason} (${installHint([tool])})\n`);
}

/**
 * Skip every test of the enclosing describe (or file) unless all `tools`
 * work here; with CI set, a missing one fails instead. Call it at the top of
 * the describe body (before any hook that needs the tool).
 */
export function requireTool(...tools: Tool[]): void {
  const missing = tools.filter((t) => !hasTool(t));
  if (missing.length > 0) beforeEach((ctx) => ctx.skip());
}

/** requireTool('bwrap') for the suites parameterized over --sandbox bwrap|none. */
export function requireSandbox(sandbox: string): void {
  if (sandbox === 'bwrap') requireTool('bwrap');
}

/** For one test: `it.skipIf(lacks('strace', 'gdb'))(...)`; with CI set, a missing tool fails instead. */
export function lacks(...tools: Tool[]): boolean {
  return tools.filter((t) => !hasTool(t)).length > 0;
}
