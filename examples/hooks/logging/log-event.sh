#!/bin/sh
# Appends one line per event to $CODEX_HOOKS_LOG (default ~/.codex/hooks.log).
# Works for every event: it only reads the seed's CODEX_* variables.
set -eu
LOG=${CODEX_HOOKS_LOG:-$HOME/.codex/hooks.log}
mkdir -p "$(dirname "$LOG")"
line="[${CODEX_TIMESTAMP:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}] ${CODEX_EVENT_TYPE:-unknown} session=${CODEX_SESSION_ID:-}"
[ -n "${CODEX_COMMAND:-}" ] && line="$line command=$CODEX_COMMAND"
[ -n "${CODEX_OUTCOME:-}" ] && line="$line outcome=$CODEX_OUTCOME"
[ -n "${CODEX_EXIT_CODE:-}" ] && line="$line exit=$CODEX_EXIT_CODE"
[ -n "${CODEX_DURATION:-}" ] && line="$line duration_ms=$CODEX_DURATION"
[ -n "${CODEX_REASON:-}" ] && line="$line reason=$CODEX_REASON"
[ -n "${CODEX_ERROR:-}" ] && line="$line error=$CODEX_ERROR kind=${CODEX_CONTEXT:-}"
printf '%s\n' "$line" >> "$LOG"
