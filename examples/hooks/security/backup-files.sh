#!/bin/sh
# Session-start backup hook: copies the files of the session's working
# directory that match the backup patterns into
#   $CODEX_BACKUP_DIR/session_<id>_<YYYYmmdd_HHMMSS>_<pid>/
# keeping the directory structure, writes MANIFEST.txt, keeps only the newest
# $CODEX_BACKUP_KEEP (default 10) backups, and appends one line to the backup log.
#
# Settings (environment):
#   CODEX_BACKUP_DIR       default ~/.codex/backups
#   CODEX_BACKUP_KEEP      default 10
#   CODEX_BACKUP_PATTERNS  space-separated file-name globs (default below)
#   CODEX_BACKUP_MAX_FILES default 5000 (stop copying past this many files)
#   CODEX_BACKUP_LOG       default ~/.codex/backup.log
# Prints nothing on stdout (no opinion); progress goes to stderr.
set -eu

SRC=${CODEX_CWD:-${CODEX_WORKDIR:-$PWD}}
BACKUP_ROOT=${CODEX_BACKUP_DIR:-$HOME/.codex/backups}
KEEP=${CODEX_BACKUP_KEEP:-10}
MAX_FILES=${CODEX_BACKUP_MAX_FILES:-5000}
LOG=${CODEX_BACKUP_LOG:-$HOME/.codex/backup.log}
PATTERNS=${CODEX_BACKUP_PATTERNS:-'*.py *.js *.mjs *.cjs *.ts *.go *.rs *.c *.h *.java *.rb *.sh *.json *.yml *.yaml *.toml *.ini *.cfg *.md Dockerfile Makefile requirements.txt'}

case $KEEP in ''|*[!0-9]*) echo "backup-files: CODEX_BACKUP_KEEP must be a number" >&2; exit 1;; esac
[ -d "$SRC" ] || { echo "backup-files: source directory $SRC does not exist" >&2; exit 1; }

sid=$(printf '%s' "${CODEX_SESSION_ID:-unknown}" | tr -cd '[:alnum:]_-')
dest="$BACKUP_ROOT/session_${sid}_$(date +%Y%m%d_%H%M%S)_$$"
mkdir -p "$dest"
root_real=$(cd "$BACKUP_ROOT" && pwd -P)

# find expression: -name p1 -o -name p2 ... (globbing off so the patterns reach find intact)
set -f
first=1
set --
for p in $PATTERNS; do
  if [ $first = 1 ]; then set -- -name "$p"; first=0; else set -- "$@" -o -name "$p"; fi
done
set +f
[ $# -gt 0 ] || { echo "backup-files: no patterns" >&2; exit 1; }

list="$dest/.files"
# Never descend into VCS metadata, dependency trees or the backups themselves.
find "$SRC" \( -name .git -o -name node_modules -o -path "$root_real" -o -path "$BACKUP_ROOT" \) -prune \
  -o -type f \( "$@" \) -print > "$list"

count=0
: > "$dest/.copied"
while IFS= read -r f; do
  [ "$count" -lt "$MAX_FILES" ] || break
  rel=${f#"$SRC"/}
  mkdir -p "$dest/$(dirname "$rel")"
  if cp -p "$f" "$dest/$rel" 2>/dev/null; then
    printf '%s\n' "$rel" >> "$dest/.copied"
    count=$((count + 1))
  else
    echo "backup-files: could not copy $rel" >&2
  fi
done < "$list"

{
  echo "# Codex session backup"
  echo "session: ${CODEX_SESSION_ID:-unknown}"
  echo "source: $SRC"
  echo "created: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "files: $count"
  echo "patterns: $PATTERNS"
  echo
  sort "$dest/.copied"
} > "$dest/MANIFEST.txt"
rm -f "$list" "$dest/.copied"

# Keep the newest $KEEP backups (by modification time).
ls -1dt "$BACKUP_ROOT"/session_* 2>/dev/null | tail -n +$((KEEP + 1)) | while IFS= read -r old; do
  rm -rf "$old"
done

mkdir -p "$(dirname "$LOG")"
echo "[$(date -u +%Y-%m-%dT%H:%M:%SZ)] SESSION_BACKUP: Session ${CODEX_SESSION_ID:-unknown} - $count files backed up to $dest" >> "$LOG"
echo "backup-files: $count files backed up to $dest" >&2
