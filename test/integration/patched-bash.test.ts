/**
 * The bash patch itself, against the real patched bash: every exec path must
 * reach EXEC_WRAPPER as `WRAPPER PROGRAM ARGV0 ARGS...`, the command must
 * still behave as under stock bash, and a missing wrapper must fail closed.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { requireTool } from '../helpers/tools.js';
import {
  PatchedBashBuildError,
  buildScriptPath,
  ensurePatchedBash,
  findPatchedBash,
  patchedBashCachePath,
} from '../../src/shell/patched-bash.js';

const RECORDER = fileURLToPath(new URL('../fixtures/bash/argv-recorder.sh', import.meta.url));

/** One exec as the wrapper saw it. */
interface ExecRecord {
  wrapper: string;
  program: string;
  argv: string[];
}

let bash = '';
let dir = '';
let binDir = '';
let log = '';

function readRecords(): ExecRecord[] {
  if (!existsSync(log)) return [];
  const fields = readFileSync(log, 'utf8').split('\0');
  const records: ExecRecord[] = [];
  let i = 0;
  while (i < fields.length - 1) {
    const count = Number(fields[i]);
    if (!Number.isInteger(count) || count < 1) throw new Error(`corrupt recorder log at field ${i}: ${JSON.stringify(fields[i])}`);
    const rec = fields.slice(i + 1, i + 1 + count);
    if (rec.length !== count) throw new Error('truncated recorder log');
    const [wrapper = '', program = '', ...argv] = rec;
    records.push({ wrapper, program, argv });
    i += 1 + count;
  }
  return records;
}

const BASE_PATH = `/usr/local/bin:/usr/bin:/bin`;

async function run(script: string, env: Record<string, string> = { EXEC_WRAPPER: RECORDER }) {
  return execa(bash, ['--norc', '--noprofile', '-c', script], {
    cwd: dir,
    env: { PATH: `${binDir}:${BASE_PATH}`, HOME: dir, LC_ALL: 'C', ARGV_RECORDER_LOG: log, ...env },
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    timeout: 30_000,
  });
}

/** Records sorted for order-independent comparison (pipelines, background jobs). */
function sortedRecords(): ExecRecord[] {
  return readRecords().sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

function rec(program: string, ...argv: string[]): ExecRecord {
  return { wrapper: RECORDER, program, argv };
}

function writeExecutable(path: string, body: string): void {
  writeFileSync(path, body);
  chmodSync(path, 0o755);
}

beforeAll(async () => {
  bash = await ensurePatchedBash({ onProgress: (line) => process.stderr.write(`${line}\n`) });
  dir = mkdtempSync(join(tmpdir(), 'patched-bash-test-'));
  binDir = join(dir, 'bin');
  mkdirSync(binDir);
  writeExecutable(join(binDir, 'hello-tool'), '#!/bin/sh\necho "hello-tool:$*"\n');
  writeExecutable(join(dir, 'rel-tool'), '#!/bin/sh\necho "rel-tool:$*"\nexit 4\n');
  writeExecutable(join(dir, 'with-shebang.sh'), '#!/bin/sh\necho "shebang:$1"\n');
  // No #!: the kernel says ENOEXEC; bash semantics say run it as a bash script.
  writeExecutable(join(dir, 'no-shebang'), 'echo "no-shebang:${BASH_VERSION%%(*}:$1"\n');
}, 600_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  log = join(dir, `argv-${Math.random().toString(36).slice(2)}.log`);
});

