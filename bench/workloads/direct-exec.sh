# Workload 4: N direct execs of /bin/true made by xargs, not by the shell
# (layer 2: each one is a seccomp user notification the server decides).
# Usage: bash direct-exec.sh [N]   (default 2000)
n=${1:-2000}
seq 1 "$n" | xargs -n1 /bin/true
