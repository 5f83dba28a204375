import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadHooks } from '../../src/hooks/config.js';
import { fingerprint, TrustStore } from '../../src/hooks/trust.js';
import { HooksConfigError } from '../../src/hooks/types.js';

function tmp(): string {
  return mkdtempSync(path.join(tmpdir(), 'hooks-config-'));
}
function write(dir: string, name: string, text: string): string {
  const p = path.join(dir, name);
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, text);
  return p;
}
async function loadError(files: string[], env: NodeJS.ProcessEnv = {}): Promise<HooksConfigError> {
  try {
    await loadHooks({ files, env });
  } catch (e) {
    expect(e).toBeInstanceOf(HooksConfigError);
    return e as HooksConfigError;
  }
  throw new Error('expected a load error');
}

const examples = path.resolve(import.meta.dirname, '../../examples');

describe('hooks.toml (seed 001)', () => {
  it('loads every field into the model', async () => {
    const d = tmp();
    const f = write(
      d,
      'hooks.toml',
      `
[hooks]
timeout_seconds = 7
parallel_execution = false
debug = true

[[hooks.exec]]
event = "exec.before"
type = "script"
command = ["./scan.sh", "--x"]
description = "scan"
required = true
timeout = 3
priority = "high"
cwd = "sub"
persistent = true
[hooks.exec.environment]
TOKEN = "\${MY_TOKEN}"
LIT = "$\${NOT_A_VAR}"
[hooks.exec.conditions]
program = "rm|dd"

[[hooks.exec]]
event = "exec.after"
type = "webhook"
url = "http://127.0.0.1:9/x"
retry_count = 2
mode = "async"
[hooks.exec.headers]
Authorization = "Bearer \${MY_TOKEN}"

[[hooks.exec]]
event = "PreToolUse"
type = "mcp_tool"
server = "scanner"
tool = "scan"
[hooks.exec.arguments]
command = "\${command}"
home = "\${MY_TOKEN}"

[mcp_servers.scanner]
command = "node"
args = ["server.mjs"]
`,
    );
    const c = await loadHooks({ files: [f], env: { MY_TOKEN: 'sekrit' } });
    expect(c.parallel).toBe(false);
    expect(c.debug).toBe(true);
    expect(c.hooks).toHaveLength(3);
    const [a, b, m] = c.hooks;
    expect(a).toMatchObject({
      type: 'command',
      event: 'exec.before',
      command: ['./scan.sh', '--x'],
      required: true,
      timeoutMs: 3000,
      priority: 'high',
      cwd: path.join(d, 'sub'),
      persistent: true,
      env: { TOKEN: 'sekrit', LIT: '${NOT_A_VAR}' },
      conditions: { program: 'rm|dd' },
      id: 'hooks.toml#hooks.exec[0]',
    });
    expect(b).toMatchObject({ type: 'webhook', event: 'exec.after', retryCount: 2, mode: 'async', timeoutMs: 7000, headers: { Authorization: 'Bearer sekrit' } });
    // Event placeholders survive for the engine; env references are substituted.
    expect(m).toMatchObject({ type: 'mcp_tool', event: 'exec.before', arguments: { command: '${command}', home: 'sekrit' } });
    expect(c.mcpServers.scanner).toMatchObject({ command: 'node', args: ['server.mjs'], cwd: d });
  });

  it('an unset variable is a load error naming file, entry and field', async () => {
    const f = write(tmp(), 'hooks.toml', `[[hooks.exec]]\nevent = "exec.before"\ncommand = ["x"]\n[hooks.exec.environment]\nK = "\${UNSET_VAR_X}"\n`);
    const e = await loadError([f]);
    expect(e.message).toContain(f);
    expect(e.message).toContain('hooks.exec[0]');
    expect(e.message).toContain('environment.K');
    expect(e.message).toContain('UNSET_VAR_X is not set');
  });

  it('type errors and unknown fields name the entry and field', async () => {
    const d = tmp();
    let e = await loadError([write(d, 'a.toml', `[[hooks.exec]]\nevent = "exec.before"\ncommand = ["x"]\ntimeout = "soon"\n`)]);
    expect(e.message).toMatch(/a\.toml: hooks\.exec\[0\]: field "timeout"/);
    expect(e.field).toBe('timeout');
    e = await loadError([write(d, 'b.toml', `[[hooks.session]]\nevent = "session_start"\ncommand = ["x"]\nrequried = true\n`)]);
    expect(e.message).toContain('hooks.session[0]');
    expect(e.message).toContain('"requried"');
    e = await loadError([write(d, 'c.toml', `[[hooks.exec]]\nevent = "exec.before"\ntype = "script"\n`)]);
    expect(e.message).toContain('field "command"');
    e = await loadError([write(d, 'd.toml', `[[hooks.exec]]\nevent = "exec.befor"\ncommand = ["x"]\n`)]);
    expect(e.message).toContain('unknown event "exec.befor"');
    e = await loadError([write(d, 'e.toml', `[[hooks.exec]]\nevent = "exec.before"\ntype = "mcp_tool"\nserver = "nope"\ntool = "t"\n`)]);
    expect(e.message).toContain('no MCP server named "nope"');
    e = await loadError([write(d, 'f.toml', `[hooks\n`)]);
    expect(e.message).toContain('invalid TOML');
    e = await loadError([write(d, 'g.toml', `[[hooks.exec]]\nevent = "exec.before"\ntype = "webhook"\nurl = "ftp://x"\n`)]);
    expect(e.message).toContain('field "url"');
  });

  it('seed events this system never produces are warnings, not errors', async () => {
    const f = write(tmp(), 'hooks.toml', `[[hooks.task]]\nevent = "task_complete"\ncommand = ["x"]\n`);
    const c = await loadHooks({ files: [f], env: {} });
    expect(c.hooks).toHaveLength(0);
    expect(c.warnings[0]).toContain('task_complete');
  });

  it('enabled = false disables every hook of the file', async () => {
    const f = write(tmp(), 'hooks.toml', `[hooks]\nenabled = false\n[[hooks.exec]]\nevent = "exec.before"\ncommand = ["x"]\n`);
    const c = await loadHooks({ files: [f], env: {} });
    expect(c.hooks[0]?.enabled).toBe(false);
    expect(c.files[0]?.enabled).toBe(false);
  });
});

