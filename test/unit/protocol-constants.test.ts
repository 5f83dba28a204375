import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';
import * as nativeApi from '../../src/native/index.js';
import * as protocol from '../../src/protocol/constants.js';

/**
 * The C sides copy their wire and addon constants from TypeScript. Each
 * header's defines are parsed and compared with the TS value they mirror; a
 * define without a mapping fails too, so a new constant cannot drift silently.
 */

type CValue = number | string;

/** `#define NAME VALUE` lines of a header, with integer expressions (`16u * 1024`) evaluated. */
function parseDefines(text: string): Map<string, CValue> {
  const out = new Map<string, CValue>();
  const body = text.replace(/\/\*[\s\S]*?\*\//g, ' ');
  for (const m of body.matchAll(/^#define[ \t]+([A-Z_][A-Z0-9_]*)[ \t]+(.+?)[ \t]*$/gm)) {
    const [, name, raw] = m as unknown as [string, string, string];
    if (/^"(?:[^"\\]|\\.)*"$/.test(raw)) {
      out.set(name, JSON.parse(raw) as string);
      continue;
    }
    const expr = raw.replace(/\b(0x[0-9a-fA-F]+|\d+)[uUlL]+\b/g, '$1');
    if (!/^[\s\d()x*+\-<a-fA-F]+$/.test(expr)) throw new Error(`${name}: cannot evaluate ${raw}`);
    out.set(name, Number(new Function(`return (${expr});`)()));
  }
  return out;
}

const read = (rel: string): string => readFileSync(path.join(packageRoot, rel), 'utf8');

const WRAPPER_DEFINES: Record<string, CValue> = {
  SOCKET_ENV: protocol.ESCALATE_SOCKET_ENV_VAR,
  SHELL_SOCKET_ENV: protocol.SHELL_SOCKET_ENV_VAR,
  DECIDE_FD_ENV: protocol.DECIDE_FD_ENV_VAR,
  WRAPPER_ENV: protocol.EXEC_WRAPPER_ENV_VAR,
  LEGACY_WRAPPER_ENV: protocol.LEGACY_BASH_EXEC_WRAPPER_ENV_VAR,
  DIRECT_ENV: protocol.DIRECT_EXECS_ENV_VAR,
  PIPELINE_ENV: protocol.PIPELINE_ENV_VAR,
  HANDSHAKE_BYTE: protocol.HANDSHAKE_BYTE,
  MAX_FDS_PER_MESSAGE: protocol.MAX_FDS_PER_MESSAGE,
  MAX_FORWARDED_FDS: protocol.MAX_FORWARDED_FDS,
  MAX_REQUEST_BYTES: protocol.MAX_FRAME_BYTES,
  EXT_LEVEL: String(protocol.WRAPPER_EXT_LEVEL),
};

const NATIVE_DEFINES: Record<string, CValue> = {
  CODEX_MAX_RECV_BYTES: nativeApi.MAX_RECV_BYTES,
  CODEX_MAX_SCM_FDS: nativeApi.MAX_SCM_FDS,
};

function compare(header: string, mapping: Record<string, CValue>): void {
  const defines = parseDefines(header);
  // Include guards and feature macros carry no value.
  const valued = [...defines.keys()].filter((k) => !k.endsWith('_H') && k !== 'NAPI_VERSION');
  expect(valued.sort()).toEqual(Object.keys(mapping).sort());
  for (const [name, value] of Object.entries(mapping)) expect({ name, value: defines.get(name) }).toEqual({ name, value });
}

describe('C constants match their TypeScript source', () => {
  it('wrapper/protocol.h equals src/protocol/constants.ts', () => {
    compare(read('wrapper/protocol.h'), WRAPPER_DEFINES);
  });

  it('the bash patch uses the same names and socket floor', () => {
    const patch = read('patches/bash-exec-wrapper.patch');
    const added = patch
      .split('\n')
      .filter((l) => l.startsWith('+#define EXEC_WRAPPER_'))
      .map((l) => l.slice(1))
      .join('\n');
    const defines = parseDefines(added);
    expect(Object.fromEntries(defines)).toEqual({
      EXEC_WRAPPER_FD_MIN: protocol.SHELL_SOCKET_FD_MIN,
      EXEC_WRAPPER_SOCKET_ENV: protocol.ESCALATE_SOCKET_ENV_VAR,
      EXEC_WRAPPER_SHELL_SOCKET_ENV: protocol.SHELL_SOCKET_ENV_VAR,
      EXEC_WRAPPER_DECIDE_ENV: protocol.DECIDE_FD_ENV_VAR,
      EXEC_WRAPPER_PIPELINE_ENV: protocol.PIPELINE_ENV_VAR,
      EXEC_WRAPPER_PIPELINE_MAX: protocol.PIPELINE_MAX_BYTES,
      EXEC_WRAPPER_PIPELINE_MARK: protocol.PIPELINE_TRUNCATED_MARKER,
    });
  });

  it('native/common.h equals src/native/index.ts', () => {
    compare(read('native/common.h'), NATIVE_DEFINES);
  });

  it('the wrapper spells no protocol value outside protocol.h', () => {
    const src = read('wrapper/codex-execve-wrapper.c') + read('wrapper/json.c') + read('wrapper/json.h');
    for (const v of protocol.PROTOCOL_ENV_VARS) expect(src, v).not.toContain(`"${v}"`);
    expect(src).toContain('#include "protocol.h"');
  });

  it('the server strips exactly the variables the wrapper treats as protocol', () => {
    const c = read('wrapper/codex-execve-wrapper.c');
    const list = /is_protocol_var[\s\S]*?vars\[\] = \{([^}]*)\}/.exec(c)?.[1] ?? '';
    const defines = parseDefines(read('wrapper/protocol.h'));
    const names = list.split(',').map((s) => defines.get(s.trim()));
    expect(names.sort()).toEqual([...protocol.PROTOCOL_ENV_VARS].sort());
  });

  it('a drifted or unmapped define is caught', () => {
    const header = read('wrapper/protocol.h');
    const drifted = header.replace('#define MAX_FORWARDED_FDS 1024', '#define MAX_FORWARDED_FDS 1025');
    expect(drifted).not.toBe(header);
    expect(() => compare(drifted, WRAPPER_DEFINES)).toThrow();
    expect(() => compare(`${header}\n#define NEW_LIMIT 7\n`, WRAPPER_DEFINES)).toThrow();
    expect(() => compare(header.replace('"EXEC_WRAPPER"', '"EXEC_WRAPPEX"'), WRAPPER_DEFINES)).toThrow();
    expect(parseDefines('#define A (16u * 1024 * 1024)\n#define B 0x00\n#define C "x"')).toEqual(
      new Map<string, CValue>([['A', 16 * 1024 * 1024], ['B', 0], ['C', 'x']]),
    );
  });
});
