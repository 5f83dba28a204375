// Persistent PreToolUse hook for the benchmark: one process for the whole
// session, one JSON line in and one out per exec. Answers {"id"} alone,
// i.e. "no opinion", so the measured cost is the hook round trip itself.
import { createInterface } from 'node:readline';

createInterface({ input: process.stdin }).on('line', (line) => {
  let id = null;
  try {
    id = JSON.parse(line).id;
  } catch {
    // Not JSON: answer nothing; the engine fails the request on its timeout.
    return;
  }
  process.stdout.write(`${JSON.stringify({ id })}\n`);
});
