/** Pure logic behind the boundary fixes: env allow list, shell env policy, terminal escaping, audit bounds, request pre-checks. */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EscalateRequestSchema, MAX_ARG_STRLEN, MAX_EXEC_BYTES, MAX_EXEC_STRINGS, precheckExact, precheckRequest, validRequestShape } from '../../src/protocol/messages.js';
import { decodeRequest } from '../../src/server/parse-request.js';
import { createEnvFilter } from '../../src/sandbox/escalation-env.js';
import { globToRegExp, parseAssignment, parseInherit, shellEnvironment, shellEnvNotice } from '../../src/sandbox/shell-env.js';
import { AUDIT_ELEMENT_CHARS, AUDIT_TOTAL_CHARS, boundedList, boundedString, escapeForTerminal } from '../../src/server/audit-log.js';

describe('escalation env filter (allow list)', () => {
  const serverEnv = { PATH: '/usr/bin:/bin', HOME: '/root', USER: 'root', XDG_RUNTIME_DIR: '/run/user/0', SECRET: 'server-only' };
  const filter = createEnvFilter({ serverEnv });

  it('takes identity and search variables from the server, never the request', () => {
    const { env, dropped } = filter({ PATH: '/ws/e:/usr/bin', HOME: '/ws/h', XDG_CONFIG_HOME: '/ws/x', SHELL: '/ws/bash', TMPDIR: '/ws/t' });
    expect(env).toEqual({ PATH: '/usr/bin:/bin', HOME: '/root', USER: 'root', XDG_RUNTIME_DIR: '/run/user/0' });
    expect(dropped).toEqual(['HOME', 'PATH', 'SHELL', 'TMPDIR', 'XDG_CONFIG_HOME']);
  });

  it('passes the default presentation variables only with sane values', () => {
    const ok = { LANG: 'en_US.UTF-8', LANGUAGE: 'en_US:en', LC_ALL: 'C', TERM: 'xterm-256color', COLORTERM: 'truecolor', NO_COLOR: '1', TZ: 'Europe/Paris', COLUMNS: '120', LINES: '40' };
    expect(filter(ok)).toEqual({ env: { ...ok, PATH: '/usr/bin:/bin', HOME: '/root', USER: 'root', XDG_RUNTIME_DIR: '/run/user/0' }, dropped: [] });
    for (const [k, v] of [['LC_ALL', '/ws/locale'], ['LANG', '../../ws'], ['TERM', '../x'], ['TZ', '/ws/tzfile'], ['TZ', ':/ws/tz'], ['TZ', 'Europe/../../ws'], ['COLUMNS', '80; x']] as const) {
      expect(filter({ [k]: v }).dropped, `${k}=${v}`).toEqual([k]);
    }
    expect(filter({ TZ: ':/usr/share/zoneinfo/UTC' }).dropped).toEqual([]);
    expect(filter({ GIT_TRACE: '/x', LD_PRELOAD: '/x', BASH_FUNC_f: '() { :; }', ANYTHING: '1' }).dropped).toEqual(['ANYTHING', 'BASH_FUNC_f', 'GIT_TRACE', 'LD_PRELOAD']);
  });

  it('--env-allow adds names and prefixes (never the server-provided ones); --env-deny wins', () => {
    const f = createEnvFilter({ serverEnv, allow: ['KEEP', 'MY_*', 'P*'], deny: ['TERM', 'MY_SECRET'] });
    const { env, dropped } = f({ KEEP: '1', MY_A: '2', MY_SECRET: '3', TERM: 'xterm', PATH: '/ws', PAGER: 'less' });
    expect(env).toMatchObject({ KEEP: '1', MY_A: '2', PAGER: 'less', PATH: '/usr/bin:/bin' });
    expect(dropped).toEqual(['MY_SECRET', 'PATH', 'TERM']);
    expect(() => createEnvFilter({ allow: ['HOME'] })).toThrow(/--env-allow HOME: .* always come from the server's environment/);
    expect(() => createEnvFilter({ allow: ['XDG_CONFIG_HOME'] })).toThrow(/XDG_\*/);
    expect(() => createEnvFilter({ allow: ['A=B'] })).toThrow(/not a variable name/);
  });
});

describe('shell env policy', () => {
  const base = { PATH: '/bin', HOME: '/h', LANG: 'C', OPENAI_API_KEY: 'k', aws_secret: 's', GH_TOKEN: 't', MYSQL_PASSWORD: 'p', SSH_AUTH_SOCK: '/a', NPM_CONFIG__AUTH: 'x', GIT_AUTHOR_NAME: 'n', KEYBOARD_LAYOUT: 'us', OTHER: 'o' };

  it('default drops secret-looking names (any case; AUTH only as a word), keeps the rest', () => {
    const { env, dropped } = shellEnvironment(base);
    expect(Object.keys(env).sort()).toEqual(['GIT_AUTHOR_NAME', 'HOME', 'LANG', 'OTHER', 'PATH']);
    expect(dropped).toEqual(['GH_TOKEN', 'KEYBOARD_LAYOUT', 'MYSQL_PASSWORD', 'NPM_CONFIG__AUTH', 'OPENAI_API_KEY', 'SSH_AUTH_SOCK', 'aws_secret']);
  });

  it('all / core / none, then excludes, then set', () => {
    expect(shellEnvironment(base, { inherit: 'all' }).env).toEqual(base);
    expect(Object.keys(shellEnvironment(base, { inherit: 'core' }).env).sort()).toEqual(['HOME', 'LANG', 'PATH']);
    expect(shellEnvironment(base, { inherit: 'none', set: { A: '1' } })).toEqual({ env: { A: '1' }, dropped: Object.keys(base).sort() });
    const r = shellEnvironment(base, { inherit: 'all', exclude: ['oth?r', 'path'], set: { PATH: '/set' } });
    expect(r.env.OTHER).toBeUndefined();
    expect(r.env.PATH).toBe('/set');
    expect(r.dropped).toEqual(['OTHER']);
  });

  it('option parsing and the notice', () => {
    expect(parseInherit('inherit=core')).toBe('core');
    expect(() => parseInherit('core')).toThrow(/expected inherit=all/);
    expect(parseAssignment('A_1=x=y')).toEqual(['A_1', 'x=y']);
    expect(() => parseAssignment('=x')).toThrow(/NAME=VALUE/);
    expect(globToRegExp('a.b*').test('A.BCD')).toBe(true);
    expect(globToRegExp('a.b*').test('axb')).toBe(false);
    expect(shellEnvNotice([], 'default')).toBeNull();
    const many = Array.from({ length: 10 }, (_, i) => `S${i}_TOKEN`);
    expect(shellEnvNotice(many, 'default')).toBe('codex-escalate: 10 environment variables withheld from the sandboxed shell (S0_TOKEN, S1_TOKEN, S2_TOKEN, S3_TOKEN, S4_TOKEN, S5_TOKEN, S6_TOKEN, S7_TOKEN, … (+2)); --shell-env inherit=all keeps them\n');
  });
});

describe('terminal escaping of log messages', () => {
  it('escapes newlines, C0/C1 controls, DEL, line separators, bidi overrides and escaped bytes; leaves the rest', () => {
    expect(escapeForTerminal('plain /usr/bin/ls — ünïcode 😀')).toBe('plain /usr/bin/ls — ünïcode 😀');
    expect(escapeForTerminal('a\nb\r\tc\u001b[31m\u007f\u009b\u2028\u202e\udcff')).toBe('a\\nb\\r\\tc\\x1b[31m\\x7f\\x9b\\u{2028}\\u{202e}\\xff');
    expect(escapeForTerminal('lone \ud800 high')).toBe('lone \\u{d800} high');
  });
});

describe('audit bounds', () => {
  it('small lists pass through as the same array', () => {
    const argv = ['ls', '-l'];
    expect(boundedList('argv', argv)).toEqual({ argv });
    expect(boundedList('argv', argv).argv).toBe(argv);
  });

  it('cuts long elements and the total, with sizes and sha256 of exactly what execve gets', () => {
    const argv = ['x', 'a'.repeat(10_000), ...Array.from({ length: 100 }, () => 'b'.repeat(1000)), 'z\udcff'];
    const r = boundedList('argv', argv) as { argv: string[]; argv_truncated: { elements: number; shown: number; bytes: number; sha256: string; cut: unknown[] } };
    const shownChars = r.argv.reduce((n, s) => n + s.replace(/…$/, '').length, 0);
    expect(shownChars).toBeLessThanOrEqual(AUDIT_TOTAL_CHARS);
    expect(r.argv[1]).toBe(`${'a'.repeat(AUDIT_ELEMENT_CHARS)}…`);
    const bytes = Buffer.concat([Buffer.from(`${argv.slice(0, -1).join('\0')}\0z`), Buffer.of(0xff, 0)]);
    expect(r.argv_truncated).toMatchObject({ elements: 103, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
    expect(r.argv_truncated.shown).toBe(r.argv.length);
    expect(r.argv_truncated.cut[0]).toEqual({ index: 1, bytes: 10_000, sha256: createHash('sha256').update('a'.repeat(10_000)).digest('hex') });
    expect(boundedString('file', 'f'.repeat(5000))).toEqual({ file: `${'f'.repeat(4096)}…`, file_truncated: { bytes: 5000, sha256: createHash('sha256').update('f'.repeat(5000)).digest('hex') } });
  });
});

describe('request pre-check = execve bounds', () => {
  const req = (argv: unknown[], env: Record<string, unknown> = {}) => ({ file: '/bin/true', argv, workdir: '/', env });
  it('accepts exactly what execve accepts at its largest, refuses one byte more', () => {
    expect(MAX_ARG_STRLEN).toBe(131072);
    expect(MAX_EXEC_BYTES).toBe(6 * 1024 * 1024);
    expect(MAX_EXEC_STRINGS).toBe(699050);
    expect(precheckRequest(req(['a'.repeat(131071)]))).toBeNull();
    expect(precheckRequest(req(['a'.repeat(131072)]))).toMatch(/argv\[0\] is 131073 bytes/);
    expect(precheckRequest(req(['\u00e9'.repeat(65536)]))).toMatch(/argv\[0\] is 131073 bytes/); // 2 bytes each in UTF-8
    expect(precheckRequest(req(['\udcff'.repeat(131071)]))).toBeNull(); // escaped bytes are 1 byte each
    // 6 MiB exactly: n strings of s bytes (incl. NUL) + 8-byte pointers.
    const n = 48;
    const s = Math.floor(MAX_EXEC_BYTES / n) - 8;
    expect(precheckRequest(req(Array.from({ length: n }, () => 'a'.repeat(s - 1))))).toBeNull();
    expect(precheckRequest(req([...Array.from({ length: n - 1 }, () => 'a'.repeat(s - 1)), 'a'.repeat(s)]))).toMatch(/over execve's limit of 6291456/);
    expect(precheckRequest(req(new Array(MAX_EXEC_STRINGS + 1).fill('')))).toMatch(/^request too large: 699051 argv \+ 0 env strings/);
  });

  it('reports the first bad element the way the schema would, without visiting the rest', () => {
    expect(precheckRequest(req(['ok', 3, null]))).toBe('invalid request: argv.1: Expected string, received number');
    expect(precheckRequest(req(['a\0b']))).toBe('invalid request: argv.0: argv element contains a NUL byte');
    expect(precheckRequest(req([], { 'A=B': 'x' }))).toBe('invalid request: env.A=B: invalid env name');
    expect(precheckRequest(req([], { A: 'x\0' }))).toBe('invalid request: env.A: env value contains a NUL byte');
    expect(precheckRequest({ fds: [0] })).toBeNull(); // shape errors are the schema's
  });
});

describe('decodeRequest = the full schema (pre-check + shallow schema)', () => {
  it('accepts and rejects exactly what EscalateRequestSchema does, with the same data', async () => {
    const str = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('a\0b', '', '=', 'x=y', '\udcff'));
    const val = fc.oneof(str, fc.integer(), fc.constant(null), fc.boolean());
    const request = fc.record(
      {
        file: fc.oneof(str, fc.constant('/usr/bin/true')),
        argv: fc.oneof(fc.array(val, { maxLength: 5 }), fc.array(str, { maxLength: 5 }), val),
        workdir: fc.oneof(str, fc.constant('/')),
        env: fc.oneof(fc.dictionary(str, val, { maxKeys: 4 }), fc.dictionary(str, str, { maxKeys: 4 }), fc.array(str, { maxLength: 2 }), val),
        ext: fc.oneof(fc.nat(3), fc.constant(-1), str),
        extra: val,
      },
      { requiredKeys: [] },
    );
    // Synchronous for what the zod-free checks accept, a promise where the (lazily loaded) schema decides.
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        let ours: unknown;
        try {
          ours = await decodeRequest(Buffer.from(JSON.stringify(r)));
        } catch {
          ours = undefined;
        }
        // JSON round trip first, as on the wire.
        const wire = EscalateRequestSchema.safeParse(JSON.parse(JSON.stringify(r)));
        expect(ours !== undefined, JSON.stringify(r)).toBe(wire.success);
        if (wire.success) expect(ours).toEqual(wire.data);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('validRequestShape (the hot path without zod) = EscalateRequestSchema', () => {
  it('differential fuzz: accepts exactly what the schema accepts for pre-checked lists, with the same data', () => {
    const str = fc.oneof(fc.string({ maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 4 }), fc.constantFrom('', '\0', 'a\0', '/usr/bin/true', '/', '\udcff', '__proto__'));
    const num = fc.oneof(fc.integer(), fc.nat(3), fc.double(), fc.constantFrom(-0, 0, 1.5, -1, 2 ** 53, -(2 ** 53), 1e300, Number.MAX_SAFE_INTEGER + 2));
    const val = fc.oneof(str, num, fc.constant(null), fc.boolean(), fc.array(str, { maxLength: 2 }), fc.dictionary(str, str, { maxKeys: 2 }));
    const request = fc.record(
      {
        file: fc.oneof(str, val),
        workdir: fc.oneof(str, val),
        ext: fc.oneof(num, val),
        // Near the bound: 1366 × '€' is 4098 bytes, 1365 is 4095; 4096 ASCII is exactly at it.
        pipeline: fc.oneof(str, val, fc.constantFrom('a'.repeat(4096), 'a'.repeat(4097), '€'.repeat(1365), '€'.repeat(1366), 'a | b\0')),
        extra: val,
        __proto__: val,
        constructor: val,
      },
      { requiredKeys: [] },
    );
    // What the pre-check lets through: string argv, env of string values under names without NUL or '='.
    const argvArb = fc.array(fc.string({ maxLength: 6 }).filter((a) => !a.includes('\0')), { maxLength: 4 });
    const name = fc.string({ minLength: 1, maxLength: 6 }).filter((k) => !k.includes('\0') && !k.includes('='));
    const envArb = fc.dictionary(name, fc.string({ maxLength: 6 }).filter((v) => !v.includes('\0')), { maxKeys: 4 });
    fc.assert(
      fc.property(request, argvArb, envArb, (r, argvIn, envIn) => {
        // As on the wire: a JSON round trip (own "__proto__" keys included, ordinary prototypes).
        const raw = JSON.parse(JSON.stringify(r)) as Record<string, unknown>;
        const argv = JSON.parse(JSON.stringify(argvIn)) as string[];
        const env = JSON.parse(JSON.stringify(envIn)) as Record<string, string>;
        const fast = validRequestShape(raw, argv, env);
        const schema = EscalateRequestSchema.safeParse({ ...raw, argv, env });
        expect(fast !== undefined, JSON.stringify(r)).toBe(schema.success);
        if (schema.success) expect(fast).toStrictEqual(schema.data);
      }),
      { numRuns: 20_000 },
    );
  });
});

describe('precheckRequest (by string lengths first) = precheckExact (wire bytes)', () => {
  it('differential fuzz: the same verdict and message, near the execve limits too', () => {
    const third = Math.floor(MAX_ARG_STRLEN / 3);
    // Sizes around both bounds (3 bytes per unit, the exact limit), in units of every wire width.
    const lengths = [0, 1, third - 2, third - 1, third, third + 1, MAX_ARG_STRLEN / 2 - 1, MAX_ARG_STRLEN / 2, MAX_ARG_STRLEN - 2, MAX_ARG_STRLEN - 1, MAX_ARG_STRLEN];
    const big = fc.tuple(fc.constantFrom('a', '\u00e9', '\u20ac', '\ud83d\ude00', '\ud800'), fc.constantFrom(...lengths)).map(([unit, n]) => unit.repeat(Math.max(0, Math.floor(n / unit.length))));
    const str = fc.oneof(fc.string({ maxLength: 6 }), fc.string({ unit: 'binary', maxLength: 4 }), fc.constantFrom('', '\0', 'a\0', '=', 'x=y'), big);
    const val = fc.oneof(str, fc.integer(), fc.constant(null), fc.boolean());
    const request = fc.record(
      {
        file: fc.oneof(str, val),
        workdir: fc.oneof(str, val),
        argv: fc.oneof(fc.array(str, { maxLength: 6 }), fc.array(val, { maxLength: 3 }), val),
        env: fc.oneof(fc.dictionary(str, str, { maxKeys: 6 }), fc.dictionary(str, val, { maxKeys: 3 }), fc.array(str, { maxLength: 2 }), val),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(request, val), (r) => {
        expect(precheckRequest(r)).toBe(precheckExact(r));
      }),
      { numRuns: 400 },
    );
    // Many large strings: the total (6 MiB) decides.
    const many = (unit: string, each: number, n: number) => ({ argv: Array.from({ length: n }, () => unit.repeat(each)), env: {} });
    for (const r of [many('a', 100_000, 62), many('a', 100_000, 63), many('\u00e9', 40_000, 52), many('\u00e9', 40_000, 80)]) {
      expect(precheckRequest(r)).toBe(precheckExact(r));
    }
  });
});
