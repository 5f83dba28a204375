#!/usr/bin/env bash
# npm install hook: build the N-API addon (node-gyp, bundled with npm) and the C wrapper.
set -euo pipefail
cd "$(dirname "$0")/.."
args=(rebuild)
# Build against the installed Node headers when npm has not been pointed at any (no download needed).
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node_api.h ]; then args+=(--nodedir=/usr); fi
node-gyp "${args[@]}"
make -C wrapper
