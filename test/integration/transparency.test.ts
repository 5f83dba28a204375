/**
 * Interception is invisible to scripts (issue 13): each script runs under the
 * real CLI (`codex-escalate run`, both sandbox modes, the real patched bash and
 * wrapper) and with the same patched bash without EXEC_WRAPPER, whose output is
 * stock bash's (the bash-suite runner proves the two builds identical). Output
 * and status must be the same, and the decisions show what was intercepted.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SHELL_SOCKET_FD_MIN } from '../../src/protocol/constants.js';
import { cliEnv, cliPath, readJsonLines } from '../helpers/e2e.js';
import { patchedBash, tempDir } from '../helpers/harness.js';

interface Out {
  stdout: string;
  stderr: string;
  code: number | null;
}

function spawnOut(cmd: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Out> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ stdout, stderr, code }));
  });
}

/** The reference: the patched bash with EXEC_WRAPPER unset (stock behaviour). */
function stock(script: string, cwd: string): Promise<Out> {
  return spawnOut(patchedBash(), ['--norc', '--noprofile', '-c', script], cwd, cliEnv());
}

type Mode = 'none' | 'bwrap';
const MODES: readonly Mode[] = ['none', 'bwrap'];

async function intercepted(script: string, cwd: string, mode: Mode): Promise<Out & { decisions: Record<string, unknown>[] }> {
  const log = path.join(tempDir('cse-transparency-log-'), 'audit.jsonl');
  const out = await spawnOut(
    process.execPath,
    [cliPath, 'run', '--sandbox', mode, '--shell', patchedBash(), '--cwd', cwd, '--log-file', log, '--no-discover-hooks', '--', script],
    cwd,
    cliEnv(),
  );
  const decisions = existsSync(log) ? readJsonLines(log).filter((l) => l.event === 'decision') : [];
  return { ...out, decisions };
}

/** Runs SCRIPT stock and under both modes, each time in the same directory emptied and prepared by SETUP; returns the decisions per mode. */
async function same(script: string, setup = ''): Promise<Record<Mode, Record<string, unknown>[]>> {
  const dir = tempDir('cse-transparency-');
  const fresh = async (): Promise<string> => {
    for (const e of readdirSync(dir)) rmSync(path.join(dir, e), { recursive: true, force: true });
    if (setup) {
      const r = await stock(setup, dir);
      expect(r).toMatchObject({ code: 0, stderr: '' });
    }
    return dir;
  };
  const want = await stock(script, await fresh());
  const got = {} as Record<Mode, Record<string, unknown>[]>;
  for (const mode of MODES) {
    const r = await intercepted(script, await fresh(), mode);
    expect({ mode, stdout: r.stdout, stderr: r.stderr, code: r.code }).toEqual({ mode, ...want });
    got[mode] = r.decisions;
  }
  return got;
}

const programs = (ds: Record<string, unknown>[]): unknown[] => ds.map((d) => d.program);

