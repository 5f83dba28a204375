/** Worker thread of OffLoopParser: decodes one large request frame per message. */
import os from 'node:os';
import { parentPort } from 'node:worker_threads';
import { loadSchemas } from '../protocol/lazy-schemas.js';
import { decodeForWorker } from './parse-request.js';

// On Linux the nice value is per thread: decoding huge frames yields the CPU to the decision loop (and to the workload).
try {
  os.setPriority(0, Math.min(19, os.getPriority(0) + 10));
} catch {
  // Not permitted here: decode at the loop's priority.
}

// This thread exists only for large frames, where the schema is likeliest to be needed: load it as the thread
// starts, alongside the first frame's transfer, not after (the main thread's start-up is not paid here).
void loadSchemas();

parentPort?.on('message', (m: { buf: ArrayBuffer }) => {
  void decodeForWorker(Buffer.from(m.buf)).then((reply) => parentPort?.postMessage(reply));
});
