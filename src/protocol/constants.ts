/** Environment variable holding the inherited escalation datagram socket's fd number. */
export const ESCALATE_SOCKET_ENV_VAR = 'CODEX_ESCALATE_SOCKET';
/**
 * Set by the patched bash in front of the wrapper's environment only: the
 * socket's fd as the shell captured it at startup (the command's own
 * environment may lack CODEX_ESCALATE_SOCKET: `exec -c`, `export -n`). The
 * wrapper removes it before anything else.
 */
export const SHELL_SOCKET_ENV_VAR = 'CODEX_ESCALATE_SHELL_SOCKET';
/**
 * Set by the patched bash when it runs a `#!`-less script itself, as stock bash
 * does: the wrapper only decides, writes one byte to this pipe fd for Run and
 * exits 0 (Escalate, Deny and rewrites it handles as usual). Removed likewise.
 */
export const DECIDE_FD_ENV_VAR = 'CODEX_ESCALATE_DECIDE_FD';
/** Environment variable the patched bash reads to find the exec wrapper. */
export const EXEC_WRAPPER_ENV_VAR = 'EXEC_WRAPPER';
/** Legacy alias understood by older patched bash builds. */
export const LEGACY_BASH_EXEC_WRAPPER_ENV_VAR = 'BASH_EXEC_WRAPPER';
/**
 * "1" in the shell's environment when the session decides direct execs: the
 * wrapper then installs its exec filter before its request and attaches the
 * listener to it (docs/protocol.md, "Direct execs"). A hint only (the env is
 * the sandbox's): the server still refuses a listener it did not ask for.
 * Any other value (our sessions set "0" when off): the listener is handed
 * over after the Run reply, if asked, as without the hint.
 */
export const DIRECT_EXECS_ENV_VAR = 'CODEX_ESCALATE_DIRECT';
/**
 * Set by the patched bash in front of the wrapper's environment only: the
 * pipeline the exec is a stage of, as bash prints it (its make_command_string,
 * at most PIPELINE_MAX_BYTES, ending in PIPELINE_TRUNCATED_MARKER when cut);
 * empty when the exec is no stage. The wrapper removes every copy and sends
 * the shell's (the first) as the request's `pipeline`. Hostile like anything
 * the sandbox sends: a hint for hooks, never for rules or escalation.
 */
export const PIPELINE_ENV_VAR = 'CODEX_ESCALATE_PIPELINE';
/** Most bytes (UTF-8, on the wire) a request's `pipeline` may have; the patched bash cuts there (EXEC_WRAPPER_PIPELINE_MAX). */
export const PIPELINE_MAX_BYTES = 4096;
/** How a pipeline the patched bash cut at PIPELINE_MAX_BYTES ends (EXEC_WRAPPER_PIPELINE_MARK). */
export const PIPELINE_TRUNCATED_MARKER = '...[truncated]';
/** Variables the wrapper strips from the env it reports (they describe the interception itself). */
export const PROTOCOL_ENV_VARS: readonly string[] = [
  ESCALATE_SOCKET_ENV_VAR,
  SHELL_SOCKET_ENV_VAR,
  DECIDE_FD_ENV_VAR,
  EXEC_WRAPPER_ENV_VAR,
  LEGACY_BASH_EXEC_WRAPPER_ENV_VAR,
  DIRECT_EXECS_ENV_VAR,
  PIPELINE_ENV_VAR,
];

/** Upstream caps SCM_RIGHTS at 16 fds per message; we accept no more so either peer interoperates. */
export const MAX_FDS_PER_MESSAGE = 16;
/** Stream frames: 4-byte little-endian length prefix. */
export const LENGTH_PREFIX_SIZE = 4;
/**
 * Largest frame we accept. ARG_MAX is 2 MiB on Linux and JSON escaping can
 * grow a string up to 6x, so 16 MiB carries any real exec while a hostile
 * 4 GiB prefix is refused before anything is allocated.
 */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;
/** The handshake datagram is exactly one 0x00 byte carrying one fd. */
export const HANDSHAKE_BYTE = 0x00;

/**
 * The fd number the server hands the escalation socket to the shell at. The
 * patched bash moves it at startup to SHELL_SOCKET_FD_MIN or above (where none
 * of its own fds land) and away from any redirection that targets it.
 */
export const SHELL_SOCKET_FD = 63;
/**
 * Where the patched bash keeps the socket (patches/bash-exec-wrapper.patch,
 * EXEC_WRAPPER_FD_MIN): above bash's own fds, pipes, coprocs and process
 * substitutions below 64, the script and tty fds at 255 and below.
 */
export const SHELL_SOCKET_FD_MIN = 256;
/**
 * @deprecated No longer set: a command's own environment must not choose the
 * program the wrapper runs undecided. The ENOEXEC shell now travels in the
 * server's Run reply (`shell`, docs/protocol.md). Kept for API compatibility.
 */
export const ESCALATE_SHELL_ENV_VAR = 'CODEX_ESCALATE_SHELL';
/** A command inheriting more fds than this is refused (each one is a kernel object handed across). */
export const MAX_FORWARDED_FDS = 1024;
/**
 * Extension level at which the wrapper attaches an O_PATH fd on the program to
 * its request (docs/protocol.md); also the level our wrapper announces.
 */
export const EXT_PROGRAM_FD = 2;
/**
 * Extension level at which the wrapper can install the direct-exec filter and
 * hand its seccomp listener back when a Run reply says `"listener": true`
 * (docs/protocol.md, "Direct execs").
 */
export const EXT_EXEC_LISTENER = 3;
/** The extension level our wrapper announces. */
export const WRAPPER_EXT_LEVEL = EXT_EXEC_LISTENER;
/**
 * Bounds on what the server reads from a process's memory for a notified
 * (direct) exec: the path, each argument, and argv in total. Like the wire
 * request's MAX_FRAME_BYTES: a hostile process cannot make the server read
 * or allocate without bound; anything larger is denied.
 */
export const NOTIFY_MAX_PATH_BYTES = 4096;
export const NOTIFY_MAX_ARG_BYTES = 128 * 1024;
export const NOTIFY_MAX_ARGV_BYTES = 2 * 1024 * 1024;
export const NOTIFY_MAX_ARGC = 65536;
