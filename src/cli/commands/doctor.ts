import { Command } from 'commander';
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { defaultWrapperPath, packageRoot } from '../../paths.js';
import { bwrapLaunch, bwrapUsable } from '../../sandbox/bwrap.js';
import { execFilterUsable } from '../../sandbox/exec-filter.js';
import { findPatchedBash, PATCHED_BASH_ENV_VAR, patchedBashCachePath } from '../../shell/patched-bash.js';
import { shellProblem } from '../shell-check.js';

interface Check {
  readonly name: string;
  readonly required: boolean;
  /** `required` in the result overrides the check's own (a sandbox that works but leaks capabilities is a failure). */
  run(): { ok: boolean; detail: string; fix?: string; required?: boolean };
}

type CheckResult = ReturnType<Check['run']>;

/** `probe`'s result, or a failure with `fix` when it throws (its first line, after `subject:` when given). */
function unlessThrows(fix: string, subject: string | undefined, probe: () => CheckResult): CheckResult {
  try {
    return probe();
  } catch (err) {
    return { ok: false, detail: subject === undefined ? firstLine(err) : `${subject}: ${firstLine(err)}`, fix };
  }
}

/** Printed from inside the sandbox: CapEff and CapBnd of the shell, and whether a new user namespace can be made. */
const CONFINEMENT_PROBE = [
  "sed -n 's/^\\(CapEff\\|CapBnd\\):[[:space:]]*/\\1=/p' /proc/self/status",
  'if ! command -v unshare >/dev/null 2>&1; then echo userns=unknown; elif unshare --user true 2>/dev/null; then echo userns=allowed; else echo userns=refused; fi',
].join('\n');

