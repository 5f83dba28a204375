#!/usr/bin/env python3
"""Protocol tests for codex-execve-wrapper against a scripted peer.

The real server is Node; this plays it with real sockets (Python has
SCM_RIGHTS via socket.send_fds/recv_fds) so every wrapper path can be driven,
including the malformed and hostile ones a well-behaved server never sends.

Usage: [WRAPPER=path/to/codex-execve-wrapper] test_wrapper.py [unittest args]
Env:   WRAPPER_PREFIX="valgrind -q --error-exitcode=99 ..." runs the wrapper
       under a tool; exit 99 then fails the test.
"""
import ctypes
import fcntl
import json
import os
import select
import signal
import shlex
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

O_PATH = getattr(os, "O_PATH", 0o10000000)

HERE = os.path.dirname(os.path.abspath(__file__))
WRAPPER = os.path.abspath(os.environ.get('WRAPPER') or os.path.join(HERE, '..', 'codex-execve-wrapper'))
PREFIX = shlex.split(os.environ.get('WRAPPER_PREFIX', ''))
TIMEOUT = 60 if PREFIX else 10
P = 'codex-execve-wrapper: '


def frame(obj):
    body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return struct.pack('<I', len(body)) + body


def recv_exact(sock, n):
    buf = b''
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError('peer closed after %d of %d bytes' % (len(buf), n))
        buf += chunk
    return buf


def read_frame(sock, with_fds=False):
    """One frame; fds attached to its first byte are returned too."""
    msg, fds, _, _ = socket.recv_fds(sock, 4, 16)
    if not msg:
        raise EOFError('no frame')
    hdr = msg + recv_exact(sock, 4 - len(msg))
    (n,) = struct.unpack('<I', hdr)
    body = recv_exact(sock, n)
    return (body, fds) if with_fds else body


class Peer:
    """One scripted server session: accepts the handshake, records the raw
    request, then lets `script(stream, request_bytes)` answer."""

    def __init__(self, script, close_before=False, prefill=False):
        self.server, self.client = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.prefill = prefill
        if prefill:
            # The upstream wrapper leaves the shared socket non-blocking;
            # with the server's queue full, a send then says EAGAIN.
            self.client.setblocking(False)
            try:
                while True:
                    self.client.send(b'junk')
            except BlockingIOError:
                pass
        self.script = script
        self.request_raw = None
        self.request_fd_target = None  # what the fd attached to the request names (readlink), if any
        self.request_nfds = 0
        self.request_fd_targets = []  # readlink of every fd attached to the request, in order
        self.handshake = None
        self.ready_at_handshake = None
        self.error = None
        self.done = threading.Event()
        self.request_fd = str(self.client.fileno())
        if close_before:
            self.server.close()
            self.thread = None
            self.done.set()
        else:
            self.thread = threading.Thread(target=self._serve, daemon=True)
            self.thread.start()

    @property
    def request(self):
        return json.loads(self.request_raw) if self.request_raw is not None else None

    def _serve(self):
        try:
            self.server.settimeout(TIMEOUT)
            if self.prefill:
                time.sleep(0.3)  # the wrapper is blocked on the full queue by now
            msg, fds, flags, _ = socket.recv_fds(self.server, 16, 16)
            while self.prefill and msg == b'junk' and not fds:
                msg, fds, flags, _ = socket.recv_fds(self.server, 16, 16)
            self.handshake = (msg, len(fds), flags)
            self.server.close()
            if len(fds) != 1:
                for fd in fds:
                    os.close(fd)
                return
            stream = socket.socket(fileno=fds[0])
            # How much of the request was already in the stream when its
            # end arrived (our wrapper writes it before the handshake).
            try:
                self.ready_at_handshake = len(stream.recv(1 << 24, socket.MSG_PEEK | socket.MSG_DONTWAIT))
            except BlockingIOError:
                self.ready_at_handshake = 0
            stream.settimeout(TIMEOUT)
            with stream:
                try:
                    self.request_raw, rfds = read_frame(stream, with_fds=True)
                except EOFError:
                    return
                self.request_nfds = len(rfds)
                for fd in rfds:
                    self.request_fd_target = os.readlink('/proc/self/fd/%d' % fd)
                    self.request_fd_targets.append(self.request_fd_target)
                    self.request_fd_flags = fcntl.fcntl(fd, fcntl.F_GETFL)
                    os.close(fd)
                self.script(stream, self.request_raw)
        except Exception as e:  # surfaced by the test
            self.error = e
        finally:
            self.done.set()


def run_wrapper(args, peer=None, env=None, sock_value=None, stdin=None, cwd=None,
                pass_fds=(), raw_env=None):
    """Runs the wrapper with argv args (bytes or str) and returns (rc, out, err)."""
    if env is None:
        env = dict(os.environ)
    env = dict(env)
    fds = list(pass_fds)
    if peer is not None:
        fd = peer.client.fileno()
        fds.append(fd)
        env['CODEX_ESCALATE_SOCKET'] = str(fd) if sock_value is None else sock_value
    elif sock_value is not None:
        env['CODEX_ESCALATE_SOCKET'] = sock_value
    argv = PREFIX + [WRAPPER] + list(args)
    preexec = None
    if raw_env is not None:
        # Python cannot express duplicate or malformed environ entries;
        # execve them directly from the child instead.
        libc = ctypes.CDLL(None, use_errno=True)
        def enc(x):
            return x if isinstance(x, bytes) else os.fsencode(x)
        c_argv = (ctypes.c_char_p * (len(argv) + 1))(*[enc(a) for a in argv], None)
        entries = list(raw_env)
        if peer is not None:
            entries.append(b'CODEX_ESCALATE_SOCKET=%d' % peer.client.fileno())
        c_env = (ctypes.c_char_p * (len(entries) + 1))(*entries, None)
        target = enc(argv[0])

        def preexec():
            libc.execve(target, c_argv, c_env)
            os._exit(100 + ctypes.get_errno())
    p = subprocess.run(argv, env=env, pass_fds=fds, input=stdin, capture_output=True,
                       timeout=TIMEOUT, cwd=cwd, preexec_fn=preexec)
    if peer is not None:
        peer.client.close()
        peer.done.wait(TIMEOUT)
        if peer.error:
            raise peer.error
    if p.returncode == 99 and PREFIX:
        raise AssertionError('tool reported errors:\n' + p.stderr.decode(errors='replace'))
    return p.returncode, p.stdout, p.stderr


def escalate_then(result, seen=None, use=None):
    """Answers Escalate, takes the fds frame (its message and fd count into
    seen, its fds by wrapper fd number to use), then sends result."""
    def script(stream, _req):
        stream.sendall(frame(ESCALATE))
        body, fds = read_frame(stream, with_fds=True)
        if seen is not None:
            seen['msg'] = json.loads(body)
            seen['nfds'] = len(fds)
        if use is not None:
            use(dict(zip(json.loads(body)['fds'], fds)))
        for fd in fds:
            os.close(fd)
        stream.sendall(result if isinstance(result, bytes) else frame(result))
    return script


def respond(*messages):
    def script(stream, _req):
        for m in messages:
            stream.sendall(m if isinstance(m, bytes) else frame(m))
    return script


RUN = {'action': 'Run'}
ESCALATE = {'action': 'Escalate'}


def deny(reason):
    return {'action': {'Deny': {'reason': reason}}}


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='wrapper-test-')

    def path(self, name):
        return os.path.join(self.tmp, name)

    def write(self, name, data, mode=0o755):
        p = self.path(name)
        with open(p, 'wb') as f:
            f.write(data)
        os.chmod(p, mode)
        return p

    def assertRefused(self, result, message, status=126):
        rc, out, err = result
        self.assertEqual(err.decode(errors='replace'), message + '\n')
        self.assertEqual(rc, status)
        self.assertEqual(out, b'')


