#!/usr/bin/env python3
"""The floor of a session listener (docs/performance.md, "A session listener
instead of a filter per tree"): bash's exec loop, with no server and no policy.

    python3 bench/floor/session_listener.py BASH [--execs 2000] [--reps 7]

BASH (the patched bash: `npm run build:bash` prints its path) runs
bench/workloads/exec-loop.sh five ways, reps interleaved in rotating order:
  stock      no EXEC_WRAPPER
  wrapper    EXEC_WRAPPER = bench/floor/exec-only.c (one extra execve: today's floor)
  notify     under bench/floor/session-listener.c: every exec a seccomp
             notification answered CONTINUE
  notify+mem the same, the path read from /proc/PID/mem first (+ ID_VALID)
  notify+vm  the same, read with process_vm_readv
Prints the median wall time of each and its ratio to stock, and the
listener's CPU per notification.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LOOP = os.path.join(os.path.dirname(HERE), "workloads", "exec-loop.sh")


def build(src, out, static):
    cc = ["musl-gcc", "-static"] if static and shutil.which("musl-gcc") else ["cc"]
    subprocess.run(cc + ["-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra", "-Werror", "-o", out, os.path.join(HERE, src)], check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bash")
    ap.add_argument("--execs", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=7)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="session-listener-")
    floor, sl = os.path.join(tmp, "exec-only"), os.path.join(tmp, "session-listener")
    build("exec-only.c", floor, True)
    build("session-listener.c", sl, False)
    loop = [a.bash, LOOP, str(a.execs)]
    variants = {
        "stock": (loop, {}),
        "wrapper": (loop, {"EXEC_WRAPPER": floor}),
        "notify": ([sl] + loop, {}),
        "notify+mem": ([sl, "--read"] + loop, {}),
        "notify+vm": ([sl, "--readv"] + loop, {}),
    }
    names = list(variants)
    walls = {n: [] for n in names}
    cpu = {n: [] for n in names}
    for rep in range(a.reps):
        for n in names[rep % len(names):] + names[: rep % len(names)]:
            argv, extra = variants[n]
            env = {k: v for k, v in os.environ.items() if k != "EXEC_WRAPPER"}
            env.update(extra)
            t0 = time.perf_counter_ns()
            p = subprocess.run(argv, env=env, stderr=subprocess.PIPE, text=True)
            walls[n].append((time.perf_counter_ns() - t0) / 1e6)
            if p.returncode != 0:
                sys.exit(f"{n}: exit {p.returncode}: {p.stderr}")
            m = re.search(r"(\d+) notifications, (\d+) us CPU", p.stderr)
            if m:
                cpu[n].append(int(m.group(2)) / int(m.group(1)))
    stock = statistics.median(walls["stock"])
    for n in names:
        w = statistics.median(walls[n])
        extra = f"   listener {statistics.median(cpu[n]):.1f} us CPU/notification" if cpu[n] else ""
        print(f"{n:<11} {w:8.0f} ms  {w / stock:5.3f}x{extra}")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