describe('hooks.json (Codex / Claude Code)', () => {
  it('loads matcher groups, types and event names', async () => {
    const d = tmp();
    const f = write(
      d,
      'hooks.json',
      JSON.stringify({
        hooks: {
          PreToolUse: [{ matcher: 'Bash', hooks: [{ type: 'command', command: 'echo hi', timeout: 5 }] }],
          PostToolUse: [{ matcher: '*', hooks: [{ type: 'http', url: 'http://127.0.0.1:1/x', async: true }] }],
          SessionStart: [{ hooks: [{ type: 'command', command: ['a', 'b'], required: true }] }],
          Stop: [{ hooks: [{ type: 'mcp_tool', server: 's', tool: 't', arguments: { c: '${command}' } }] }],
          UserPromptSubmit: [{ hooks: [{ type: 'command', command: 'x' }] }],
        },
        mcpServers: { s: { command: 'node', args: ['s.mjs'] } },
      }),
    );
    const c = await loadHooks({ files: [f], env: {} });
    expect(c.hooks.map((h) => [h.event, h.type, h.matcher])).toEqual([
      ['exec.before', 'command', 'Bash'],
      ['exec.after', 'webhook', '*'],
      ['session_start', 'command', undefined],
      ['session_end', 'mcp_tool', undefined],
    ]);
    expect(c.hooks[0]).toMatchObject({ command: 'echo hi', timeoutMs: 5000, mode: 'sync' });
    expect(c.hooks[1]).toMatchObject({ mode: 'async' });
    expect(c.warnings.join('\n')).toContain('UserPromptSubmit');
  });

  it('syntax errors say file:line:col (JSON from the offset JSON.parse gives, TOML from smol-toml)', async () => {
    const d = tmp();
    const json = write(d, 'k.json', '{\n  "hooks": {\n    "PreToolUse": [,]\n  }\n}\n');
    const e = await loadError([json]);
    expect(e.message).toMatch(new RegExp(`^${json.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:20: invalid JSON: Unexpected token`));
    const truncated = write(d, 'l.json', '{\n  "hooks": {\n');
    expect((await loadError([truncated])).message).toMatch(/:3:1: invalid JSON: \S/);
    expect((await loadError([truncated])).message.startsWith(`${truncated}:3:1: invalid JSON: `)).toBe(true);
    const toml = write(d, 'm.toml', '[[hooks.exec]]\nevent = "exec.before"\ncommand = = ["x"]\n');
    expect((await loadError([toml])).message).toBe(`${toml}:3:11: invalid TOML: invalid value`);
  });

  it('a wrapped error keeps its cause (the parser\'s or the filesystem\'s)', async () => {
    const d = tmp();
    expect((await loadError([write(d, 'n.json', '{ not json')])).cause).toBeInstanceOf(SyntaxError);
    expect((await loadError([write(d, 'o.toml', '[hooks\n')])).cause).toBeInstanceOf(Error);
    expect((await loadError([path.join(d, 'missing.json')])).cause).toMatchObject({ code: 'ENOENT' });
  });

  it('errors name file, entry and field', async () => {
    const d = tmp();
    const e = await loadError([write(d, 'h.json', JSON.stringify({ hooks: { PreToolUse: [{ matcher: 'Bash', hooks: [{ type: 'command', command: 'x', timeout: -1 }] }] } }))]);
    expect(e.message).toContain('h.json: hooks.PreToolUse[0].hooks[0]: field "timeout"');
    const e2 = await loadError([write(d, 'i.json', '{ not json')]);
    expect(e2.message).toContain('invalid JSON');
    const e3 = await loadError([write(d, 'j.json', JSON.stringify({ hooks: { PreToolUse: [{ hooks: [{ type: 'prompt', prompt: 'x' }] }] } }))]);
    expect(e3.message).toContain('hooks.PreToolUse[0].hooks[0]');
  });
});