class TestRun(Base):
    def test_run_execs_in_place_and_request_is_exact(self):
        peer = Peer(respond(RUN))
        rc, out, err = run_wrapper(['/bin/echo', 'echo', 'hello', 'world'], peer, cwd=self.tmp)
        self.assertEqual((rc, out, err), (0, b'hello world\n', b''))
        self.assertEqual(peer.handshake[0], b'\x00')
        self.assertEqual(peer.handshake[1], 1)
        req = peer.request
        self.assertEqual(req['file'], '/bin/echo')
        self.assertEqual(req['argv'], ['echo', 'hello', 'world'])
        self.assertEqual(req['workdir'], os.path.realpath(self.tmp))
        self.assertEqual(req['ext'], 3)
        self.assertEqual(set(req), {'file', 'argv', 'workdir', 'env', 'ext'})
        # [ext 2] the program, opened O_PATH by the wrapper in its own view.
        self.assertEqual(peer.request_nfds, 1)
        self.assertEqual(peer.request_fd_target, os.path.realpath('/bin/echo'))
        self.assertTrue(peer.request_fd_flags & O_PATH)

    def test_request_is_readable_when_the_handshake_arrives(self):
        # One wake-up per decision: the whole request is in the stream before its other end is sent, so the
        # server reads it at once instead of polling again. The peer reads the stream as upstream does.
        peer = Peer(respond(RUN))
        rc, out, err = run_wrapper(['/bin/echo', 'echo', 'early'], peer, cwd=self.tmp)
        self.assertEqual((rc, out, err), (0, b'early\n', b''))
        self.assertEqual(peer.ready_at_handshake, 4 + len(peer.request_raw))
        self.assertEqual(peer.request_nfds, 1)

    def test_request_larger_than_the_socket_buffer_is_sent_whole(self):
        # What does not fit before the handshake follows it: the same byte stream, fd on the first byte.
        # 1.2 MiB of environment (one string may not exceed 128 KiB), beyond the ~208 KiB a stream buffers.
        big = {'BIG%d' % i: chr(ord('a') + i) * 100_000 for i in range(12)}
        env = dict(os.environ, **big)
        peer = Peer(respond(RUN))
        rc, out, err = run_wrapper(['/bin/echo', 'echo', 'big'], peer, env=env, cwd=self.tmp)
        self.assertEqual((rc, out, err), (0, b'big\n', b''))
        self.assertEqual({k: v for k, v in peer.request['env'].items() if k in big}, big)
        self.assertGreater(peer.ready_at_handshake, 0)
        self.assertLess(peer.ready_at_handshake, 4 + len(peer.request_raw))
        self.assertEqual(peer.request_nfds, 1)
        self.assertEqual(peer.request_fd_target, os.path.realpath('/bin/echo'))

    def test_program_fd_is_the_wrappers_own_view(self):
        # /proc/self/fd/N and /dev/fd/N name the wrapper's fds: the fd sent is that file, not the server's.
        r = os.open('/bin/echo', os.O_RDONLY)
        try:
            peer = Peer(respond(deny('no')))
            run_wrapper(['/proc/self/fd/%d' % r, 'x'], peer, pass_fds=[r])
            self.assertEqual(peer.request_fd_target, os.path.realpath('/bin/echo'))
            peer = Peer(respond(deny('no')))
            run_wrapper(['/dev/fd/%d' % r, 'x'], peer, pass_fds=[r])
            self.assertEqual(peer.request_fd_target, os.path.realpath('/bin/echo'))
        finally:
            os.close(r)

    def test_missing_program_sends_no_fd(self):
        peer = Peer(respond(deny('no')))
        run_wrapper([self.path('nope'), 'nope'], peer)
        self.assertEqual(peer.request_nfds, 0)
        self.assertEqual(peer.request['ext'], 3)

    def test_program_fd_not_inherited_by_the_command(self):
        peer = Peer(respond(RUN))
        rc, out, err = run_wrapper(['/bin/sh', 'sh', '-c', 'ls -l /proc/$$/fd | grep -c /bin/sh || true'], peer)
        self.assertEqual((rc, out.strip()), (0, b'0'), err)

    def test_env_strips_protocol_vars_but_command_keeps_them(self):
        env = dict(os.environ, EXEC_WRAPPER='/x/wrapper', BASH_EXEC_WRAPPER='/x/w2', KEEP_ME='a=b=c', EMPTY='')
        peer = Peer(respond(RUN))
        rc, out, err = run_wrapper(['/usr/bin/env', 'env'], peer, env=env)
        self.assertEqual(rc, 0, err)
        sent = peer.request['env']
        for name in ('CODEX_ESCALATE_SOCKET', 'EXEC_WRAPPER', 'BASH_EXEC_WRAPPER'):
            self.assertNotIn(name, sent)
        self.assertEqual(sent['KEEP_ME'], 'a=b=c')
        self.assertEqual(sent['EMPTY'], '')
        self.assertEqual(sent['PATH'], os.environ['PATH'])
        lines = out.decode().splitlines()
        # A foreign EXEC_WRAPPER is replaced by ours (see TestNestedShells).
        self.assertIn('EXEC_WRAPPER=' + WRAPPER, lines)
        self.assertIn('BASH_EXEC_WRAPPER=/x/w2', lines)
        self.assertIn('CODEX_ESCALATE_SOCKET=' + peer.request_fd, lines)

    def test_argv0_differs_from_path(self):
        peer = Peer(respond(RUN))
        rc, out, err = run_wrapper(['/bin/sh', 'custom-name', '-c', 'tr "\\000" " " < /proc/$$/cmdline'], peer)
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.startswith(b'custom-name -c '), out)
        self.assertEqual(peer.request['argv'][0], 'custom-name')

    def test_exit_status_and_stdin_pass_through(self):
        peer = Peer(respond(RUN))
        rc, out, _ = run_wrapper(['/bin/sh', 'sh', '-c', 'cat; exit 42'], peer, stdin=b'piped')
        self.assertEqual((rc, out), (42, b'piped'))

    def test_only_the_escalate_socket_is_inherited(self):
        # A reply carrying a stray fd must not leak it into the command, nor
        # may our private stream end survive the exec.
        def script(stream, _req):
            r, w = os.pipe()
            socket.send_fds(stream, [frame(RUN)], [r])
            os.close(r)
            os.close(w)
        peer = Peer(script)
        rc, out, err = run_wrapper(['/bin/sh', 'sh', '-c', 'ls /proc/$$/fd'], peer)
        self.assertEqual(rc, 0, err)
        fds = sorted(int(x) for x in out.split())
        self.assertEqual(fds, [0, 1, 2, int(peer.request_fd)])

    def test_relative_path_and_cwd(self):
        self.write('tool', b'#!/bin/sh\necho "ran $0 in $(pwd)"\n')
        peer = Peer(respond(RUN))
        rc, out, err = run_wrapper(['./tool', './tool'], peer, cwd=self.tmp)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.decode(), 'ran ./tool in %s\n' % os.path.realpath(self.tmp))
        self.assertEqual(peer.request['file'], './tool')

    def test_unknown_keys_and_whitespace_accepted(self):
        body = b' \r\n\t{ "x" : [1, -2.5e+3, {"a": null, "b": [true, false]}, "s\\u00e9"] ,\n "action" : "Run" , "y":{} } \n'
        peer = Peer(respond(struct.pack('<I', len(body)) + body))
        rc, out, _ = run_wrapper(['/bin/echo', 'echo', 'ok'], peer)
        self.assertEqual((rc, out), (0, b'ok\n'))

    def test_escaped_action_key_and_value(self):
        body = b'{"\\u0061ction":"R\\u0075n"}'
        peer = Peer(respond(struct.pack('<I', len(body)) + body))
        rc, out, _ = run_wrapper(['/bin/echo', 'echo', 'ok'], peer)
        self.assertEqual((rc, out), (0, b'ok\n'))

    def test_nonblocking_socket_with_full_queue(self):
        peer = Peer(respond(RUN), prefill=True)
        rc, out, err = run_wrapper(['/bin/echo', 'echo', 'waited'], peer)
        self.assertEqual((rc, out, err), (0, b'waited\n', b''))

    def test_deleted_working_directory(self):
        d = self.path('gone')
        os.mkdir(d)
        server, client = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        with server, client:
            env = dict(os.environ, CODEX_ESCALATE_SOCKET=str(client.fileno()))
            p = subprocess.run(PREFIX + [WRAPPER, '/bin/echo', 'echo', 'hi'], env=env, pass_fds=[client.fileno()],
                               cwd=d, preexec_fn=lambda: os.rmdir(d), capture_output=True, timeout=TIMEOUT)
            self.assertEqual(p.returncode, 126)
            self.assertEqual(p.stdout, b'')
            self.assertEqual(p.stderr, (P + '/bin/echo: cannot determine the working directory: '
                                        'No such file or directory\n').encode())
            server.setblocking(False)
            with self.assertRaises(BlockingIOError):  # nothing was sent to the server
                server.recv(16)

    def test_large_argv(self):
        args = ['a' * 1000 + str(i) for i in range(1000)]
        peer = Peer(respond(RUN))
        rc, out, err = run_wrapper(['/bin/echo', 'echo'] + args, peer)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.decode(), ' '.join(args) + '\n')
        self.assertEqual(peer.request['argv'][1:], args)


class TestEnvEdgeCases(Base):
    def test_duplicates_keep_first_and_malformed_entries_skipped(self):
        peer = Peer(respond(RUN))
        raw = [b'PATH=/usr/bin:/bin', b'DUP=first', b'NOEQUALS', b'=emptyname', b'DUP=second',
               b'EXEC_WRAPPER=/w', b'X=1']
        rc, out, err = run_wrapper(['/bin/true', 'true'], peer, raw_env=raw)
        self.assertEqual(rc, 0, err)
        self.assertEqual(peer.request['env'], {'PATH': '/usr/bin:/bin', 'DUP': 'first', 'X': '1'})
        # The raw JSON must not repeat a key either.
        self.assertEqual(peer.request_raw.count(b'"DUP"'), 1)

    def test_many_variables(self):
        raw = [b'V%d=%d' % (i % 3000, i) for i in range(5000)]
        peer = Peer(respond(RUN))
        rc, _, err = run_wrapper(['/bin/true', 'true'], peer, raw_env=raw)
        self.assertEqual(rc, 0, err)
        env = peer.request['env']
        self.assertEqual(len(env), 3000)
        self.assertEqual(env['V0'], '0')
        self.assertEqual(env['V2999'], '2999')


