# Workload 1: N execs of /bin/true (the pure cost of exec + interception).
# Usage: bash exec-loop.sh [N]   (default 2000)
# Any failed exec (a Deny, a wrapper error) stops the loop with its status,
# so a benchmark run can never silently measure fewer execs than it claims.
n=${1:-2000}
for ((i = 0; i < n; i++)); do
  /bin/true || { s=$?; echo "exec-loop: exec $i of /bin/true failed with status $s" >&2; exit "$s"; }
done
