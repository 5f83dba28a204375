#!/usr/bin/env python3
"""Start-up cost of codex-execve-wrapper builds (e.g. static vs dynamic).

For each binary: `perf stat -r N` wall time and task-clock of `--version`
and of a full Deny round trip against an in-process peer (the peer's cost is
the same for every binary), plus callgrind instruction counts of the Deny
path (wrapper only, dynamic loader included).

Usage: bench.py WRAPPER... (env RUNS, default 1000)
"""
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading

RUNS = int(os.environ.get('RUNS', '1000'))
DENY = json.dumps({'action': {'Deny': {'reason': None}}}).encode()


def serve(server):
    """Answers every request with Deny until the socket is closed."""
    while True:
        try:
            _, fds, _, _ = socket.recv_fds(server, 1, 1)
        except OSError:
            return
        if not fds:
            return
        with socket.socket(fileno=fds[0]) as s:
            try:
                hdr = s.recv(4, socket.MSG_WAITALL)
                (n,) = struct.unpack('<I', hdr)
                s.recv(n, socket.MSG_WAITALL)
                s.sendall(struct.pack('<I', len(DENY)) + DENY)
            except (OSError, struct.error):
                pass


def perf(argv, env=None, pass_fds=()):
    p = subprocess.run(['perf', 'stat', '-r', str(RUNS)] + argv, env=env, pass_fds=pass_fds,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    clock = re.search(r'([\d.]+) msec task-clock', p.stderr)
    elapsed = re.search(r'([\d.]+) \+- ([\d.]+) seconds time elapsed', p.stderr)
    faults = re.search(r'([\d,]+) +page-faults', p.stderr)
    return float(clock.group(1)) * 1000, float(elapsed.group(1)) * 1e6, int(faults.group(1).replace(',', ''))


def callgrind(argv, env, pass_fds):
    out = '/tmp/bench-callgrind.out.%d' % os.getpid()
    p = subprocess.run(['valgrind', '--tool=callgrind', '--callgrind-out-file=' + out] + argv, env=env,
                       pass_fds=pass_fds, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    os.unlink(out)
    m = re.search(r'Collected : (\d+)', p.stderr)
    return int(m.group(1)) if m else None


def main():
    binaries = sys.argv[1:]
    server, client = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    t = threading.Thread(target=serve, args=(server,), daemon=True)
    t.start()
    env = dict(os.environ, CODEX_ESCALATE_SOCKET=str(client.fileno()))
    fds = [client.fileno()]
    print('%-28s %9s %9s %9s %9s %7s %12s' % ('binary (%d runs each)' % RUNS, 'ver cpu', 'ver wall',
                                              'deny cpu', 'deny wall', 'faults', 'deny instr'))
    for b in binaries:
        vc, vw, _ = perf([b, '--version'])
        dc, dw, df = perf([b, '/bin/true', 'true'], env=env, pass_fds=fds)
        instr = callgrind([b, '/bin/true', 'true'], env, fds) if shutil.which('valgrind') else None
        print('%-28s %7.0fus %7.0fus %7.0fus %7.0fus %7d %12s' % (os.path.basename(b), vc, vw, dc, dw, df,
                                                                  '{:,}'.format(instr) if instr else '-'))
    bc, bw, bf = perf(['/bin/true'])
    print('%-28s %7.0fus %7.0fus %27d   (reference: a plain dynamic exec)' % ('/bin/true', bc, bw, bf))
    server.shutdown(socket.SHUT_RDWR)
    server.close()


if __name__ == '__main__':
    main()
