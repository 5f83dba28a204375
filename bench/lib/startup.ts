/**
 * Start-up figures: wall time and peak RSS of whole CLI processes
 * (`codex-escalate --version`, `run --sandbox none -- true`, and `run` over
 * an exec loop) against bare `node -e 0`. An agent that wraps every tool
 * call pays this per call.
 *
 * Each sample is one process started by a small python3 parent (python3 is
 * a build requirement already): it times the child and reads its peak RSS
 * from getrusage(RUSAGE_CHILDREN), the largest resident set of any process
 * it waited for (the CLI itself; its shell and the shell's children are far
 * smaller). The parent is started before the clock starts, so its own start
 * is not counted.
 */
import { execFileSync } from 'node:child_process';
import { median, round } from './stats.js';

const SAMPLER = `
import json, resource, subprocess, sys, time
t = time.perf_counter()
r = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.perf_counter() - t
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": r.returncode, "wallMs": wall * 1000, "maxRssKiB": u.ru_maxrss, "cpuMs": (u.ru_utime + u.ru_stime) * 1000, "stderr": r.stderr.decode("utf-8", "replace")[-400:]}))
`;

export interface StartupSample {
  readonly code: number;
  readonly wallMs: number;
  readonly maxRssKiB: number;
  readonly cpuMs: number;
  readonly stderr: string;
}

export interface StartupFigure {
  readonly label: string;
  readonly argv: readonly string[];
  readonly reps: number;
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly peakRssMiB: number;
  readonly wallMsAll: number[];
  readonly peakRssMiBAll: number[];
}

export function sampleProcess(argv: readonly string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): StartupSample {
  const out = execFileSync('python3', ['-c', SAMPLER, ...argv], { cwd: opts.cwd, env: opts.env, encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out) as StartupSample;
}

/** Median of `reps` runs of one command line; a run that fails is an error (a figure of a failing command means nothing). */
export function startupFigure(label: string, argv: readonly string[], reps: number, opts: { cwd: string; env: NodeJS.ProcessEnv }): StartupFigure {
  const samples: StartupSample[] = [];
  for (let i = 0; i < reps; i++) {
    const s = sampleProcess(argv, opts);
    if (s.code !== 0) throw new Error(`${label}: exit status ${s.code}: ${s.stderr.trim()}`);
    samples.push(s);
  }
  const mib = (k: number) => round(k / 1024, 1);
  return {
    label,
    argv: [...argv],
    reps,
    wallMs: round(median(samples.map((s) => s.wallMs)), 1),
    cpuMs: round(median(samples.map((s) => s.cpuMs)), 1),
    peakRssMiB: mib(median(samples.map((s) => s.maxRssKiB))),
    wallMsAll: samples.map((s) => round(s.wallMs, 1)),
    peakRssMiBAll: samples.map((s) => mib(s.maxRssKiB)),
  };
}

/** A loop of `n` execs of /bin/true with no exec besides them (`[` and the arithmetic are builtins). */
export function execLoopScript(n: number): string {
  return `i=0; while [ "$i" -lt ${n} ]; do /bin/true; i=$((i + 1)); done`;
}