describe('patched bash build', () => {
  it('is found where the build script puts it and is bash 5.2.15', async () => {
    const override = process.env.CODEX_ESCALATE_BASH;
    expect(bash).toBe(override ? resolve(override) : patchedBashCachePath());
    expect(findPatchedBash()).toBe(bash);
    const r = await run('echo "$BASH_VERSION"', {});
    expect(r.stdout).toBe('5.2.15(1)-release');
  });

  it('build-bash.sh --print-path agrees with patchedBashCachePath()', async () => {
    const r = await execa('bash', [buildScriptPath(), '--print-path'], { reject: false });
    expect(r.stdout).toBe(patchedBashCachePath());
    expect(r.exitCode).toBe(existsSync(patchedBashCachePath()) ? 0 : 1);
    const empty = await execa('bash', [buildScriptPath(), '--print-path'], {
      reject: false,
      env: { CODEX_ESCALATE_CACHE_DIR: join(dir, 'empty-cache') },
    });
    expect(empty.exitCode).toBe(1);
    expect(empty.stdout).toBe(join(dir, 'empty-cache', basename(dirname(patchedBashCachePath())), 'bash'));
  });

  it('build-bash.sh refuses an unpinned source tarball and bad flags, with clear messages', async () => {
    const bogus = join(dir, 'bogus.tar.gz');
    writeFileSync(bogus, 'not bash');
    const r = await execa('bash', [buildScriptPath(), '--force'], {
      reject: false,
      env: { CODEX_ESCALATE_CACHE_DIR: join(dir, 'bogus-cache'), BASH_SOURCE_TARBALL: bogus },
    });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/not a pinned bash 5\.2\/5\.2\.15 tarball/);
    expect(existsSync(join(dir, 'bogus-cache', basename(dirname(patchedBashCachePath())), 'bash'))).toBe(false);

    const bad = await execa('bash', [buildScriptPath(), '--frobnicate'], { reject: false });
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toContain('unknown argument: --frobnicate');
  });

  it('ensurePatchedBash rejects a CODEX_ESCALATE_BASH that is not executable', async () => {
    const saved = process.env.CODEX_ESCALATE_BASH;
    process.env.CODEX_ESCALATE_BASH = join(dir, 'no-such-bash');
    try {
      await expect(ensurePatchedBash()).rejects.toBeInstanceOf(PatchedBashBuildError);
      expect(findPatchedBash()).toBeNull();
    } finally {
      if (saved === undefined) delete process.env.CODEX_ESCALATE_BASH;
      else process.env.CODEX_ESCALATE_BASH = saved;
    }
  });
});