describe('transparency: scripts behave as under stock bash', () => {
  it('exec -c and export -n: the session is the shell\'s, and no protocol variable reaches the program', async () => {
    const decisions = await same(
      [
        '(exec -c /usr/bin/env); echo "rc=$?"',
        '(export -n CODEX_ESCALATE_SOCKET EXEC_WRAPPER; /usr/bin/env | /usr/bin/grep -c -e CODEX_ -e EXEC_WRAPPER; /usr/bin/true; echo "rc=$?")',
        'env -i /usr/bin/env; echo "rc=$?"',
      ].join('\n'),
    );
    for (const mode of MODES) {
      // Still intercepted: env (twice), grep, true, env -i's env; env -i's own exec of env is a direct exec (layer 2).
      const envs = decisions[mode].filter((d) => d.program === '/usr/bin/env');
      expect(envs.filter((d) => d.via === 'wrapper')).toHaveLength(3);
      expect(envs.filter((d) => d.via === 'direct')).toHaveLength(1);
      expect(programs(decisions[mode])).toContain('/usr/bin/true');
    }
  });

  it('coproc and process substitution get the fd numbers stock bash gives them', async () => {
    await same('coproc cat; echo "${COPROC[@]}"; exec {COPROC[1]}>&-; wait\necho <(:) <(:)\nread -r x < <(echo sub); echo "$x"');
  });

  it('redirections to any fd keep working, the socket\'s own number included, and execs stay intercepted', async () => {
    const fd = SHELL_SOCKET_FD_MIN;
    const decisions = await same(
      [
        `/bin/sh -c 'echo three >&3' 3>f3; cat f3`,
        `exec 9>f9; /usr/bin/echo nine >&9; exec 9>&-; cat f9`,
        `exec ${fd}>fs; /usr/bin/echo socket-slot >&${fd}; exec ${fd}>&-; cat fs`,
        `exec {v}>fv; /usr/bin/echo var >&$v; exec {v}>&-; cat fv`,
        `/usr/bin/echo high 1000>f1000 >&1000; cat f1000`,
        `${fd}>&- /usr/bin/true; echo "closed rc=$?"`,
        `/usr/bin/echo still intercepted`,
      ].join('\n'),
    );
    for (const mode of MODES) expect(programs(decisions[mode]).filter((p) => p === '/usr/bin/echo')).toHaveLength(5);
  });

  it('a script without #! runs in the forked shell: shell options and the hash table carry over', async () => {
    const decisions = await same(
      'ls >/dev/null; shopt -u globskipdots; f() { echo function; }; ./t; echo "rc=$?"; ./t2 arg; echo "rc=$?"',
      "printf 'shopt globskipdots; hash; /usr/bin/echo \"$0\"\\n' >t; printf 'echo \"$0 $1\"; exit 3\\n' >t2; chmod +x t t2",
    );
    for (const mode of MODES) {
      const ps = programs(decisions[mode]);
      expect(ps).toContain('/usr/bin/ls');
      // the script itself is decided, then what it runs
      expect(decisions[mode].filter((d) => (d.argv as string[])[0] === './t')).toHaveLength(1);
      expect(ps).toContain('/usr/bin/echo');
    }
  });

  it('failures bash detects before exec: its own messages and statuses, no decision, the shell survives', async () => {
    const decisions = await same(
      [
        '/; echo "rc=$?"',
        './nonexistent; echo "rc=$?"',
        './noexec; echo "rc=$?"',
        './dir; echo "rc=$?"',
        'nonexistent-command; echo "rc=$?"',
        'shopt -s execfail; exec /nonexistent; echo "still here $?"',
        'exec ./noexec; echo "still here $?"',
      ].join('\n'),
      'mkdir dir; echo "echo x" >noexec',
    );
    for (const mode of MODES) expect(decisions[mode]).toEqual([]);
  });

  it('an interactive shell survives exec of a missing program, as stock', async () => {
    // A nested patched bash -i, intercepted through the session it inherits.
    // Without a tty bash names its process group in a warning: a pid, or -1 in bwrap's pid namespace (not ours to change).
    const drop = `| while IFS= read -r l; do [[ $l == *'terminal process group'* ]] || printf '%s\\n' "$l"; done`;
    const decisions = await same(`"$BASH" --norc --noprofile -i 2>&1 <<'EOF' ${drop}\nexec /nonexistent\necho "still here $?"\n/usr/bin/echo after\nEOF`);
    for (const mode of MODES) {
      const ps = programs(decisions[mode]);
      expect(ps).toContain('/usr/bin/echo');
      expect(ps).not.toContain('/nonexistent');
    }
  });

  it('background jobs still running when the shell exits are ended, never refused, the same in both modes', async () => {
    for (const mode of MODES) {
      const dir = tempDir('cse-transparency-');
      // A marker no other process has in its argv, to find the job from outside (bwrap's pids are its own).
      const marker = `${Date.now()}${Math.floor(Math.random() * 1e6)}`;
      const script = `(/usr/bin/sleep 30.${marker}; /usr/bin/echo late) &\nuntil /usr/bin/pgrep -f 30.${marker} >/dev/null; do :; done; echo main done`;
      const r = await intercepted(script, dir, mode);
      expect({ mode, stdout: r.stdout, stderr: r.stderr, code: r.code }).toEqual({ mode, stdout: 'main done\n', stderr: '', code: 0 });
      // The session's end waits until its cgroup is empty: by the time `run` exits the job is gone.
      const alive = readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
          try {
            return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(marker);
          } catch {
            return false;
          }
        });
      expect({ mode, alive }).toEqual({ mode, alive: [] });
      // It was started (decided) and never got a refusal.
      expect(programs(r.decisions)).toContain('/usr/bin/sleep');
    }
  });
});
