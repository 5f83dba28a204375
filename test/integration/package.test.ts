/**
 * The npm package as a user gets it: `npm pack` (prepack builds dist/) in a
 * copy of this checkout, then an offline install of the tarball
 * (`--ignore-scripts=false`) into an empty directory from the npm cache
 * (CI's `npm ci` filled it; see appLockfile), which builds the addon and the
 * wrapper on install. Then the library is imported and the CLI run there.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';
import { tempDir } from '../helpers/harness.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment without npm's lifecycle variables (npm test sets them; a user's shell does not). */
function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

function run(file: string, args: readonly string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeout?: number }): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: opts.cwd, env: opts.env ?? userEnv(), timeout: opts.timeout ?? 300_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const c = (err as { code?: unknown } | null)?.code;
      // A spawn failure (ENOENT...) has a string code: say it rather than a bare 1.
      resolve({ code: err ? (typeof c === 'number' ? c : 1) : 0, stdout, stderr: typeof c === 'string' ? `${stderr}${err!.message}` : stderr });
    });
  });
}

interface LockEntry {
  dev?: boolean;
  devOptional?: boolean;
  [k: string]: unknown;
}

/**
 * An app depending on the tarball alone, with the lockfile `npm install
 * ./x.tgz` would write: the tarball plus this checkout's locked versions of
 * its runtime dependencies. Offline, npm can install exact locked versions
 * from the cache (CI's `npm ci` put every tarball there), but a bare
 * `npm install --offline ./x.tgz` must first resolve each semver range from
 * registry metadata, which the cache does not hold (ENOTCACHED).
 */
