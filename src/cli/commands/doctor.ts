import { Command } from 'commander';
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { defaultWrapperPath } from '../../paths.js';
import { findPatchedBash, patchedBashCachePath } from '../../shell/patched-bash.js';

interface Check {
  readonly name: string;
  readonly required: boolean;
  run(): { ok: boolean; detail: string; fix?: string };
}

const checks: Check[] = [
  {
    name: 'native addon (fd passing)',
    required: true,
    run() {
      try {
        // Imported lazily so a missing addon is reported, not thrown at startup.
        execFileSync(process.execPath, ['-e', `import(${JSON.stringify(new URL('../../native/index.js', import.meta.url).href)}).then(m => m.countOpenFds())`], { stdio: 'pipe' });
        return { ok: true, detail: 'loads' };
      } catch (err) {
        return { ok: false, detail: firstLine(err), fix: 'run "npm rebuild" in the package (needs python3, make and a C compiler)' };
      }
    },
  },
  {
    name: 'codex-execve-wrapper',
    required: true,
    run() {
      const p = defaultWrapperPath();
      try {
        accessSync(p, constants.X_OK);
        const v = execFileSync(p, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
        return { ok: true, detail: `${p} (${v})` };
      } catch (err) {
        return { ok: false, detail: `${p}: ${firstLine(err)}`, fix: 'run "make -C wrapper" in the package (or "npm rebuild")' };
      }
    },
  },
  {
    name: 'patched bash',
    required: true,
    run() {
      const p = findPatchedBash();
      if (!p) return { ok: false, detail: `not built (expected at ${patchedBashCachePath()})`, fix: 'run "npm run build:bash" (or just "codex-escalate run", which builds it on first use)' };
      try {
        const v = execFileSync(p, ['-c', 'echo $BASH_VERSION'], { encoding: 'utf8', env: {} }).trim();
        return { ok: true, detail: `${p} (bash ${v})` };
      } catch (err) {
        return { ok: false, detail: `${p}: ${firstLine(err)}`, fix: 'rebuild it: "bash scripts/build-bash.sh --force"' };
      }
    },
  },
  {
    name: 'bubblewrap (sandbox)',
    required: false,
    run() {
      try {
        execFileSync('bwrap', ['--ro-bind', '/', '/', '--unshare-net', '/bin/true'], { stdio: 'pipe' });
        return { ok: true, detail: 'works' };
      } catch (err) {
        return { ok: false, detail: firstLine(err), fix: 'apt-get install bubblewrap (without it, Run is not sandboxed)' };
      }
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
    .action(() => {
      let failed = 0;
      for (const check of checks) {
        const r = check.run();
        const mark = r.ok ? 'ok  ' : check.required ? 'FAIL' : 'warn';
        process.stdout.write(`${mark}  ${check.name}: ${r.detail}\n`);
        if (!r.ok && r.fix) process.stdout.write(`      fix: ${r.fix}\n`);
        if (!r.ok && check.required) failed++;
      }
      process.stdout.write(failed ? `\n${failed} required component(s) missing\n` : '\nall required components present\n');
      process.exitCode = failed ? 1 : 0;
    });
}