class TestPipelineHint(Base):
    """[patched bash] CODEX_ESCALATE_PIPELINE: the shell's copy (first) becomes the request's
    "pipeline"; no copy reaches the request's env or the program."""

    def test_first_copy_is_sent_and_no_copy_reaches_the_program(self):
        raw = [b'CODEX_ESCALATE_PIPELINE=echo hi | tr a-z A-Z', b'PATH=' + os.environb[b'PATH'],
               b'CODEX_ESCALATE_PIPELINE=curl x | sh', b'KEEP=1']
        peer = Peer(respond(RUN))
        rc, out, err = run_wrapper(['/usr/bin/env', 'env'], peer, raw_env=raw)
        self.assertEqual(rc, 0, err)
        self.assertEqual(peer.request['pipeline'], 'echo hi | tr a-z A-Z')
        self.assertEqual(peer.request['ext'], 3)
        self.assertNotIn('CODEX_ESCALATE_PIPELINE', peer.request['env'])
        self.assertEqual(peer.request['env']['KEEP'], '1')
        self.assertNotIn(b'CODEX_ESCALATE_PIPELINE', out)
        self.assertIn(b'KEEP=1', out.splitlines())

    def test_empty_first_copy_sends_none_even_with_a_forged_one_behind(self):
        raw = [b'CODEX_ESCALATE_PIPELINE=', b'PATH=' + os.environb[b'PATH'], b'CODEX_ESCALATE_PIPELINE=curl x | sh']
        peer = Peer(respond(RUN))
        rc, out, err = run_wrapper(['/usr/bin/env', 'env'], peer, raw_env=raw)
        self.assertEqual(rc, 0, err)
        self.assertNotIn('pipeline', peer.request)
        self.assertNotIn(b'"pipeline"', peer.request_raw)
        self.assertNotIn(b'CODEX_ESCALATE_PIPELINE', out)

    def test_non_utf8_and_quotes_are_escaped_like_every_string(self):
        text = b'printf "a\\b" | caf\xc3\xa9 \xff'
        peer = Peer(respond(deny('no')))
        run_wrapper(['/bin/true', 'true'], peer, raw_env=[b'CODEX_ESCALATE_PIPELINE=' + text])
        req = json.loads(peer.request_raw.decode('utf-8'))
        self.assertEqual(req['pipeline'].encode('utf-8', 'surrogateescape'), text)


class TestBytes(Base):
    CASES = [
        b'plain', b'caf\xc3\xa9', b'\xff\xfe', b'\xc0\xaf', b'\xed\xa0\x80', b'\xe2\x82',
        b'\xe2\x82A', b'\xf4\x90\x80\x80', b'\xf0\x9f\x98\x80', b'\xef\xbf\xbf', b'\x80',
        b'\xf0\x8f\xbf\xbf', b'quote"back\\slash', b'ctl\x01\x1f\x7f\ttab\nnl', b'\xed\x9f\xbf',
    ]

    def test_non_utf8_argv_and_workdir_round_trip(self):
        d = os.path.join(os.fsencode(self.tmp), b'dir\xff\xc3')
        os.mkdir(d)
        peer = Peer(respond(RUN))
        rc, out, err = run_wrapper([b'/bin/echo', b'echo'] + self.CASES, peer, cwd=d)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b' '.join(self.CASES) + b'\n')  # the command got the exact bytes
        raw = peer.request_raw
        raw.decode('utf-8')  # invalid bytes never reach the wire raw
        req = json.loads(raw)  # strict JSON
        back = [a.encode('utf-8', 'surrogateescape') for a in req['argv'][1:]]
        self.assertEqual(back, self.CASES)
        self.assertEqual(req['workdir'].encode('utf-8', 'surrogateescape'), d)

    def test_non_utf8_env_round_trip(self):
        env = dict(os.environb)
        env[b'BYTES_\xff'] = b'val\xfe\xed\xa0\x80'
        env[b'CTL'] = b'a\x01\x1fb"\\'
        peer = Peer(respond(RUN))
        rc, out, err = run_wrapper([b'/usr/bin/env', b'env'], peer, env=env)
        self.assertEqual(rc, 0, err)
        self.assertIn(b'BYTES_\xff=val\xfe\xed\xa0\x80\n', out)  # untouched for the command
        req = json.loads(peer.request_raw.decode('utf-8'))
        benv = {k.encode('utf-8', 'surrogateescape'): v.encode('utf-8', 'surrogateescape')
                for k, v in req['env'].items()}
        self.assertEqual(benv[b'BYTES_\xff'], b'val\xfe\xed\xa0\x80')
        self.assertEqual(benv[b'CTL'], b'a\x01\x1fb"\\')

    def test_valid_utf8_is_not_escaped(self):
        peer = Peer(respond(RUN))
        rc, _, _ = run_wrapper([b'/bin/true', b'true', b'caf\xc3\xa9 \xf0\x9f\x98\x80'], peer)
        self.assertEqual(rc, 0)
        self.assertIn(b'caf\xc3\xa9 \xf0\x9f\x98\x80', peer.request_raw)
        self.assertIn(b'"true"', peer.request_raw)


class TestDeny(Base):
    def test_reason_with_quotes_unicode_and_surrogate_pairs(self):
        marker = self.path('must-not-exist')
        peer = Peer(respond(deny('no "push" to caf\u00e9 \U0001F600 \\ end')))
        r = run_wrapper(['/usr/bin/touch', 'touch', marker], peer)
        self.assertRefused(r, P + '/usr/bin/touch: denied: no "push" to caf\u00e9 \U0001F600 \\ end')
        self.assertFalse(os.path.exists(marker))

    def test_reason_escapes_decoded_controls_neutralised(self):
        body = b'{"action":{"Deny":{"reason":"a\\nb\\u0000c\\u001b[31m \\ud83d\\ude00 \\udcff lone\\ud800"}}}'
        peer = Peer(respond(struct.pack('<I', len(body)) + body))
        rc, out, err = run_wrapper(['/bin/true', 'true'], peer)
        self.assertEqual(rc, 126)
        self.assertEqual(err, (P + '/bin/true: denied: a\n  b?c?[31m \U0001F600 ').encode() + b'\xff lone\xef\xbf\xbd\n')

    def test_multi_line_reason_one_indented_line_each(self):
        # Hooks write reasons over several lines (CRLF too); each stays its own line.
        peer = Peer(respond(deny('blocked by policy:\r\n- no rm -rf\n- ask security\n\n')))
        self.assertRefused(run_wrapper(['/bin/true', 'true'], peer),
                           P + '/bin/true: denied: blocked by policy:\n  - no rm -rf\n  - ask security')

    def test_reason_of_only_newlines_reads_as_policy(self):
        peer = Peer(respond(deny('\r\n\n')))
        self.assertRefused(run_wrapper(['/bin/true', 'true'], peer), P + '/bin/true: denied by policy')

    def test_empty_reason_reads_as_policy(self):
        peer = Peer(respond(deny('')))
        self.assertRefused(run_wrapper(['/bin/true', 'true'], peer), P + '/bin/true: denied by policy')

    def test_null_reason(self):
        marker = self.path('must-not-exist')
        peer = Peer(respond(deny(None)))
        self.assertRefused(run_wrapper(['/usr/bin/touch', 'touch', marker], peer),
                           P + '/usr/bin/touch: denied by policy')
        self.assertFalse(os.path.exists(marker))