/** A trust store under /var/tmp (out of every default sandbox-writable root) trusting `files` as they are now. */
const storeDirs: string[] = [];
afterAll(() => {
  for (const d of storeDirs) rmSync(d, { recursive: true, force: true });
});

function trustedStore(files: readonly string[]): TrustStore {
  const dir = mkdtempSync(path.join('/var/tmp', 'cse-trust-'));
  storeDirs.push(dir);
  const store = TrustStore.open(path.join(dir, 'state', 'trusted-hooks.json'));
  for (const f of files) {
    const fp = fingerprint(f);
    store.trust(fp.path, fp.sha256);
  }
  store.save();
  return TrustStore.open(store.path);
}

describe('discovery', () => {
  it('loads user dir, then project dir, then explicit files; a file is loaded once', async () => {
    const home = tmp();
    const proj = tmp();
    const hook = (cmd: string) => JSON.stringify({ hooks: { PreToolUse: [{ hooks: [{ type: 'command', command: cmd }] }] } });
    write(home, 'hooks.json', hook('user-json'));
    write(home, 'hooks.toml', `[[hooks.exec]]\nevent = "exec.before"\ncommand = "user-toml"\n`);
    write(proj, '.codex/hooks.json', hook('project-json'));
    const explicit = write(proj, 'extra.json', hook('explicit'));
    // Discovered files run only when trusted: trust the three (as `hooks trust` does) in a store out of the sandbox's reach.
    const trustStore = trustedStore([path.join(home, 'hooks.json'), path.join(home, 'hooks.toml'), path.join(proj, '.codex/hooks.json')]);
    const c = await loadHooks({ discoverFrom: proj, files: [explicit, path.join(proj, '.codex/hooks.json')], env: { CODEX_HOME: home }, trustStore });
    expect(c.hooks.map((h) => (h.type === 'command' ? h.command : ''))).toEqual(['user-json', 'user-toml', 'project-json', 'explicit']);
    expect(c.files.map((f) => f.origin)).toEqual(['user', 'user', 'project', 'explicit']);
  });

  it('without CODEX_HOME the user dir is ~/.codex', async () => {
    const home = tmp();
    write(home, '.codex/hooks.toml', `[[hooks.session]]\nevent = "session_start"\ncommand = "x"\n`);
    const trustStore = trustedStore([path.join(home, '.codex/hooks.toml')]);
    const c = await loadHooks({ discoverFrom: tmp(), env: { HOME: home }, trustStore });
    expect(c.files.map((f) => f.path)).toEqual([path.join(home, '.codex/hooks.toml')]);
  });

  it('an untrusted or changed discovered file is skipped and reported; a store inside a writable root is not believed', async () => {
    const home = tmp();
    const proj = tmp();
    const a = write(home, 'hooks.toml', `[[hooks.session]]\nevent = "session_start"\ncommand = "a"\n`);
    const b = write(proj, '.codex/hooks.json', JSON.stringify({ hooks: { SessionStart: [{ hooks: [{ type: 'command', command: 'b' }] }] } }));
    const trustStore = trustedStore([a, b]);
    writeFileSync(b, JSON.stringify({ hooks: { SessionStart: [{ hooks: [{ type: 'command', command: 'evil' }] }] } }));
    const c = await loadHooks({ discoverFrom: proj, env: { CODEX_HOME: home }, trustStore });
    expect(c.hooks.map((h) => (h.type === 'command' ? h.command : ''))).toEqual(['a']);
    expect(c.untrusted?.map((u) => [u.path, u.state])).toEqual([[b, 'changed']]);
    expect(c.trustWarnings?.[0]).toContain(`hooks file ${b} is changed since it was trusted: its hooks do not run`);
    // The same store, judged as lying in a sandbox-writable root, trusts nothing.
    const storeDir = path.dirname(path.dirname(trustStore.path));
    const distrusted = TrustStore.open(trustStore.path, [storeDir]);
    const d = await loadHooks({ discoverFrom: proj, env: { CODEX_HOME: home }, trustStore: distrusted });
    expect(d.hooks).toEqual([]);
    expect(d.trustWarnings?.[0]).toContain('so it is not believed');
  });

  it('a missing explicit file is an error naming it', async () => {
    const e = await loadError(['/nonexistent/hooks.toml']);
    expect(e.message).toContain('/nonexistent/hooks.toml');
  });
});

describe('the shipped examples', () => {
  it('examples/hooks.toml and examples/hooks.json load and cover every event and type', async () => {
    const env = { HOME: '/home/someone' };
    for (const f of ['hooks.toml', 'hooks.json']) {
      const c = await loadHooks({ files: [path.join(examples, f)], env });
      expect(new Set(c.hooks.map((h) => h.event))).toEqual(new Set(['session_start', 'session_end', 'exec.before', 'exec.after', 'error.occurred']));
      expect(new Set(c.hooks.map((h) => h.type))).toEqual(new Set(['command', 'webhook', 'mcp_tool']));
      expect(c.warnings).toEqual([]);
    }
    // Both together: the identical MCP server definition is shared, not a conflict.
    const both = await loadHooks({ files: [path.join(examples, 'hooks.toml'), path.join(examples, 'hooks.json')], env });
    expect(Object.keys(both.mcpServers)).toEqual(['security_scanner']);
  });
});