function appLockfile(app: string, tarball: string): void {
  const pkg = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as Record<string, unknown>;
  const lock = JSON.parse(readFileSync(path.join(packageRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const root = { name: 'app', version: '1.0.0', dependencies: { 'codex-shell-escalation': `file:${tarball}` } };
  const packages: Record<string, unknown> = {
    '': root,
    'node_modules/codex-shell-escalation': {
      version: pkg['version'],
      resolved: `file:${tarball}`,
      hasInstallScript: true,
      license: pkg['license'],
      os: pkg['os'],
      engines: pkg['engines'],
      dependencies: pkg['dependencies'],
      // npm links bin entries from the lockfile's record.
      bin: pkg['bin'],
    },
  };
  for (const [k, v] of Object.entries(lock.packages)) if (k.startsWith('node_modules/') && !v.dev && !v.devOptional) packages[k] = v;
  writeFileSync(path.join(app, 'package.json'), `${JSON.stringify(root, null, 2)}\n`);
  writeFileSync(path.join(app, 'package-lock.json'), `${JSON.stringify({ name: 'app', version: '1.0.0', lockfileVersion: 3, requires: true, packages }, null, 2)}\n`);
}

// What a checkout has that the package must not ship (nor may the copy carry build outputs in).
const NOT_COPIED = new Set(['node_modules', 'build', 'dist', '.git', 'coverage', '.cache']);

const version = (JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;

describe('the npm package: pack, install into an empty directory, use', () => {
  let files: string[] = [];
  let tarball: string;
  let app: string;
  let installed: string;
  let install: Run;

  beforeAll(async () => {
    // A copy, so prepack's rebuild of dist/ cannot race the CLI the other suites are running.
    const src = path.join(tempDir('cse-pack-src-'), 'pkg');
    cpSync(packageRoot, src, {
      recursive: true,
      filter: (from) => {
        const rel = path.relative(packageRoot, from);
        return !NOT_COPIED.has(rel.split(path.sep)[0]!) && rel !== path.join('wrapper', 'codex-execve-wrapper');
      },
    });
    // tsc (prepack) needs the dev dependencies.
    symlinkSync(realpathSync(path.join(packageRoot, 'node_modules')), path.join(src, 'node_modules'));
    const out = tempDir('cse-pack-out-');
    const pack = await run('npm', ['pack', '--json', '--pack-destination', out], { cwd: src });
    expect(pack.code, `${pack.stderr}\n${pack.stdout}`).toBe(0);
    const info = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
    files = info[0]!.files.map((f) => f.path).sort();
    tarball = path.join(out, info[0]!.filename);

    app = tempDir('cse-pack-app-');
    appLockfile(app, tarball);
    install = await run('npm', ['ci', '--offline', '--ignore-scripts=false', '--no-audit', '--no-fund'], { cwd: app, timeout: 600_000 });
    installed = path.join(app, 'node_modules', 'codex-shell-escalation');
  }, 900_000);

  it('ships dist/, bin/, the addon, wrapper and bash-patch sources with their build scripts, LICENSE and README, and nothing else', () => {
    const allowed = [/^dist\/.*\.(js|d\.ts)$/, /^bin\/codex-escalate\.js$/, /^native\/[\w-]+\.(c|h|md)$/, /^wrapper\/[\w-]+\.[ch]$/, /^wrapper\/Makefile$/, /^binding\.gyp$/, /^patches\/[\w.-]+\.patch$/, /^scripts\/build-(native|bash)\.sh$/, /^LICENSE$/, /^README\.md$/, /^package\.json$/];
    expect(files.filter((f) => !allowed.some((re) => re.test(f)))).toEqual([]);
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'dist/cli-bundle/main.js', 'dist/server/parse-worker.js', 'bin/codex-escalate.js', 'binding.gyp', 'native/spawn.c', 'native/common.h', 'wrapper/codex-execve-wrapper.c', 'wrapper/protocol.h', 'wrapper/Makefile', 'patches/bash-exec-wrapper.patch', 'scripts/build-native.sh', 'scripts/build-bash.sh', 'LICENSE', 'README.md']) {
      expect(files).toContain(f);
    }
    expect(readFileSync(path.join(packageRoot, 'LICENSE'), 'utf8')).toMatch(/Apache License\s+Version 2\.0, January 2004[\s\S]*END OF TERMS AND CONDITIONS/);
  });

  it('installs offline with its install script: the addon and the wrapper are built, no npm install ran inside node_modules', () => {
    expect(install.code, install.stderr).toBe(0);
    expect(existsSync(path.join(installed, 'build', 'Release', 'codex_native.node'))).toBe(true);
    expect(existsSync(path.join(installed, 'wrapper', 'codex-execve-wrapper'))).toBe(true);
    // Dependencies are hoisted next to it; a package-local node_modules would be an npm install run by the CLI.
    expect(existsSync(path.join(installed, 'node_modules'))).toBe(false);
  });

  it('import "codex-shell-escalation" loads the library', async () => {
    const r = await run(process.execPath, ['--input-type=module', '-e', "const m = await import('codex-shell-escalation'); console.log(typeof m.EscalationServer, typeof m.createStaticPolicy, typeof m.loadRulesFiles)"], { cwd: app });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('function function function\n');
  });

  it('codex-escalate --version and run -- true work from the install, and the installed wrapper decides execs', async () => {
    const bin = path.join(app, 'node_modules', '.bin', 'codex-escalate');
    const env = userEnv({ CODEX_HOME: tempDir('cse-pack-codex-home-') });
    const v = await run(bin, ['--version'], { cwd: app, env });
    expect(v).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });

    const t = await run(bin, ['run', '--sandbox', 'none', '--log-file', path.join(app, 'audit.jsonl'), '--', 'true'], { cwd: app, env });
    expect(t.stderr).not.toMatch(/npm install/);
    expect(t.code, t.stderr).toBe(0);

    const d = await run(bin, ['run', '--sandbox', 'none', '--deny', 'rm', '--log-file', path.join(app, 'audit.jsonl'), '--', 'touch x && rm x; echo "rm=$?"'], { cwd: app, env });
    expect(d.stdout).toBe('rm=126\n');
    expect(existsSync(path.join(app, 'x'))).toBe(true);
    expect(existsSync(path.join(installed, 'node_modules'))).toBe(false);
  });
});
