# Workload 2: P parallel copies of the exec loop via xargs -P.
# Usage: bash concurrency.sh P N
# $BASH is the shell running this script, so the loops run under the same
# bash (stock or patched); under interception they inherit EXEC_WRAPPER and
# the escalation socket, so every /bin/true in every loop is intercepted.
p=${1:-16}
n=${2:-2000}
loop=$(dirname "$0")/exec-loop.sh
seq "$p" | xargs -P "$p" -I{} "$BASH" "$loop" "$n"
