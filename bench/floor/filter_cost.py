#!/usr/bin/env python3
"""What the direct-exec filter costs the kernel and the wrapper, with no server.

    python3 bench/floor/filter_cost.py [--execs 2000] [--reps 5] [--modes plain,filter,...]

Stock bash runs `filter-exec MODE /bin/true` (bench/floor/filter-exec.c, the
wrapper's own filter from wrapper/exec-filter.h) N times; reps of every mode
are interleaved in rotating order. Per exec: wall time, and CPU (user +
system) of the whole tree from wait4's rusage, which a loaded machine
distorts less. Modes: plain, filter (listener closed at once), nolistener,
specallow, hold (listener kept by a process that polls it and closes it on
hang-up, as the server's hub does), hold-lazy (kept, never polled, closed in
batches: hang-ups wake nobody).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def build(out, cflags):
    src = os.path.join(HERE, "filter-exec.c")
    cc = ["musl-gcc", "-static"] if shutil.which("musl-gcc") else ["cc"]
    subprocess.run(cc + ["-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra", "-Werror"] + cflags + ["-o", out, src], check=True)


def one(fe, mode, execs):
    inner_mode = "hold" if mode.startswith("hold") else mode
    loop = f'for ((i=0;i<{execs};i++)); do "$FE" {inner_mode} /bin/true || exit 1; done'
    argv = ["/bin/bash", "-c", loop]
    if mode == "hold":
        argv = [fe, "--holder"] + argv
    elif mode == "hold-lazy":
        argv = [fe, "--holder", "--lazy"] + argv
    env = dict(os.environ, FE=fe)
    t0 = time.perf_counter_ns()
    p = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = (time.perf_counter_ns() - t0) / 1e3
    err = p.stderr.read().decode()
    p.stderr.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{mode}: exit {p.returncode}: {err}")
    cpu = (ru.ru_utime + ru.ru_stime) * 1e6
    return wall / execs, cpu / execs, ru.ru_stime * 1e6 / execs, err.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--execs", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--modes", default="plain,filter,nolistener,specallow,hold,hold-lazy")
    # e.g. --cflags="-include old/exec-filter.h": measure another filter with the same driver.
    ap.add_argument("--cflags", default="")
    a = ap.parse_args()
    modes = a.modes.split(",")
    tmp = tempfile.mkdtemp(prefix="filter-cost-")
    fe = os.path.join(tmp, "filter-exec")
    build(fe, a.cflags.split())
    res = {m: [] for m in modes}
    notes = {}
    for r in range(a.reps):
        for k in range(len(modes)):
            m = modes[(k + r) % len(modes)]
            w, c, s, note = one(fe, m, a.execs)
            res[m].append((w, c, s))
            if note:
                notes[m] = note
    base = statistics.median(x[0] for x in res[modes[0]])
    basec = statistics.median(x[1] for x in res[modes[0]])
    print(f"{'mode':<11} {'wall us/exec':>13} {'Δ wall':>8} {'cpu us/exec':>12} {'Δ cpu':>7} {'sys us':>7}")
    for m in modes:
        w = statistics.median(x[0] for x in res[m])
        c = statistics.median(x[1] for x in res[m])
        s = statistics.median(x[2] for x in res[m])
        print(f"{m:<11} {w:13.1f} {w - base:+8.1f} {c:12.1f} {c - basec:+7.1f} {s:7.1f}  {notes.get(m, '')}")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
