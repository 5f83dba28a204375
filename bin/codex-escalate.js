#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ at install time (npm's prepare).
import { main } from '../dist/cli/main.js';

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`codex-escalate: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
