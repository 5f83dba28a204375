# Spawned PreToolUse hook for the benchmark: the cheapest honest sh hook.
# It reads the event from stdin (builtins only, no extra exec) and answers
# nothing, i.e. "no opinion": the rules decide.
while IFS= read -r _line; do :; done
exit 0
