#!/usr/bin/env bash
# npm install hook (also fine to run by hand): build the N-API addon with the
# node-gyp bundled with npm, then the C wrapper.
set -euo pipefail
cd "$(dirname "$0")/.."
args=(rebuild)
# Build against the installed Node headers when npm has not been pointed at any (no download needed).
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node_api.h ]; then args+=(--nodedir=/usr); fi
if command -v node-gyp >/dev/null 2>&1; then
  gyp=(node-gyp)
elif [ -n "${npm_config_node_gyp:-}" ]; then
  gyp=(node "$npm_config_node_gyp")
else
  npm_root=$(dirname "$(readlink -f "$(command -v npm)")")/..
  gyp=(node "$npm_root/node_modules/node-gyp/bin/node-gyp.js")
fi
"${gyp[@]}" "${args[@]}"
make -C wrapper