describe('every exec goes through EXEC_WRAPPER', () => {
  it('simple command: program, argv, env, output and exit status', async () => {
    const r = await run('FOO=bar /usr/bin/env; /bin/sh -c "exit 7"');
    expect(r.exitCode).toBe(7);
    expect(r.stdout.split('\n')).toContain('FOO=bar');
    expect(readRecords()).toEqual([rec('/usr/bin/env', '/usr/bin/env'), rec('/bin/sh', '/bin/sh', '-c', 'exit 7')]);
  });

  it('pipeline', async () => {
    const r = await run('/bin/echo hello | /usr/bin/tr a-z A-Z');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('HELLO');
    expect(sortedRecords()).toEqual([rec('/bin/echo', '/bin/echo', 'hello'), rec('/usr/bin/tr', '/usr/bin/tr', 'a-z', 'A-Z')]);
  });

  it('subshell', async () => {
    const r = await run('( /bin/echo in-sub; /bin/sh -c "exit 3" )');
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toBe('in-sub');
    expect(readRecords()).toEqual([rec('/bin/echo', '/bin/echo', 'in-sub'), rec('/bin/sh', '/bin/sh', '-c', 'exit 3')]);
  });

  it('command substitution $( )', async () => {
    const r = await run('x=$(/bin/echo sub-out); echo "got:$x"');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('got:sub-out');
    expect(readRecords()).toEqual([rec('/bin/echo', '/bin/echo', 'sub-out')]);
  });

  it('exec replaces the shell (through the wrapper)', async () => {
    const r = await run('exec /bin/sh -c "echo replaced; exit 9"; echo not-reached');
    expect(r.exitCode).toBe(9);
    expect(r.stdout).toBe('replaced');
    expect(readRecords()).toEqual([rec('/bin/sh', '/bin/sh', '-c', 'echo replaced; exit 9')]);
  });

  it('exec -a NAME: the wrapper sees NAME as argv[0] and the program gets it', async () => {
    const r = await run(`exec -a custom-name /bin/sh -c 'echo "argv0=$0"'`);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('argv0=custom-name');
    expect(readRecords()).toEqual([rec('/bin/sh', 'custom-name', '-c', 'echo "argv0=$0"')]);
  });

  it('background job + wait', async () => {
    const r = await run('/bin/sh -c "echo bg; exit 5" & wait $!; echo "status:$?"');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('bg\nstatus:5');
    expect(readRecords()).toEqual([rec('/bin/sh', '/bin/sh', '-c', 'echo bg; exit 5')]);
  });

  it('command builtin', async () => {
    const r = await run('command /bin/echo via-command; command hello-tool x');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('via-command\nhello-tool:x');
    expect(readRecords()).toEqual([
      rec('/bin/echo', '/bin/echo', 'via-command'),
      rec(join(binDir, 'hello-tool'), 'hello-tool', 'x'),
    ]);
  });

  it('PATH search: the wrapper gets the resolved path and the typed argv[0]', async () => {
    const r = await run('hello-tool a "b c"');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('hello-tool:a b c');
    expect(readRecords()).toEqual([rec(join(binDir, 'hello-tool'), 'hello-tool', 'a', 'b c')]);
  });

  it('./relative path is passed as typed', async () => {
    const r = await run('./rel-tool x y');
    expect(r.exitCode).toBe(4);
    expect(r.stdout).toBe('rel-tool:x y');
    expect(readRecords()).toEqual([rec('./rel-tool', './rel-tool', 'x', 'y')]);
  });

  it('script with #!', async () => {
    const r = await run('./with-shebang.sh arg1');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('shebang:arg1');
    expect(readRecords()).toEqual([rec('./with-shebang.sh', './with-shebang.sh', 'arg1')]);
  });

  it('script without #!: the wrapper is asked to run the script, which runs as a bash script', async () => {
    const r = await run('./no-shebang q');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('no-shebang:5.2.15:q');
    expect(readRecords()).toEqual([rec('./no-shebang', './no-shebang', 'q')]);
  });

  it('empty and odd arguments survive intact', async () => {
    const r = await run(`/bin/echo '' 'a  b' $'tab\\there' '*'`);
    expect(r.exitCode).toBe(0);
    expect(readRecords()).toEqual([rec('/bin/echo', '/bin/echo', '', 'a  b', 'tab\there', '*')]);
  });
});

describe('the wrapper is fixed at startup', () => {
  it('assigning, unsetting or re-exporting EXEC_WRAPPER in the script changes nothing', async () => {
    const r = await run(
      [
        'EXEC_WRAPPER=/other/wrapper; /bin/echo one',
        'unset EXEC_WRAPPER BASH_EXEC_WRAPPER; /bin/echo two',
        'export EXEC_WRAPPER=/nonexistent/wrapper BASH_EXEC_WRAPPER=/nonexistent/legacy; /bin/echo three',
        '(/bin/echo four)',
        'echo "$(/bin/echo five)"',
      ].join('\n'),
    );
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('one\ntwo\nthree\nfour\nfive');
    expect(readRecords()).toEqual(['one', 'two', 'three', 'four', 'five'].map((w) => rec('/bin/echo', '/bin/echo', w)));
  });

  it('a shell started without EXEC_WRAPPER does not start intercepting when the script sets it', async () => {
    const r = await run(`export EXEC_WRAPPER=${RECORDER}; /bin/echo plain; ./no-shebang z`, {});
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('plain\nno-shebang:5.2.15:z');
    expect(readRecords()).toEqual([]);
  });

  it('legacy BASH_EXEC_WRAPPER works', async () => {
    const r = await run('/bin/echo legacy | /usr/bin/tr a-z A-Z', { BASH_EXEC_WRAPPER: RECORDER });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('LEGACY');
    expect(sortedRecords()).toEqual([rec('/bin/echo', '/bin/echo', 'legacy'), rec('/usr/bin/tr', '/usr/bin/tr', 'a-z', 'A-Z')]);
  });

  it('empty EXEC_WRAPPER falls back to BASH_EXEC_WRAPPER', async () => {
    const r = await run('/bin/echo x', { EXEC_WRAPPER: '', BASH_EXEC_WRAPPER: RECORDER });
    expect(r.stdout).toBe('x');
    expect(readRecords()).toEqual([rec('/bin/echo', '/bin/echo', 'x')]);
  });
});

