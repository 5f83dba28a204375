/**
 * bash's own test suite as the referee of transparency (issue 13): every
 * `run-*` of tests/ in the bash 5.2.15 source our build uses, run with
 *
 *   stock        the same source built without our patch (build-bash.sh --stock)
 *   patched      the patched bash, EXEC_WRAPPER unset
 *   none         the patched bash under `codex-escalate run --sandbox none`
 *   stock-bwrap  the stock bash under `codex-escalate run --sandbox bwrap`: it
 *                ignores EXEC_WRAPPER, so nothing is intercepted; the sandbox
 *                alone (root without capabilities, private /tmp)
 *   bwrap        the patched bash under `codex-escalate run --sandbox bwrap`
 *
 * in the same clean environment (env -i, fixed locale, fds > 2 closed, stdin
 * /dev/null, the same work directory path and temp dir layout, the bash under
 * test at the same path). Each configuration is compared with its reference:
 * patched and none with stock; bwrap with stock, or where the sandbox alone
 * changes the result, with stock-bwrap (root without capabilities; also the
 * session socket, which stock bash leaves at the launch fd 63 where a process
 * substitution would go). What stock-bwrap changes against stock is shown,
 * and does not fail.
 * Prints a table test -> result per configuration, every difference, and
 * exits 1 on any difference (2 on a setup error).
 *
 * Usage: tsx scripts/bash-suite.ts [--only run-a,run-b] [--configs stock,patched,none,bwrap]
 *          [--test-timeout SECONDS] [--total-timeout MINUTES] [--retries N] [--keep]
 */
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'bin', 'codex-escalate.js');

const CONFIGS = ['stock', 'patched', 'none', 'stock-bwrap', 'bwrap'] as const;
type Config = (typeof CONFIGS)[number];
/** What each configuration must equal (any one of them; the first is the one a difference is shown against). */
const REFERENCE: Record<Config, readonly Config[]> = {
  stock: [],
  patched: ['stock'],
  none: ['stock'],
  'stock-bwrap': ['stock'],
  bwrap: ['stock', 'stock-bwrap'],
};
/** Differences that are the sandbox's, not interception's: shown, never failing. */
const INFORMATIONAL = new Set<Config>(['stock-bwrap']);

/** run-all skips these (run-minimal needs a --enable-minimal-config build). */
const SKIPPED = new Set(['run-all', 'run-minimal', 'run-gprof']);

const Options = z.object({
  only: z.array(z.string().regex(/^run-[\w.-]+$/)).optional(),
  configs: z.array(z.enum(CONFIGS)).nonempty(),
  // The slowest stock test takes ~20 s here; 180 s leaves room for a loaded CI machine.
  testTimeoutS: z.number().int().positive(),
  // The whole .ci/run has 90 minutes; four configurations of ~5 minutes each fit well inside 45.
  totalTimeoutMin: z.number().positive(),
  retries: z.number().int().min(0).max(5),
  keep: z.boolean(),
});
type Options = z.infer<typeof Options>;

function parseArgs(argv: readonly string[]): Options {
  const raw: Record<string, unknown> = {
    configs: [...CONFIGS],
    testTimeoutS: 180,
    totalTimeoutMin: 45,
    retries: 2,
    keep: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--only') raw.only = next().split(',').filter(Boolean);
    else if (a === '--configs') raw.configs = next().split(',').filter(Boolean);
    else if (a === '--test-timeout') raw.testTimeoutS = Number(next());
    else if (a === '--total-timeout') raw.totalTimeoutMin = Number(next());
    else if (a === '--retries') raw.retries = Number(next());
    else if (a === '--keep') raw.keep = true;
    else throw new Error(`unknown argument: ${a}`);
  }
  const parsed = Options.safeParse(raw);
  if (!parsed.success) throw new Error(`bad arguments: ${z.prettifyError(parsed.error)}`);
  const opts = parsed.data;
  // References always run, before what is compared with them.
  const wanted = new Set<Config>(opts.configs);
  for (const c of opts.configs) for (const r of REFERENCE[c]) wanted.add(r);
  opts.configs = CONFIGS.filter((c) => wanted.has(c)) as unknown as typeof opts.configs;
  return opts;
}

