# Workload 1: N execs of /bin/true (the pure cost of exec + interception).
# Usage: bash exec-loop.sh [N]   (default 2000)
n=${1:-2000}
for ((i = 0; i < n; i++)); do
  /bin/true
done