class TestEscalate(Base):
    def test_fds_forwarded_and_exit_code_returned(self):
        seen = {}

        def use(files):
            data = os.read(files[0], 100)
            os.write(files[1], b'escalated saw: ' + data)
            os.write(files[2], b'to stderr\n')
        peer = Peer(escalate_then({'exit_code': 7}, seen, use))
        rc, out, err = run_wrapper(['/bin/false', 'false'], peer, stdin=b'input')
        self.assertEqual(seen['msg'], {'fds': [0, 1, 2]})
        self.assertEqual(seen['nfds'], 3)
        self.assertEqual((rc, out, err), (7, b'escalated saw: input', b'to stderr\n'))

    def test_closed_stdin_is_skipped(self):
        seen = {}
        peer = Peer(escalate_then({'exit_code': 0}, seen))
        # exec 0<&- before the wrapper: our private socket lands on fd 0 and
        # must not be mistaken for stdin.
        fd = peer.client.fileno()
        env = dict(os.environ, CODEX_ESCALATE_SOCKET=str(fd))
        argv = PREFIX + [WRAPPER, '/bin/true', 'true']
        p = subprocess.run(['/bin/sh', '-c', 'exec 0<&- "$@"', 'sh'] + argv, env=env, pass_fds=[fd],
                           capture_output=True, timeout=TIMEOUT)
        peer.client.close()
        peer.done.wait(TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(seen['msg'], {'fds': [1, 2]})
        self.assertEqual(seen['nfds'], 2)

    def test_exit_code_range(self):
        for code, expect in [(0, 0), (255, 255), (128 + 9, 137)]:
            peer = Peer(escalate_then({'exit_code': code}))
            rc, _, err = run_wrapper(['/bin/true', 'true'], peer)
            self.assertEqual(rc, expect, err)
        for code, text in [(256, '256'), (-1, '-1'), (10**30, '(out of range)'), (-10**30, '(out of range)'), (2**31, '2147483648')]:
            peer = Peer(escalate_then({'exit_code': code}))
            rc, out, err = run_wrapper(['/bin/true', 'true'], peer)
            self.assertEqual(rc, 126)
            self.assertTrue(err.decode().startswith(P + '/bin/true: escalation server reported an invalid exit code ' + text), err)

    def test_bad_results(self):
        for body in [b'{"exit_code":1.0}', b'{"exit_code":"1"}', b'{}', b'{"exit_code":1,"exit_code":2}',
                     b'{"exit_code":01}', b'{"exit_code":1e2}', b'[1]']:
            peer = Peer(escalate_then(struct.pack('<I', len(body)) + body))
            rc, out, err = run_wrapper(['/bin/true', 'true'], peer)
            self.assertEqual(rc, 126, body)
            self.assertIn(b'protocol error: bad exec result from the escalation server: ', err)
            self.assertEqual(err.count(b'\n'), 1)

    def test_server_dies_while_escalated(self):
        def script(stream, _req):
            stream.sendall(frame(ESCALATE))
            _, fds = read_frame(stream, with_fds=True)
            for fd in fds:  # a dead server holds nothing
                os.close(fd)
        peer = Peer(script)
        self.assertRefused(run_wrapper(['/bin/true', 'true'], peer),
                           P + '/bin/true: escalation server closed the connection')



def start_wrapper(args, peer, env=None, pass_fds=(), preexec_fn=None, cwd=None, stdin=subprocess.DEVNULL, **popen):
    """Like run_wrapper, but returns the running Popen (for signal tests).
    pass_fds also keeps fds that preexec_fn creates (subprocess closes the
    others after preexec_fn ran)."""
    env = dict(os.environ if env is None else env)
    fd = peer.client.fileno()
    env['CODEX_ESCALATE_SOCKET'] = str(fd)
    p = subprocess.Popen(PREFIX + [WRAPPER] + list(args), env=env, pass_fds=list(pass_fds) + [fd],
                         stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=preexec_fn, cwd=cwd, **popen)
    peer.client.close()
    return p


def fds_at(targets, src, sock, park=900):
    """argv prefix that starts the wrapper with exactly 0-2 plus every fd in
    targets open (each a dup of src) and the escalate socket at park+1, so
    fd numbers can be chosen freely without clobbering Python's own."""
    script = ('ulimit -n 4096; exec %d>&%d %d>&%d %d>&- %d>&-; ' % (park, src, park + 1, sock, src, sock)
              + ''.join('exec %d>&%d; ' % (t, park) for t in targets)
              + 'exec %d>&-; export CODEX_ESCALATE_SOCKET=%d; exec "$@"' % (park, park + 1))
    return ['/bin/bash', '-c', script, 'bash']


def start_with_fds(args, peer, targets, src, park=900):
    fd = peer.client.fileno()
    p = subprocess.Popen(fds_at(targets, src, fd, park) + PREFIX + [WRAPPER] + list(args), pass_fds=[src, fd],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peer.client.close()
    return p


class Held:
    """Peer script for escalations driven step by step from the test: answers
    Escalate, collects every fds frame ("more" chaining), then hands the
    stream to the test and keeps it open until release()."""

    def __init__(self):
        self.ready = threading.Event()
        self.finished = threading.Event()
        self.frames = []  # (json, nfds) per SuperExecMessage
        self.fds = {}     # target number -> our received fd
        self.stream = None

    def __call__(self, stream, _req):
        stream.sendall(frame(ESCALATE))
        while True:
            body, fds = read_frame(stream, with_fds=True)
            msg = json.loads(body)
            self.frames.append((msg, len(fds)))
            self.fds.update(zip(msg['fds'], fds))
            if not msg.get('more'):
                break
        self.stream = stream
        self.ready.set()
        self.finished.wait(TIMEOUT)

    def next_json(self):
        return json.loads(read_frame(self.stream))

    def release(self):
        """Closes the received fds (the wrapper's stdout/stderr among them,
        so the test can read to EOF) and lets the peer hang up."""
        fds, self.fds = self.fds, {}
        for fd in fds.values():
            os.close(fd)
        self.finished.set()

    def finish(self, p, result):
        """Sends the exec result and collects the wrapper."""
        self.stream.sendall(frame(result))
        self.release()
        return p.communicate(timeout=TIMEOUT)


def sig_caught(pid, sig):
    """Whether pid has a handler for sig (SigCgt in /proc/PID/status)."""
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('SigCgt:'):
                return bool(int(line.split()[1], 16) & (1 << (sig - 1)))
    return False


def wait_until(pred, what):  # noqa: E302
    deadline = time.monotonic() + TIMEOUT
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting for ' + what)
        time.sleep(0.01)


def proc_state(pid):
    with open('/proc/%d/stat' % pid) as f:
        return f.read().rsplit(')', 1)[1].split()[0]


class TestRunRewritten(Base):
    def rewritten(self, file, argv):
        return {'action': {'RunRewritten': {'file': file, 'argv': argv}}}

    def test_runs_the_rewritten_command(self):
        peer = Peer(respond(self.rewritten('/bin/echo', ['echo', 'rewritten', 'args'])))
        rc, out, err = run_wrapper(['/bin/echo', 'echo', 'original'], peer)
        self.assertEqual((rc, out, err), (0, b'rewritten args\n', b''))
        self.assertEqual(peer.request['argv'], ['echo', 'original'])  # the request was the original

    def test_argv0_and_key_order(self):
        body = b'{"action":{"RunRewritten":{"argv":["custom0","-c","tr \\"\\\\000\\" \\" \\" < /proc/$$/cmdline"],"file":"/bin/sh"}}}'
        peer = Peer(respond(struct.pack('<I', len(body)) + body))
        rc, out, err = run_wrapper(['/bin/true', 'true'], peer)
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.startswith(b'custom0 -c '), out)

    def test_escaped_bytes_become_raw_bytes(self):
        d = os.path.join(os.fsencode(self.tmp), b'caf\xe9')
        os.mkdir(d)
        script = os.path.join(d, b'tool\xff')
        with open(script, 'wb') as f:
            f.write(b'#!/bin/sh\nprintf "%s|" "$0" "$@"\n')
        os.chmod(script, 0o755)
        args = [b'x\xe9y', b'\xff\xfe', b'caf\xc3\xa9', b'\xed\xa0\x80']
        resp = self.rewritten(script.decode('utf-8', 'surrogateescape'),
                              [a.decode('utf-8', 'surrogateescape') for a in [b'argv0'] + args])
        peer = Peer(respond(frame(json.dumps(resp).encode())))  # json.dumps writes \udcXX escapes
        self.assertIn(b'\\udce9', json.dumps(resp).encode())
        rc, out, err = run_wrapper(['/bin/true', 'true'], peer)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b'|'.join([script] + args) + b'|')

    def test_same_exec_failures_as_run(self):
        missing = self.path('nope')
        peer = Peer(respond(self.rewritten(missing, ['nope'])))
        self.assertRefused(run_wrapper(['/bin/true', 'true'], peer), P + missing + ': No such file or directory', 127)
        s = self.write('noshebang', b'echo "script $0 [$1]"\nexit 4\n')
        peer = Peer(respond(self.rewritten(s, ['ignored', 'one'])))
        rc, out, err = run_wrapper(['/bin/true', 'true'], peer)
        self.assertEqual((rc, out.decode()), (4, 'script %s [one]\n' % s), err)
        b = self.write('bin', b'abc\x00def\n')
        peer = Peer(respond(self.rewritten(b, ['b'])))
        self.assertRefused(run_wrapper(['/bin/true', 'true'], peer), P + b + ': cannot execute binary file: Exec format error')

    def test_strict_parsing(self):
        B = 'protocol error: bad response from the escalation server: '
        cases = [
            (b'{"action":{"RunRewritten":{"file":"/bin/echo","argv":["a\\u0000b"]}}}', B + 'NUL byte in argv at byte 54'),
            (b'{"action":{"RunRewritten":{"file":"/bin/e\\u0000cho","argv":["a"]}}}', B + 'NUL byte in file at byte 34'),
            (b'{"action":{"RunRewritten":{"file":"","argv":["a"]}}}', B + 'file is empty at byte 34'),
            (b'{"action":{"RunRewritten":{"file":"/bin/echo","argv":[]}}}', B + 'argv is empty at byte 54'),
            (b'{"action":{"RunRewritten":{"file":"/bin/echo"}}}', B + 'missing "argv" in RunRewritten at byte 46'),
            (b'{"action":{"RunRewritten":{"argv":["a"]}}}', B + 'missing "file" in RunRewritten at byte 40'),
            (b'{"action":{"RunRewritten":{}}}', B + 'expected "file" or "argv" at byte 27'),
            (b'{"action":{"RunRewritten":{"file":"/x","argv":["a"],"env":{}}}}', B + 'unexpected key in RunRewritten at byte 57'),
            (b'{"action":{"RunRewritten":{"file":"/x","file":"/y","argv":["a"]}}}', B + 'duplicate key at byte 45'),
            (b'{"action":{"RunRewritten":{"file":"/x","argv":"a"}}}', B + 'argv must be an array of strings at byte 46'),
            (b'{"action":{"RunRewritten":{"file":"/x","argv":["a",1]}}}', B + 'argv must be an array of strings at byte 51'),
            (b'{"action":{"RunRewritten":{"file":"/x","argv":["a"}}}', B + "expected ',' or ']' at byte 50"),
            (b'{"action":{"RunRewritten":{"file":5,"argv":["a"]}}}', B + 'file must be a string at byte 34'),
            (b'{"action":{"RunRewritten":{"file":"/x","argv":["a"]},"Run":{}}}', B + "expected '}' after the RunRewritten variant at byte 52"),
            (b'{"action":{"RunRewritten":null}}', B + 'expected the RunRewritten object at byte 26'),
            (b'{"action":{"RunRewritten":{"file":"/x","argv":["\xff"]}}}', B + 'invalid UTF-8 in string at byte 48'),
            (b'{"action":"RunRewritten"}', B + 'unknown action at byte 24'),
        ]
        for payload, message in cases:
            with self.subTest(payload=payload):
                peer = Peer(respond(struct.pack('<I', len(payload)) + payload))
                marker = self.path('must-not-exist')
                self.assertRefused(run_wrapper(['/usr/bin/touch', 'touch', marker], peer), P + '/usr/bin/touch: ' + message)
                self.assertFalse(os.path.exists(marker))

    def test_many_and_long_arguments(self):
        args = ['arg%d-' % i + 'x\udcff' * (i % 50) for i in range(2000)]
        peer = Peer(respond(self.rewritten('/bin/echo', ['echo'] + args)))
        rc, out, err = run_wrapper(['/bin/true', 'true'], peer)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b' '.join(a.encode('utf-8', 'surrogateescape') for a in args) + b'\n')