/** The last stdout line of a build script is the binary's path. */
function build(args: string[]): string {
  const out = execFileSync('bash', [path.join(root, 'scripts', 'build-bash.sh'), ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const bin = out.trim().split('\n').at(-1);
  if (!bin || !existsSync(bin)) throw new Error(`build-bash.sh ${args.join(' ')} printed no binary`);
  return bin;
}

interface Result {
  /** 'pass' (no output: the .right files matched), 'fail' (output), 'timeout'. */
  status: 'pass' | 'fail' | 'timeout';
  output: string;
  /** Decisions in the session's audit log (run configurations only). */
  decisions?: number;
}

interface Ctx {
  opts: Options;
  stockBash: string;
  patchedBash: string;
  /** Pristine tests/ of the stock tree (with recho, zecho, printenv, xcase). */
  testsSrc: string;
  /** The one work directory every configuration uses in turn (same path, same layout). */
  work: string;
  logs: string;
  deadline: number;
}

/** The bash under test, copied here for every run: its path shows in some outputs. */
function thisShPath(ctx: Ctx): string {
  return path.join(ctx.work, 'bin', 'bash');
}

/** The environment of every test, whatever the configuration. */
function cleanEnv(ctx: Ctx, thisSh: string): Record<string, string> {
  const tests = path.join(ctx.work, 'tests');
  return {
    PATH: `${tests}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    HOME: path.join(ctx.work, 'home'),
    LANG: 'C.UTF-8',
    TMPDIR: path.join(ctx.work, 'tmp'),
    // run-all sets this for each run-* (its own name has a random suffix; one fixed name here).
    BASH_TSTOUT: path.join(ctx.work, 'tmp', 'bashtst-out'),
    THIS_SH: thisSh,
    BUILD_DIR: ctx.work,
    // CODEX_HOME empty: no hooks of this machine's user are discovered.
    CODEX_HOME: path.join(ctx.work, 'codex-home'),
  };
}

/** A fresh copy of tests/ at the same path for every run. */
function resetWork(ctx: Ctx, bash: string): void {
  for (const d of ['tests', 'tmp', 'home', 'codex-home', 'bin']) rmSync(path.join(ctx.work, d), { recursive: true, force: true });
  mkdirSync(path.join(ctx.work, 'bin'));
  cpSync(bash, thisShPath(ctx), { preserveTimestamps: true });
  cpSync(ctx.testsSrc, path.join(ctx.work, 'tests'), { recursive: true, preserveTimestamps: true });
  for (const d of ['tmp', 'home', 'codex-home']) mkdirSync(path.join(ctx.work, d), { recursive: true });
  // bash's tests expect ../bash-style siblings only through THIS_SH and BUILD_DIR; nothing else is copied.
}

// Closes every fd above 2 before exec, so no configuration inherits anything the runner's parent leaked.
const CLOSE_FDS =
  'for f in /proc/self/fd/*; do n=${f##*/}; if ((n > 2)); then eval "exec $n>&-"; fi; done; exec "$@"';

function isStock(config: Config): boolean {
  return config === 'stock' || config === 'stock-bwrap';
}

function argvFor(ctx: Ctx, config: Config, test: string): { argv: string[]; env: Record<string, string> } {
  const env = cleanEnv(ctx, thisShPath(ctx));
  const tests = path.join(ctx.work, 'tests');
  const inner = `sh ./${test}`;
  if (config === 'stock' || config === 'patched') {
    return { argv: ['/bin/sh', '-c', inner], env };
  }
  const log = path.join(ctx.logs, `${config}-${test}.audit.jsonl`);
  return {
    argv: [
      process.execPath,
      cli,
      'run',
      '--sandbox',
      config === 'none' ? 'none' : 'bwrap',
      // The shell is the real build (not the sandbox-writable copy the tests run).
      '--shell',
      isStock(config) ? ctx.stockBash : ctx.patchedBash,
      // run refuses a stock bash unless told this is a comparison.
      ...(isStock(config) ? ['--unpatched-shell'] : []),
      '--cwd',
      tests,
      '--writable',
      ctx.work,
      '--log-file',
      log,
      '--no-discover-hooks',
      '--',
      inner,
    ],
    env,
  };
}

/**
 * Output that differs between any two runs, stock against stock: process ids.
 * Only these exact messages are rewritten, so nothing else can hide a difference.
 */
const VOLATILE: readonly [RegExp, string][] = [
  // bash without a tty (job control tests); the pid, or -1 in a pid namespace without one
  [/cannot set terminal process group \(-?\d+\)/g, 'cannot set terminal process group (PID)'],
  // The stock-bwrap reference runs stock bash with run --unpatched-shell, which says so first.
  [/^codex-escalate: warning: --unpatched-shell: [^\n]*\n/m, ''],
];

function normalize(output: string): string {
  return VOLATILE.reduce((s, [re, by]) => s.replace(re, by), output);
}

function countDecisions(log: string): number | undefined {
  if (!existsSync(log)) return undefined;
  return readFileSync(log, 'utf8').split('\n').filter((l) => l.includes('"event":"decision"')).length;
}

function runOne(ctx: Ctx, config: Config, test: string): Promise<Result> {
  resetWork(ctx, isStock(config) ? ctx.stockBash : ctx.patchedBash);
  rmSync(path.join(ctx.logs, `${config}-${test}.audit.jsonl`), { force: true });
  const { argv, env } = argvFor(ctx, config, test);
  const outFile = path.join(ctx.logs, `${config}-${test}.out`);
  return new Promise((resolve, reject) => {
    const child = spawn(ctx.stockBash, ['--norc', '--noprofile', '-c', CLOSE_FDS, 'close-fds', ...argv], {
      cwd: path.join(ctx.work, 'tests'),
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, so a timeout ends the whole test
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    let timedOut = false;
    const budget = Math.min(ctx.opts.testTimeoutS * 1000, Math.max(0, ctx.deadline - Date.now()));
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, budget);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${config} ${test}`, { cause: err }));
    });
    child.on('close', () => {
      clearTimeout(timer);
      const output = normalize(Buffer.concat(chunks).toString('utf8'));
      writeFileSync(outFile, output);
      const status = timedOut ? 'timeout' : output.length === 0 ? 'pass' : 'fail';
      resolve({ status, output, decisions: countDecisions(path.join(ctx.logs, `${config}-${test}.audit.jsonl`)) });
    });
  });
}

