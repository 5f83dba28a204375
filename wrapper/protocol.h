/*
 * Wire constants the wrapper shares with the Node server. The source of
 * truth is src/protocol/constants.ts (the name in brackets);
 * test/unit/protocol-constants.test.ts parses this file and fails when a
 * value here differs or a define has no TypeScript counterpart.
 */
#ifndef CODEX_PROTOCOL_H
#define CODEX_PROTOCOL_H

/* [ESCALATE_SOCKET_ENV_VAR] fd number of the inherited datagram socket. */
#define SOCKET_ENV "CODEX_ESCALATE_SOCKET"
/* [SHELL_SOCKET_ENV_VAR] the socket's fd as the patched bash captured it at
 * startup, in front of the command's environment; removed before anything. */
#define SHELL_SOCKET_ENV "CODEX_ESCALATE_SHELL_SOCKET"
/* [DECIDE_FD_ENV_VAR] decide only (a #!-less script the shell runs itself):
 * on Run, write one byte to this pipe fd and exit 0. */
#define DECIDE_FD_ENV "CODEX_ESCALATE_DECIDE_FD"
/* [PIPELINE_ENV_VAR] the pipeline this exec is a stage of, as the patched bash
 * printed it (empty: none), in front of the command's environment; moved into
 * the request's "pipeline" and removed. A hint for hooks only. */
#define PIPELINE_ENV "CODEX_ESCALATE_PIPELINE"
/* [EXEC_WRAPPER_ENV_VAR] how the patched bash finds us. */
#define WRAPPER_ENV "EXEC_WRAPPER"
/* [LEGACY_BASH_EXEC_WRAPPER_ENV_VAR] older patched bash builds. */
#define LEGACY_WRAPPER_ENV "BASH_EXEC_WRAPPER"
/* [DIRECT_EXECS_ENV_VAR] "1": attach the exec filter's listener to the request [ext 3]. */
#define DIRECT_ENV "CODEX_ESCALATE_DIRECT"
/* [HANDSHAKE_BYTE] the one byte of the handshake datagram. */
#define HANDSHAKE_BYTE 0x00
/* [MAX_FDS_PER_MESSAGE] upstream's per-message SCM_RIGHTS cap. */
#define MAX_FDS_PER_MESSAGE 16
/* [MAX_FORWARDED_FDS] the server refuses a command inheriting more. */
#define MAX_FORWARDED_FDS 1024
/* [MAX_FRAME_BYTES] largest frame the server accepts. */
#define MAX_REQUEST_BYTES (16u * 1024 * 1024)
/* [WRAPPER_EXT_LEVEL] protocol extension level we announce (docs/protocol.md). */
#define EXT_LEVEL "3"

#endif