class TestNestedShells(Base):
    def env_seen(self, env, args=None):
        peer = Peer(respond(RUN))
        rc, out, err = run_wrapper(args or ['/usr/bin/env', 'env'], peer, env=env)
        self.assertEqual(rc, 0, err)
        return [l for l in out.decode().splitlines() if l.startswith('EXEC_WRAPPER=')]

    def test_exec_wrapper_put_back(self):
        base = {k: v for k, v in os.environ.items() if k != 'EXEC_WRAPPER'}
        self.assertEqual(self.env_seen(base), ['EXEC_WRAPPER=' + WRAPPER])
        self.assertEqual(self.env_seen(dict(base, EXEC_WRAPPER='/bin/true')), ['EXEC_WRAPPER=' + WRAPPER])
        self.assertEqual(self.env_seen(dict(base, EXEC_WRAPPER='')), ['EXEC_WRAPPER=' + WRAPPER])
        self.assertEqual(self.env_seen(dict(base, EXEC_WRAPPER=WRAPPER)), ['EXEC_WRAPPER=' + WRAPPER])

    def test_exec_wrapper_put_back_for_rewritten(self):
        base = {k: v for k, v in os.environ.items() if k != 'EXEC_WRAPPER'}
        peer = Peer(respond({'action': {'RunRewritten': {'file': '/usr/bin/env', 'argv': ['env']}}}))
        rc, out, err = run_wrapper(['/bin/true', 'true'], peer, env=base)
        self.assertEqual(rc, 0, err)
        self.assertIn('EXEC_WRAPPER=' + WRAPPER, out.decode().splitlines())

    def test_relative_invocation_uses_the_binary(self):
        # argv[0] not absolute: /proc/self/exe names us.
        base = {k: v for k, v in os.environ.items() if k != 'EXEC_WRAPPER'}
        peer = Peer(respond(RUN))
        fd = peer.client.fileno()
        env = dict(base, CODEX_ESCALATE_SOCKET=str(fd))
        p = subprocess.run(['./' + os.path.basename(WRAPPER), '/usr/bin/env', 'env'], cwd=os.path.dirname(WRAPPER),
                           env=env, pass_fds=[fd], capture_output=True, timeout=TIMEOUT)
        peer.client.close()
        peer.done.wait(TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('EXEC_WRAPPER=' + os.path.realpath(WRAPPER), p.stdout.decode().splitlines())


class TestFdForwarding(Base):
    def test_every_inheritable_fd_forwarded_ascending(self):
        pipes = [os.pipe() for _ in range(3)]
        targets = [7, 5, 9]
        held = Held()
        peer = Peer(held)
        fd = peer.client.fileno()
        # Three different pipes: one bash per target would be clumsy, so
        # use a small chain of redirections on distinct sources.
        script = ('exec 900>&%d 901>&%d 902>&%d 903>&%d; ' % (pipes[0][1], pipes[1][1], pipes[2][1], fd)
                  + ''.join('exec %d>&-; ' % x for x in {pipes[0][1], pipes[1][1], pipes[2][1], fd, pipes[0][0], pipes[1][0], pipes[2][0]})
                  + 'exec 7>&900 5>&901 9>&902 900>&- 901>&- 902>&-; export CODEX_ESCALATE_SOCKET=903; exec "$@"')
        p = subprocess.Popen(['/bin/bash', '-c', script, 'bash'] + PREFIX + [WRAPPER, '/bin/true', 'true'],
                             pass_fds=[w for _, w in pipes] + [r for r, _ in pipes] + [fd],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        peer.client.close()
        try:
            self.assertTrue(held.ready.wait(TIMEOUT))
            self.assertEqual(held.frames, [({'fds': [0, 1, 2, 5, 7, 9]}, 6)])  # not 903, the escalate socket
            for (r, _), t in zip(pipes, targets):
                os.write(held.fds[t], b'via %d' % t)
                self.assertEqual(os.read(r, 100), b'via %d' % t)
            held.finish(p, {'exit_code': 0})
            self.assertEqual(p.returncode, 0)
        finally:
            held.release()
            for r, w in pipes:
                os.close(r)
                os.close(w)

    def test_more_than_16_fds_in_several_frames(self):
        r, w = os.pipe()
        held = Held()
        peer = Peer(held)
        p = start_with_fds(['/bin/true', 'true'], peer, range(3, 40), w)  # 40 fds -> 16 + 16 + 8
        try:
            self.assertTrue(held.ready.wait(TIMEOUT))
            self.assertEqual([(len(m['fds']), m.get('more'), k) for m, k in held.frames],
                             [(16, True, 16), (16, True, 16), (8, None, 8)])
            allfds = [fd for m, _ in held.frames for fd in m['fds']]
            self.assertEqual(allfds, list(range(40)))
            os.write(held.fds[39], b'last')
            self.assertEqual(os.read(r, 10), b'last')
            held.finish(p, {'exit_code': 3})
            self.assertEqual(p.returncode, 3)
        finally:
            held.release()
            os.close(r)
            os.close(w)

    def test_exactly_16_is_one_frame(self):
        r, w = os.pipe()
        held = Held()
        peer = Peer(held)
        p = start_with_fds(['/bin/true', 'true'], peer, range(3, 16), w)
        try:
            self.assertTrue(held.ready.wait(TIMEOUT))
            self.assertEqual(held.frames, [({'fds': list(range(16))}, 16)])
            held.finish(p, {'exit_code': 0})
            self.assertEqual(p.returncode, 0)
        finally:
            held.release()
            os.close(r)
            os.close(w)

    def test_too_many_fds_refused_clearly(self):
        r, w = os.pipe()
        peer = Peer(escalate_then({'exit_code': 0}))
        p = start_with_fds(['/bin/true', 'true'], peer, range(3, 1100), w, park=3000)
        out, err = p.communicate(timeout=TIMEOUT)
        peer.done.wait(TIMEOUT)
        os.close(r)
        os.close(w)
        self.assertEqual(p.returncode, 126)
        self.assertEqual(err.decode(), P + '/bin/true: too many open file descriptors to escalate (1100, limit 1024)\n')

    def test_without_proc_probes_fds(self):
        # A private mount namespace with /proc hidden: the wrapper probes fds.
        if os.geteuid() != 0 or not os.path.exists('/usr/bin/unshare'):
            self.fail('needs root and unshare(1) to hide /proc')
        held = Held()
        peer = Peer(held)
        fd = peer.client.fileno()
        r, w = os.pipe()
        cmd = ['/usr/bin/unshare', '--mount', '--propagation', 'private', '/bin/sh', '-c',
               'mount -t tmpfs none /proc && exec "$@"', 'sh'] + fds_at([8, 700, 1500], w, fd) + PREFIX + [WRAPPER, '/bin/true', 'true']
        p = subprocess.Popen(cmd, pass_fds=[fd, w], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        peer.client.close()
        try:
            self.assertTrue(held.ready.wait(TIMEOUT))
            # 901 (the escalate socket) is skipped; 700 is found below the
            # probe bound, 1500 (beyond it) is not: proof that it probed.
            self.assertEqual([x for m, _ in held.frames for x in m['fds']], [0, 1, 2, 8, 700])
            os.write(held.fds[8], b'probe')
            self.assertEqual(os.read(r, 10), b'probe')
            out, err = held.finish(p, {'exit_code': 0})
            self.assertEqual(p.returncode, 0, err)
        finally:
            held.release()
            os.close(r)
            os.close(w)


class TestSignals(Base):
    def escalated(self, preexec_fn=None, **popen):
        held = Held()
        peer = Peer(held)
        p = start_wrapper(['/bin/sleep', 'sleep', '30'], peer, preexec_fn=preexec_fn, cwd=self.tmp, **popen)
        self.addCleanup(held.release)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        # The handlers are in before the fds are sent: from here on every
        # signal is relayed.
        self.assertTrue(held.ready.wait(TIMEOUT))
        if not PREFIX:  # valgrind catches every signal itself
            self.assertTrue(sig_caught(p.pid, signal.SIGUSR2))
        return held, p

    def test_relayed_in_order_then_death_by_signal(self):
        held, p = self.escalated()
        for sig in (signal.SIGUSR1, signal.SIGWINCH, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR2):
            os.kill(p.pid, sig)
            self.assertEqual(held.next_json(), {'signal': int(sig)})
        os.kill(p.pid, signal.SIGTERM)
        self.assertEqual(held.next_json(), {'signal': 15})
        out, err = held.finish(p, {'exit_code': 143, 'signal': 15})
        self.assertEqual((p.returncode, out, err), (-signal.SIGTERM, b'', b''))

    def test_tstp_stops_wrapper_and_cont_is_relayed(self):
        # Its own process group, with us (its parent) outside it in the same
        # session: not orphaned, so job-control stops apply, as under a shell.
        held, p = self.escalated(process_group=0)
        os.kill(p.pid, signal.SIGTSTP)
        self.assertEqual(held.next_json(), {'signal': int(signal.SIGTSTP)})
        # Stopped by SIGTSTP itself (what the shell reports as 148), not SIGSTOP.
        _, status = os.waitpid(p.pid, os.WUNTRACED)
        self.assertTrue(os.WIFSTOPPED(status))
        self.assertEqual(os.WSTOPSIG(status), signal.SIGTSTP)
        os.kill(p.pid, signal.SIGCONT)
        self.assertEqual(held.next_json(), {'signal': int(signal.SIGCONT)})
        self.assertNotEqual(proc_state(p.pid), 'T')
        held.finish(p, {'exit_code': 0})
        self.assertEqual(p.returncode, 0)

    def test_tstp_in_orphaned_group_resumes_the_command(self):
        # A new session: the kernel discards a default SIGTSTP, as it would
        # for the command run in place, so the command must not stay stopped.
        held, p = self.escalated(start_new_session=True)
        os.kill(p.pid, signal.SIGTSTP)
        self.assertEqual(held.next_json(), {'signal': int(signal.SIGTSTP)})
        self.assertEqual(held.next_json(), {'signal': int(signal.SIGCONT)})
        self.assertNotEqual(proc_state(p.pid), 'T')
        held.finish(p, {'exit_code': 0})
        self.assertEqual(p.returncode, 0)

    def test_ignored_signal_stays_ignored(self):
        held, p = self.escalated(preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        if not PREFIX:
            self.assertFalse(sig_caught(p.pid, signal.SIGINT))
        os.kill(p.pid, signal.SIGINT)
        os.kill(p.pid, signal.SIGUSR1)
        self.assertEqual(held.next_json(), {'signal': int(signal.SIGUSR1)})
        held.finish(p, {'exit_code': 0})
        self.assertEqual(p.returncode, 0)

    def test_run_keeps_dispositions(self):
        # No handlers on the Run path: an ignored SIGINT stays ignored, the
        # rest are default in the command (checked in its /proc status).
        peer = Peer(respond(RUN))
        fd = peer.client.fileno()
        env = dict(os.environ, CODEX_ESCALATE_SOCKET=str(fd))
        p = subprocess.run(PREFIX + [WRAPPER, '/bin/grep', 'grep', '-E', '^Sig(Ign|Blk)', '/proc/self/status'],
                           env=env, pass_fds=[fd], capture_output=True, timeout=TIMEOUT,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        peer.client.close()
        peer.done.wait(TIMEOUT)
        fields = dict(l.split(':\t') for l in p.stdout.decode().splitlines())
        self.assertTrue(int(fields['SigIgn'], 16) & (1 << (signal.SIGINT - 1)))
        self.assertEqual(int(fields['SigBlk'], 16), 0)

    def test_server_gone_while_relaying(self):
        held, p = self.escalated()
        os.kill(p.pid, signal.SIGINT)
        self.assertEqual(held.next_json(), {'signal': int(signal.SIGINT)})
        held.stream.shutdown(socket.SHUT_RDWR)
        held.release()
        out, err = p.communicate(timeout=TIMEOUT)
        self.assertEqual(p.returncode, 126)
        self.assertEqual(err, (P + '/bin/sleep: escalation server closed the connection\n').encode())


class TestDeathBySignal(Base):
    def run_result(self, result, preexec_fn=None):
        peer = Peer(escalate_then(result))
        fd = peer.client.fileno()
        env = dict(os.environ, CODEX_ESCALATE_SOCKET=str(fd))
        p = subprocess.run(PREFIX + [WRAPPER, '/bin/true', 'true'], env=env, pass_fds=[fd], capture_output=True,
                           timeout=TIMEOUT, cwd=self.tmp, preexec_fn=preexec_fn)
        peer.client.close()
        peer.done.wait(TIMEOUT)
        return p

    def test_reraised(self):
        for sig in (signal.SIGINT, signal.SIGKILL, signal.SIGTERM, signal.SIGPIPE, signal.SIGHUP):
            with self.subTest(sig=sig):
                p = self.run_result({'exit_code': 128 + sig, 'signal': int(sig)})
                self.assertEqual((p.returncode, p.stderr), (-sig, b''))

    def test_reraised_even_if_ignored_and_without_core(self):
        import resource

        def pre():
            signal.signal(signal.SIGQUIT, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        p = self.run_result({'exit_code': 131, 'signal': 3}, preexec_fn=pre)
        self.assertEqual(p.returncode, -signal.SIGQUIT)
        self.assertEqual(os.listdir(self.tmp), [])  # core_pattern may name ./core: nothing dumped

    def test_non_terminating_signal_exits_with_code(self):
        for sig in (signal.SIGTSTP, signal.SIGCHLD, signal.SIGSTOP):
            p = self.run_result({'exit_code': 128 + sig, 'signal': int(sig)})
            self.assertEqual(p.returncode, 128 + sig)

    def test_null_signal_is_plain_exit(self):
        p = self.run_result({'exit_code': 5, 'signal': None})
        self.assertEqual(p.returncode, 5)

    def test_bad_signals(self):
        for sig, text in [(0, 'invalid signal 0'), (65, 'invalid signal 65'), (-2, 'invalid signal -2'),
                          (10**30, 'invalid signal (out of range)')]:
            with self.subTest(sig=sig):
                p = self.run_result({'exit_code': 130, 'signal': sig})
                self.assertEqual(p.returncode, 126)
                self.assertEqual(p.stderr.decode(), P + '/bin/true: escalation server reported an ' + text + '\n')
        for body in [b'{"exit_code":130,"signal":"2"}', b'{"exit_code":130,"signal":2.0}',
                     b'{"exit_code":130,"signal":2,"signal":2}']:
            with self.subTest(body=body):
                p = self.run_result(struct.pack('<I', len(body)) + body)
                self.assertEqual(p.returncode, 126)
                self.assertIn(b'protocol error: bad exec result from the escalation server: ', p.stderr)

class TestProtocolErrors(Base):
    def expect_protocol(self, payload, message):
        peer = Peer(respond(payload))
        marker = self.path('must-not-exist')
        self.assertRefused(run_wrapper(['/usr/bin/touch', 'touch', marker], peer), P + '/usr/bin/touch: ' + message)
        self.assertFalse(os.path.exists(marker))

    def test_frame_lengths(self):
        self.expect_protocol(b'\x00\x00\x00\x00', 'protocol error: response frame length 0 out of range (1..1048576)')
        self.expect_protocol(b'\xff\xff\xff\xff', 'protocol error: response frame length 4294967295 out of range (1..1048576)')
        self.expect_protocol(b'\x01\x00\x10\x00', 'protocol error: response frame length 1048577 out of range (1..1048576)')

    def test_eof_mid_frame(self):
        self.expect_protocol(b'\x64\x00\x00\x00{"action"', 'escalation server closed the connection')
        self.expect_protocol(b'\x64\x00', 'escalation server closed the connection')
        self.expect_protocol(b'', 'escalation server closed the connection')

    def test_garbage(self):
        B = 'protocol error: bad response from the escalation server: '
        cases = [
            (b'hello', B + 'expected a JSON object at byte 0'),
            (b'{"action":"Bogus"}', B + 'unknown action at byte 17'),
            (b'{"action":"run"}', B + 'unknown action at byte 15'),
            (b'{"action":"Run"} x', B + 'trailing data after the JSON object at byte 17'),
            (b'{"action":"Run","action":"Run"}', B + 'duplicate key at byte 25'),
            (b'{"other":1}', B + 'missing "action" at byte 11'),
            (b'{"action":{"Deny":{"reason":5}}}', B + 'reason must be a string or null at byte 28'),
            (b'{"action":{"Deny":{}}}', B + 'expected "reason" at byte 19'),
            (b'{"action":{"Deny":{"reason":null,"x":1}}}', B + "expected '}' after reason at byte 32"),
            (b'{"action":{"Deny":{"reason":null}},"x":1,}', B + 'expected a string at byte 41'),
            (b'{"action":{"Deny":{"reason":null},"Run":{}}}', B + "expected '}' after the Deny variant at byte 33"),
            (b'{"action":{"Allow":{}}}', B + 'unknown action at byte 18'),
            (b'{"action":null}', B + 'action must be a string or an object at byte 10'),
            (b'{"action":"Run\xff"}', B + 'invalid UTF-8 in string at byte 14'),
            (b'{"action":"Run","x":"\xed\xa0\x80"}', B + 'invalid UTF-8 in string at byte 21'),
            (b'{"action":"Run","x":"a\x01"}', B + 'control character in string at byte 22'),
            (b'{"action":"Run","x":"\\x"}', B + 'invalid escape in string at byte 21'),
            (b'{"action":"Run","x":"\\u12G4"}', B + 'invalid \\u escape at byte 21'),
            (b'{"action":"Run","x":01}', B + "expected ',' or '}' at byte 21"),
            (b'{"action":"Run","x":tru}', B + 'invalid literal at byte 20'),
            (b'{"action":"Run","x":' + b'[' * 100 + b']' * 100 + b'}', B + 'nesting too deep at byte 84'),
            (b'{"action":"Run"', B + "expected ',' or '}' at byte 15"),
            (b'\x00', B + 'expected a JSON object at byte 0'),
        ]
        for payload, message in cases:
            with self.subTest(payload=payload):
                self.expect_protocol(struct.pack('<I', len(payload)) + payload, message)

    def test_huge_unknown_value_is_fine_within_limit(self):
        body = b'{"pad":"' + b'x' * (1024 * 1024 - 30) + b'","action":"Run"}'
        self.assertLessEqual(len(body), 1024 * 1024)
        peer = Peer(respond(struct.pack('<I', len(body)) + body))
        rc, out, _ = run_wrapper(['/bin/echo', 'echo', 'ok'], peer)
        self.assertEqual((rc, out), (0, b'ok\n'))


class TestServerGone(Base):
    def test_server_socket_closed_before(self):
        peer = Peer(None, close_before=True)
        self.assertRefused(run_wrapper(['/bin/true', 'true'], peer),
                           P + '/bin/true: cannot reach the escalation server: Connection refused')

    def test_server_drops_stream_without_reply(self):
        peer = Peer(lambda stream, req: None)
        t = time.monotonic()
        self.assertRefused(run_wrapper(['/bin/true', 'true'], peer),
                           P + '/bin/true: escalation server closed the connection')
        self.assertLess(time.monotonic() - t, TIMEOUT)

    def test_server_dies_with_handshake_unread(self):
        # The datagram (and the stream end it carries) is queued when the
        # server goes away: the kernel drops it, and the wrapper sees EOF.
        server, client = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        env = dict(os.environ, CODEX_ESCALATE_SOCKET=str(client.fileno()))
        p = subprocess.Popen(PREFIX + [WRAPPER, '/bin/true', 'true'], env=env, pass_fds=[client.fileno()],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        client.close()
        # Wait until the datagram is queued, then die without reading it.
        readable, _, _ = select.select([server], [], [], TIMEOUT)
        self.assertTrue(readable)
        server.close()
        out, err = p.communicate(timeout=TIMEOUT)
        self.assertEqual(p.returncode, 126, err)
        self.assertEqual(err.decode(), P + '/bin/true: escalation server closed the connection\n')


class TestBadSocketEnv(Base):
    def test_missing(self):
        env = {k: v for k, v in os.environ.items() if k != 'CODEX_ESCALATE_SOCKET'}
        self.assertRefused(run_wrapper(['/bin/true', 'true'], env=env),
                           P + '/bin/true: CODEX_ESCALATE_SOCKET is not set; is the escalation server running?')

    def test_not_numbers(self):
        for value in ['abc', '', '-1', '3x', ' 3', '99999999999', '+3']:
            with self.subTest(value=value):
                r = run_wrapper(['/bin/true', 'true'], sock_value=value)
                if value == '':
                    self.assertRefused(r, P + '/bin/true: CODEX_ESCALATE_SOCKET is not set; is the escalation server running?')
                else:
                    self.assertRefused(r, P + "/bin/true: CODEX_ESCALATE_SOCKET='%s' is not a file descriptor number" % value)

    def test_closed_fd(self):
        self.assertRefused(run_wrapper(['/bin/true', 'true'], sock_value='987'),
                           P + '/bin/true: CODEX_ESCALATE_SOCKET=987: file descriptor is not open')

    def test_pipe_fd(self):
        r, w = os.pipe()
        try:
            self.assertRefused(run_wrapper(['/bin/true', 'true'], sock_value=str(r), pass_fds=[r]),
                               P + '/bin/true: CODEX_ESCALATE_SOCKET=%d: not a socket' % r)
        finally:
            os.close(r)
            os.close(w)

    def test_stream_socket(self):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with a, b:
            self.assertRefused(run_wrapper(['/bin/true', 'true'], sock_value=str(a.fileno()), pass_fds=[a.fileno()]),
                               P + '/bin/true: CODEX_ESCALATE_SOCKET=%d: not an AF_UNIX datagram socket' % a.fileno())

    def test_inet_datagram_socket(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            self.assertRefused(run_wrapper(['/bin/true', 'true'], sock_value=str(s.fileno()), pass_fds=[s.fileno()]),
                               P + '/bin/true: CODEX_ESCALATE_SOCKET=%d: not an AF_UNIX datagram socket' % s.fileno())


class TestExecFailures(Base):
    def run_ok(self, args, **kw):
        peer = Peer(respond(RUN))
        return run_wrapper(args, peer, **kw)

    def test_script_without_shebang_runs_with_shell(self):
        s = self.write('noshebang', b'echo "script $0 [$1] [$2] ${BASH_VERSION%%.*}"\nexit 3\n')
        rc, out, err = self.run_ok([s, 'ignored-argv0', 'one', 'two'])
        self.assertEqual((rc, out.decode()), (3, 'script %s [one] [two] 5\n' % s), err)

    def test_script_shell_from_the_server(self):
        s = self.write('noshebang', b'echo "$0:$1"\n')
        peer = Peer(respond({'action': 'Run', 'shell': '/bin/sh'}))
        rc, out, err = run_wrapper([s, 'x', 'arg'], peer)
        self.assertEqual((rc, out), (0, ('%s:arg\n' % s).encode()), err)

    def test_script_shell_from_the_server_on_run_rewritten(self):
        s = self.write('noshebang', b'echo "rw $0:$1"\n')
        peer = Peer(respond({'shell': '/bin/sh', 'action': {'RunRewritten': {'file': s, 'argv': [s, 'arg']}}}))
        rc, out, err = run_wrapper(['/bin/false', 'false'], peer)
        self.assertEqual((rc, out), (0, ('rw %s:arg\n' % s).encode()), err)

    def test_script_shell_never_from_the_environment(self):
        # The command's own environment must not pick the program that runs undecided.
        s = self.write('noshebang', b'echo "$0:${BASH_VERSION%%.*}"\n')
        victim = self.write('victim', b'keep')
        for env_shell in ('/bin/rm', '/nonexistent/sh'):
            with self.subTest(env_shell=env_shell):
                env = dict(os.environ, CODEX_ESCALATE_SHELL=env_shell)
                rc, out, err = self.run_ok([s, 'x', victim], env=env)  # no "shell" in the reply: /bin/bash
                self.assertEqual((rc, out), (0, ('%s:5\n' % s).encode()), err)
                self.assertTrue(os.path.exists(victim))

    def test_script_shell_missing(self):
        s = self.write('noshebang', b'echo hi\n')
        peer = Peer(respond({'action': 'Run', 'shell': '/nonexistent/sh'}))
        self.assertRefused(run_wrapper([s, 'x'], peer),
                           P + s + ': cannot run the script with /nonexistent/sh: No such file or directory', 127)

    def test_bad_shell_field_is_a_protocol_error(self):
        for shell, what in [(1, 'shell must be a string'), ('', 'shell must be an absolute path'),
                            ('sh', 'shell must be an absolute path'), ('/bin/s\u0000h', 'NUL byte in shell')]:
            with self.subTest(shell=shell):
                body = ('{"action":"Run","shell":%s}' % json.dumps(shell)).replace('\\\\u0000', '\\u0000').encode()
                peer = Peer(respond(struct.pack('<I', len(body)) + body))
                rc, out, err = run_wrapper(['/bin/echo', 'echo', 'ran'], peer)
                self.assertEqual((rc, out), (126, b''), err)
                self.assertIn(what.encode(), err)

    def test_bad_listener_field_is_a_protocol_error(self):
        for value in ['"yes"', '1', 'null', 'tru']:
            with self.subTest(value=value):
                body = ('{"action":"Run","listener":%s}' % value).encode()
                peer = Peer(respond(struct.pack('<I', len(body)) + body))
                rc, out, err = run_wrapper(['/bin/echo', 'echo', 'ran'], peer)
                self.assertEqual((rc, out), (126, b''), err)
                self.assertIn(b'protocol error', err)

    def test_listener_true_hands_over_a_seccomp_listener_and_runs(self):
        got = {}

        def script(stream, _req):
            stream.sendall(frame({'action': 'Run', 'listener': True}))
            stream.settimeout(TIMEOUT)
            msg, fds, _, _ = socket.recv_fds(stream, 64, 4)
            got['msg'] = msg
            got['targets'] = [os.readlink('/proc/self/fd/%d' % fd) for fd in fds]
            for fd in fds:
                os.close(fd)

        peer = Peer(script)
        rc, out, err = run_wrapper(['/bin/echo', 'echo', 'ran'], peer)
        # The program's own exec gets through on the cookie; nothing else was asked.
        self.assertEqual((rc, out), (0, b'ran\n'), err)
        self.assertEqual(got.get('msg'), struct.pack('<I', 17) + b'{"listener":true}')
        self.assertEqual(got.get('targets'), ['anon_inode:seccomp notify'])

    def test_direct_hint_attaches_the_listener_to_the_request(self):
        after = {}

        def script(stream, _req):
            stream.sendall(frame({'action': 'Run', 'listener': True}))
            stream.settimeout(TIMEOUT)
            after['rest'] = stream.recv(64)  # nothing follows the reply: EOF at the exec

        peer = Peer(script)
        env = dict(os.environ, CODEX_ESCALATE_DIRECT='1')
        rc, out, err = run_wrapper(['/bin/echo', 'echo', 'ran'], peer, env=env)
        self.assertEqual((rc, out), (0, b'ran\n'), err)
        self.assertEqual(peer.request_nfds, 2)
        self.assertEqual(peer.request_fd_targets[0], os.path.realpath('/bin/echo'))
        self.assertEqual(peer.request_fd_targets[1], 'anon_inode:seccomp notify')
        self.assertEqual(after.get('rest'), b'')
        # The hint describes the interception itself: not reported to the policy.
        self.assertNotIn('CODEX_ESCALATE_DIRECT', peer.request['env'])

    def test_direct_hint_does_not_reach_the_program(self):
        peer = Peer(respond({'action': 'Run', 'listener': True}))
        env = dict(os.environ, CODEX_ESCALATE_DIRECT='1')
        rc, out, err = run_wrapper(['/usr/bin/env', 'env'], peer, env=env)
        self.assertEqual(rc, 0, err)
        self.assertEqual(peer.request_nfds, 2)
        self.assertIn(b'PATH=', out)
        self.assertNotIn(b'CODEX_ESCALATE_DIRECT', out)

    def test_direct_hint_listener_not_kept_stops_before_the_exec(self):
        peer = Peer(respond({'action': 'Run', 'listener': False}))
        env = dict(os.environ, CODEX_ESCALATE_DIRECT='1')
        rc, out, err = run_wrapper(['/bin/echo', 'echo', 'ran'], peer, env=env)
        self.assertEqual((rc, out), (126, b''), err)
        self.assertIn(b'did not keep the exec filter', err)
        self.assertEqual(peer.request_nfds, 2)

    def test_direct_hint_other_values_attach_no_listener(self):
        for value in ['0', '', 'yes']:
            with self.subTest(value=value):
                peer = Peer(respond(RUN))
                env = dict(os.environ, CODEX_ESCALATE_DIRECT=value)
                rc, out, err = run_wrapper(['/bin/echo', 'echo', 'ran'], peer, env=env)
                self.assertEqual((rc, out), (0, b'ran\n'), err)
                self.assertEqual(peer.request_nfds, 1)

    def test_direct_hint_deny_and_escalate_still_work(self):
        env = dict(os.environ, CODEX_ESCALATE_DIRECT='1')
        peer = Peer(respond(deny('no')))
        rc, out, err = run_wrapper(['/bin/echo', 'echo', 'ran'], peer, env=env)
        self.assertEqual((rc, out), (126, b''), err)
        self.assertIn(b'denied: no', err)
        self.assertEqual(peer.request_nfds, 2)
        peer = Peer(escalate_then({'exit_code': 7}))
        rc, out, err = run_wrapper(['/bin/echo', 'echo', 'ran'], peer, env=env)
        self.assertEqual(rc, 7, err)

    def test_binary_file_refused(self):
        for name, data in [('nul-first-line', b'abc\x00def\n'), ('elf-ish', b'\x7fELF' + b'\x01' * 20),
                           ('nul-before-newline', b'\x00\n')]:
            with self.subTest(name=name):
                b = self.write(name, data)
                self.assertRefused(self.run_ok([b, 'b']), P + b + ': cannot execute binary file: Exec format error')

    def test_nul_after_first_line_is_text(self):
        s = self.write('late-nul', b'echo text\nexit 0\n\x00')
        rc, out, err = self.run_ok([s, 's'])
        self.assertEqual((rc, out), (0, b'text\n'), err)

    def test_empty_file_is_success(self):
        e = self.write('empty', b'')
        self.assertEqual(self.run_ok([e, 'e']), (0, b'', b''))

    def test_missing_file(self):
        self.assertRefused(self.run_ok([self.path('nope'), 'nope']),
                           P + self.path('nope') + ': No such file or directory', 127)

    def test_directory(self):
        self.assertRefused(self.run_ok([self.tmp, 'd']), P + self.tmp + ': Is a directory')

    def test_not_executable(self):
        f = self.write('plain', b'echo hi\n', mode=0o644)  # no x bit: even root gets EACCES
        self.assertRefused(self.run_ok([f, 'f']), P + f + ': Permission denied')

    def test_missing_interpreter(self):
        f = self.write('badinterp', b'#!/nonexistent/interp\n')
        self.assertRefused(self.run_ok([f, 'f']), P + f + ': cannot execute: required file not found', 127)

    def test_interpreter_is_a_directory(self):
        f = self.write('dirinterp', b'#!/tmp\n')
        self.assertRefused(self.run_ok([f, 'f']), P + f + ': /tmp: bad interpreter: Permission denied')

    def test_interpreter_with_carriage_return(self):
        # A DOS line ending names "DIR\r"; bash shows the \r as ^M.
        d = self.path('d\r')
        os.mkdir(d)
        f = self.write('crlf', b'#!' + d.encode() + b'\n')  # d ends in \r
        self.assertRefused(self.run_ok([f, 'f']), P + f + ': ' + self.path('d') + '^M: bad interpreter: Permission denied')

    def test_interpreter_not_executable(self):
        interp = self.write('interp', b'', mode=0o644)
        f = self.write('script', b'#!' + interp.encode() + b' -x\n')
        self.assertRefused(self.run_ok([f, 'f']), P + f + ': ' + interp + ': bad interpreter: Permission denied')


class TestCli(unittest.TestCase):
    def test_version_and_help(self):
        p = subprocess.run(PREFIX + [WRAPPER, '--version'], capture_output=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout.decode(), r'^codex-execve-wrapper \d+\.\d+\.\d+\S*\n$')
        p = subprocess.run(PREFIX + [WRAPPER, '--help'], capture_output=True, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 0)
        self.assertIn(b'usage: codex-execve-wrapper PATH ARGV0', p.stdout)

    def test_usage(self):
        for args in [[], ['/bin/true'], ['--bogus']]:
            p = subprocess.run(PREFIX + [WRAPPER] + args, capture_output=True, timeout=TIMEOUT)
            self.assertEqual(p.returncode, 126)
            self.assertEqual(p.stderr, b'codex-execve-wrapper: usage: codex-execve-wrapper PATH ARGV0 [ARG...] (see --help)\n')

    def test_flags_only_alone(self):
        # "--version" as a program path (with its argv) is a program, not a flag.
        env = {k: v for k, v in os.environ.items() if k != 'CODEX_ESCALATE_SOCKET'}
        p = subprocess.run(PREFIX + [WRAPPER, '--version', 'x'], capture_output=True, env=env, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 126)
        self.assertTrue(p.stderr.startswith(b'codex-execve-wrapper: --version: CODEX_ESCALATE_SOCKET is not set'))


# Tests that cannot run under WRAPPER_PREFIX (valgrind): valgrind rewrites the
# client's environment (adds LD_PRELOAD, drops non-UTF-8 names), cannot
# survive an execve that the kernel refuses late (#! interpreter errors), and
# Debian's valgrind launcher is a shell script that complains in a deleted cwd.
NOT_UNDER_TOOLS = {
    'test_deleted_working_directory',
    'test_duplicates_keep_first_and_malformed_entries_skipped', 'test_many_variables',
    'test_non_utf8_env_round_trip',
    'test_missing_interpreter', 'test_interpreter_is_a_directory',
    'test_interpreter_with_carriage_return', 'test_interpreter_not_executable',
    # The launcher script keeps itself open on an inheritable fd, which the
    # wrapper rightly forwards: exact fd lists differ under the tool.
    'test_more_than_16_fds_in_several_frames', 'test_exactly_16_is_one_frame',
    'test_too_many_fds_refused_clearly', 'test_without_proc_probes_fds',
    # valgrind does not turn a self-raised default SIGTSTP into a stop.
    'test_tstp_stops_wrapper_and_cont_is_relayed',
}


def load_tests(loader, standard_tests, pattern):
    if not PREFIX:
        return standard_tests
    suite = unittest.TestSuite()

    def walk(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                walk(t)
            elif t._testMethodName not in NOT_UNDER_TOOLS:
                suite.addTest(t)
    walk(standard_tests)
    return suite


if __name__ == '__main__':
    unittest.main()