describe('fail closed when the wrapper cannot run', () => {
  it('missing wrapper: 126, clear error, command never runs', async () => {
    const marker = join(dir, 'must-not-exist-1');
    const r = await run(`/usr/bin/touch ${marker}; echo "rc=$?"`, { EXEC_WRAPPER: '/nonexistent/codex-wrapper' });
    expect(r.stdout).toBe('rc=126');
    expect(r.stderr).toMatch(/\/nonexistent\/codex-wrapper: No such file or directory/);
    expect(existsSync(marker)).toBe(false);
  });

  it('missing wrapper with exec: the shell exits 126 and the command never runs', async () => {
    const marker = join(dir, 'must-not-exist-2');
    const r = await run(`exec /usr/bin/touch ${marker}`, { EXEC_WRAPPER: '/nonexistent/codex-wrapper' });
    expect(r.exitCode).toBe(126);
    expect(existsSync(marker)).toBe(false);
  });

  it('non-executable wrapper: 126 with Permission denied, ENOEXEC fallback of the command is not used', async () => {
    const wrapper = join(dir, 'not-executable-wrapper');
    writeFileSync(wrapper, '#!/bin/sh\nexec "$@"\n');
    chmodSync(wrapper, 0o644);
    const marker = join(dir, 'must-not-exist-3');
    const r = await run(`/usr/bin/touch ${marker}; echo "rc=$?"; ./no-shebang; echo "rc=$?"`, { EXEC_WRAPPER: wrapper });
    expect(r.stdout).toBe('rc=126\nrc=126');
    expect(r.stderr).toContain(`${wrapper}: Permission denied`);
    expect(existsSync(marker)).toBe(false);
  });
});

describe('without EXEC_WRAPPER it is stock bash', () => {
  it('runs commands directly, including the no-#! fallback', async () => {
    const r = await run('/bin/echo a | /usr/bin/tr a b; ./no-shebang s; exec -a nm /bin/sh -c \'echo "$0"\'', {});
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('b\nno-shebang:5.2.15:s\nnm');
    expect(existsSync(log)).toBe(false);
  });
});

describe('memory safety', () => {
  requireTool('valgrind');
  async function underValgrind(script: string, wrapper: string) {
    return execa('valgrind', ['--error-exitcode=99', '--trace-children=no', bash, '--norc', '--noprofile', '-c', script], {
      cwd: dir,
      env: { PATH: BASE_PATH, EXEC_WRAPPER: wrapper, ARGV_RECORDER_LOG: log, LC_ALL: 'C' },
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
      timeout: 120_000,
    });
  }
  // Valgrind reports errors as they happen (forked children included) but
  // prints the summary only when a process exits, not when it execs: the
  // trailing `exit` keeps the top-level shell from exec'ing the last command.
  const MEMORY_ERRORS = /Invalid (read|write)|unaddressable|uninitialised/;

  it('an intercepted exec is valgrind-clean', async () => {
    const r = await underValgrind('/bin/true; /bin/echo x; exit 0', RECORDER);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe('x');
    expect(r.stderr).toContain('ERROR SUMMARY: 0 errors');
    expect(r.stderr).not.toMatch(MEMORY_ERRORS);
    // Both execs really went through the wrapper.
    expect(readRecords()).toEqual([rec('/bin/true', '/bin/true'), rec('/bin/echo', '/bin/echo', 'x')]);
  }, 180_000);

  it('a failed wrapper exec (vector freed, error reported) is valgrind-clean', async () => {
    const r = await underValgrind('/bin/true; echo "rc=$?"; exec /bin/true', '/nonexistent/codex-wrapper');
    expect(r.exitCode, r.stderr).toBe(126);
    expect(r.stdout).toBe('rc=126');
    expect(r.stderr).toContain('ERROR SUMMARY: 0 errors');
    expect(r.stderr).not.toMatch(/ERROR SUMMARY: [1-9]/);
    expect(r.stderr).not.toMatch(MEMORY_ERRORS);
  }, 180_000);
});
