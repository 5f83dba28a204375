/** The system tools the suites may need (see tools.ts); no vitest import: test/global-setup.ts uses it too. */

/** Each tool and the Debian package that provides it. */
export const TOOLS = {
  bwrap: 'bubblewrap',
  valgrind: 'valgrind',
  strace: 'strace',
  gdb: 'gdb',
  jq: 'jq',
  git: 'git',
  ip: 'iproute2',
  capsh: 'libcap2-bin',
  setcap: 'libcap2-bin',
  'musl-gcc': 'musl-tools',
} as const satisfies Record<string, string>;
export type Tool = keyof typeof TOOLS;

/** Where each process records a missing tool for the one summary line (set by test/global-setup.ts). */
export const MISSING_TOOLS_DIR_ENV = 'CODEX_TEST_MISSING_TOOLS_DIR';

export function installHint(tools: readonly Tool[]): string {
  return `apt-get install ${[...new Set(tools.map((t) => TOOLS[t]))].join(' ')}`;
}