/** Launch the probe exactly as `run` launches the shell (same bwrapLaunch profile), in the current directory. */
function probeConfinement(): { capEff?: string; capBnd?: string; userns?: string } {
  const launch = bwrapLaunch('/bin/sh', ['-c', CONFINEMENT_PROBE], { cwd: process.cwd() });
  try {
    const out = execFileSync(launch.command, launch.args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', ...launch.extraFds], timeout: 10_000 });
    const fields = new Map(out.trim().split('\n').map((l) => l.split('=') as [string, string]));
    return { capEff: fields.get('CapEff'), capBnd: fields.get('CapBnd'), userns: fields.get('userns') };
  } finally {
    launch.release();
  }
}

const checks: Check[] = [
  {
    name: 'native addon (fd passing)',
    required: true,
    run() {
      return unlessThrows('run "npm rebuild" in the package (needs python3, make and a C compiler)', undefined, () => {
        // Imported lazily so a missing addon is reported, not thrown at startup.
        execFileSync(process.execPath, ['-e', `import(${JSON.stringify(pathToFileURL(path.join(packageRoot, 'dist', 'native', 'index.js')).href)}).then(m => m.countOpenFds())`], { stdio: 'pipe' });
        return { ok: true, detail: 'loads' };
      });
    },
  },
  {
    name: 'codex-execve-wrapper',
    required: true,
    run() {
      const p = defaultWrapperPath();
      return unlessThrows('run "make -C wrapper" in the package (or "npm rebuild")', p, () => {
        accessSync(p, constants.X_OK);
        const v = execFileSync(p, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
        return { ok: true, detail: `${p} (${v})` };
      });
    },
  },
  {
    name: 'patched bash',
    required: true,
    run() {
      const p = findPatchedBash();
      const override = process.env[PATCHED_BASH_ENV_VAR];
      if (!p && override) return { ok: false, detail: `${PATCHED_BASH_ENV_VAR}=${override}: not an executable file`, fix: `unset ${PATCHED_BASH_ENV_VAR} or point it at the patched build` };
      if (!p) return { ok: false, detail: `not built (expected at ${patchedBashCachePath()})`, fix: 'run "npm run build:bash" (or just "codex-escalate run", which builds it on first use)' };
      // Read, not run: a stock bash would answer the probe below just as well and decide nothing.
      const problem = shellProblem(p);
      if (problem !== undefined) return { ok: false, detail: `${p}: ${problem}`, fix: override ? `unset ${PATCHED_BASH_ENV_VAR} or point it at the patched build` : 'rebuild it: "bash scripts/build-bash.sh --force"' };
      return unlessThrows('rebuild it: "bash scripts/build-bash.sh --force"', p, () => {
        // stdin not a socket: bash sources ~/.bashrc when its stdin is one (Debian's SSH_SOURCE_BASHRC).
        const v = execFileSync(p, ['-c', 'echo $BASH_VERSION'], { encoding: 'utf8', env: {}, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
        return { ok: true, detail: `${p} (bash ${v})` };
      });
    },
  },
  {
    name: 'bubblewrap (sandbox)',
    required: false,
    run() {
      return unlessThrows('apt-get install bubblewrap (without it, Run is not sandboxed)', undefined, () => {
        execFileSync('bwrap', ['--ro-bind', '/', '/', '--unshare-net', '/bin/true'], { stdio: 'pipe' });
        return { ok: true, detail: 'works' };
      });
    },
  },
  {
    name: 'direct execs (seccomp user notification)',
    required: false,
    run() {
      const usable = execFilterUsable(defaultWrapperPath());
      if (usable.ok) return { ok: true, detail: 'works: execs that programs make directly are decided too' };
      return { ok: false, detail: `${usable.reason}; run decides only the shell's execs`, fix: 'Linux 5.9 or later, and a container runtime that allows seccomp(2) with SECCOMP_FILTER_FLAG_NEW_LISTENER' };
    },
  },
  {
    name: 'sandbox confinement',
    required: false,
    run() {
      const usable = bwrapUsable();
      if (!usable.ok) return { ok: false, detail: `not checked: bwrap does not work here (${usable.reason})`, fix: 'install bubblewrap 0.8 or later' };
      let r;
      try {
        r = probeConfinement();
      } catch (err) {
        return { ok: false, required: true, detail: `the sandbox probe failed: ${firstLine(err)}` };
      }
      const zero = /^0+$/;
      const capsOk = r.capEff !== undefined && zero.test(r.capEff) && r.capBnd !== undefined && zero.test(r.capBnd);
      const detail = `effective capabilities inside: ${r.capEff ?? '?'} (bounding ${r.capBnd ?? '?'}); user namespace creation: ${r.userns ?? '?'}`;
      if (!capsOk || r.userns === 'allowed') {
        return { ok: false, required: true, detail, fix: 'the sandbox must run with no capabilities and no nested user namespaces: use bubblewrap 0.8 or later, and report this' };
      }
      // No unshare(1) inside to try with: the capabilities are what count.
      if (r.userns !== 'refused') return { ok: false, detail, fix: 'install util-linux so the user namespace check can run' };
      return { ok: true, detail };
    },
  },
];

function firstLine(err: unknown): string {
  const e = err as { stderr?: Buffer | string; message?: string };
  const text = (e.stderr ? String(e.stderr) : '') || e.message || String(err);
  return text.trim().split('\n')[0] ?? 'failed';
}

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .summary('check the wrapper, native addon, patched bash and sandbox, and say how to fix what is missing')
    .description(
      'Check every component codex-escalate needs on this machine: the native addon, codex-execve-wrapper, the patched bash\n' +
        '($CODEX_ESCALATE_BASH or the cached build; a stock bash is refused) and the bubblewrap sandbox with its confinement.\n' +
        'Prints one line per check (ok, warn or FAIL) with how to fix what is missing.\n' +
        'Exit status: 0 when every required check passed, 1 when one failed, 125 on a usage error.',
    )
    .action(() => {
      let failed = 0;
      for (const check of checks) {
        const r = check.run();
        const required = r.required ?? check.required;
        const mark = r.ok ? 'ok  ' : required ? 'FAIL' : 'warn';
        process.stdout.write(`${mark}  ${check.name}: ${r.detail}\n`);
        if (!r.ok && r.fix) process.stdout.write(`      fix: ${r.fix}\n`);
        if (!r.ok && required) failed++;
      }
      process.stdout.write(failed ? `\n${failed} required check(s) failed\n` : '\nall required components present\n');
      process.exitCode = failed ? 1 : 0;
    });
}