/** Line diff of two outputs, enough to read what changed (diff(1) when present). */
function showDiff(ctx: Ctx, a: string, b: string, labelA: string, labelB: string): string {
  const fa = path.join(ctx.logs, 'diff-a');
  const fb = path.join(ctx.logs, 'diff-b');
  writeFileSync(fa, a);
  writeFileSync(fb, b);
  try {
    execFileSync('diff', ['-u', '--label', labelA, '--label', labelB, fa, fb], { encoding: 'utf8' });
    return '';
  } catch (err) {
    const out = (err as { stdout?: string }).stdout;
    return typeof out === 'string' ? out : String(err);
  }
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const stockBash = build(['--stock']);
  const patchedBash = build([]);
  // dist/ (the CLI) and the wrapper are built by the npm script (npm run test:bash-suite).
  if (!existsSync(path.join(root, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is not built: npm run build');
  const testsSrc = path.join(path.dirname(stockBash), 'src', 'tests');
  const all = readdirSync(testsSrc)
    .filter((f) => f.startsWith('run-') && !SKIPPED.has(f) && !f.endsWith('~') && !f.endsWith('.orig'))
    .sort();
  const tests = opts.only ?? all;
  for (const t of tests) if (!all.includes(t)) throw new Error(`no such test: ${t}`);

  const base = mkdtempSync(path.join(os.tmpdir(), 'codex-bash-suite-'));
  const ctx: Ctx = {
    opts,
    stockBash,
    patchedBash,
    testsSrc,
    work: path.join(base, 'w'),
    logs: path.join(base, 'logs'),
    deadline: Date.now() + opts.totalTimeoutMin * 60_000,
  };
  mkdirSync(ctx.work, { recursive: true });
  mkdirSync(ctx.logs, { recursive: true });
  process.stderr.write(`bash-suite: ${tests.length} tests x ${opts.configs.length} configurations; logs in ${ctx.logs}\n`);

  const results = new Map<string, Map<Config, Result & { same: boolean; diff: string }>>();
  const started = Date.now();
  for (const test of tests) {
    const row = new Map<Config, Result & { same: boolean; diff: string }>();
    results.set(test, row);
    const latest = new Map<Config, Result>();
    for (const config of opts.configs) {
      let r = await runOne(ctx, config, test);
      latest.set(config, r);
      const refNames = REFERENCE[config];
      if (refNames.length === 0) {
        row.set(config, { ...r, same: true, diff: '' });
        continue;
      }
      const matches = (x: Result): boolean => refNames.some((n) => latest.get(n)!.output === x.output && latest.get(n)!.status === x.status);
      // A test whose output depends on timing may differ by chance: rerun both before calling it a difference.
      const refName = refNames[0]!;
      for (let i = 0; i < opts.retries && !matches(r) && Date.now() < ctx.deadline; i++) {
        latest.set(refName, await runOne(ctx, refName, test));
        if (matches(r)) break;
        r = await runOne(ctx, config, test);
      }
      latest.set(config, r);
      const same = matches(r);
      const ref = latest.get(refName)!;
      row.set(config, { ...r, same, diff: same ? '' : showDiff(ctx, ref.output, r.output, `${refName}/${test}`, `${config}/${test}`) });
    }
    const cells = opts.configs.map((c) => {
      const r = row.get(c)!;
      return `${c}=${r.status}${r.same ? '' : INFORMATIONAL.has(c) ? '(sandbox)' : '(DIFF)'}`;
    });
    process.stderr.write(`  ${test}: ${cells.join(' ')} [${Math.round((Date.now() - started) / 1000)}s]\n`);
    if (Date.now() > ctx.deadline) {
      process.stderr.write(`bash-suite: total timeout of ${opts.totalTimeoutMin} min reached\n`);
      break;
    }
  }

  // The table.
  const width = Math.max(...[...results.keys()].map((t) => t.length), 4);
  const header = ['test'.padEnd(width), ...opts.configs.map((c) => c.padEnd(12))].join(' ');
  const refs = opts.configs.filter((c) => REFERENCE[c].length > 0).map((c) => `${c} vs ${REFERENCE[c].join(' or ')}`);
  process.stdout.write(`compared: ${refs.join(', ')}\n`);
  const lines = [header, '-'.repeat(header.length)];
  let differences = 0;
  const decided = new Map<Config, number>();
  for (const [test, row] of results) {
    for (const [c, r] of row) decided.set(c, (decided.get(c) ?? 0) + (r.decisions ?? 0));
    const cells = opts.configs.map((c) => {
      const r = row.get(c);
      if (!r) return 'not run'.padEnd(12);
      if (!r.same && !INFORMATIONAL.has(c)) differences++;
      return `${r.status}${r.same ? '' : INFORMATIONAL.has(c) ? ' sandbox' : ' DIFF'}`.padEnd(12);
    });
    lines.push([test.padEnd(width), ...cells].join(' '));
  }
  process.stdout.write(lines.join('\n') + '\n');
  for (const [test, row] of results) {
    for (const [config, r] of row) {
      if (r.same) continue;
      const what = INFORMATIONAL.has(config) ? 'the sandbox alone changes it (informational)' : `differs from ${REFERENCE[config].join(' and ')}`;
      process.stdout.write(`\n=== ${test}: ${config} ${what} ===\n${r.diff}`);
    }
  }
  const counts = [...decided].filter(([c]) => c !== 'stock' && c !== 'patched').map(([c, n]) => `${c}: ${n}`);
  if (counts.length) process.stdout.write(`\nbash-suite: execs decided (last attempt of each test): ${counts.join(', ')}\n`);
  const incomplete = results.size < tests.length;
  process.stdout.write(
    `\nbash-suite: ${results.size}/${tests.length} tests, ${differences} difference(s) against stock` +
      `${incomplete ? ', INCOMPLETE (total timeout)' : ''}, ${Math.round((Date.now() - started) / 1000)} s\n`,
  );
  if (!opts.keep && differences === 0 && !incomplete) rmSync(base, { recursive: true, force: true });
  else process.stdout.write(`bash-suite: outputs kept in ${ctx.logs}\n`);
  return differences > 0 || incomplete ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bash-suite: error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
