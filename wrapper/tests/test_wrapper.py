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
import json
import os
import select
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
        self.handshake = None
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
            stream.settimeout(TIMEOUT)
            with stream:
                try:
                    self.request_raw = read_frame(stream)
                except EOFError:
                    return
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


def escalate_then(result):
    """Answers Escalate, takes the fds frame, then sends result."""
    def script(stream, _req):
        stream.sendall(frame(ESCALATE))
        _, fds = read_frame(stream, with_fds=True)
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
        self.assertEqual(req['ext'], 1)
        self.assertEqual(set(req), {'file', 'argv', 'workdir', 'env', 'ext'})

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
        self.assertIn('EXEC_WRAPPER=/x/wrapper', lines)
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
        self.assertEqual(err, (P + '/bin/true: denied: a?b?c?[31m \U0001F600 ').encode() + b'\xff lone\xef\xbf\xbd\n')

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

        def script(stream, _req):
            stream.sendall(frame(ESCALATE))
            body, fds = read_frame(stream, with_fds=True)
            seen['msg'] = json.loads(body)
            seen['nfds'] = len(fds)
            files = dict(zip(seen['msg']['fds'], fds))
            data = os.read(files[0], 100)
            os.write(files[1], b'escalated saw: ' + data)
            os.write(files[2], b'to stderr\n')
            for fd in fds:
                os.close(fd)
            stream.sendall(frame({'exit_code': 7}))
        peer = Peer(script)
        rc, out, err = run_wrapper(['/bin/false', 'false'], peer, stdin=b'input')
        self.assertEqual(seen['msg'], {'fds': [0, 1, 2]})
        self.assertEqual(seen['nfds'], 3)
        self.assertEqual((rc, out, err), (7, b'escalated saw: input', b'to stderr\n'))

    def test_closed_stdin_is_skipped(self):
        seen = {}

        def script(stream, _req):
            stream.sendall(frame(ESCALATE))
            body, fds = read_frame(stream, with_fds=True)
            seen['msg'] = json.loads(body)
            seen['nfds'] = len(fds)
            for fd in fds:
                os.close(fd)
            stream.sendall(frame({'exit_code': 0}))
        peer = Peer(script)
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

    def test_script_shell_from_env(self):
        s = self.write('noshebang', b'echo "$0:$1"\n')
        env = dict(os.environ, CODEX_ESCALATE_SHELL='/bin/sh')
        rc, out, err = self.run_ok([s, 'x', 'arg'], env=env)
        self.assertEqual((rc, out), (0, ('%s:arg\n' % s).encode()), err)

    def test_script_shell_missing(self):
        s = self.write('noshebang', b'echo hi\n')
        env = dict(os.environ, CODEX_ESCALATE_SHELL='/nonexistent/sh')
        self.assertRefused(self.run_ok([s, 'x'], env=env),
                           P + s + ': cannot run the script with /nonexistent/sh: No such file or directory', 127)

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
