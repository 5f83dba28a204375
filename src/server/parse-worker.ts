/** Worker thread of OffLoopParser: decodes one large request frame per message. */
import os from 'node:os';
import { parentPort } from 'node:worker_threads';
import { decodeForWorker } from './parse-request.js';

// On Linux the nice value is per thread: decoding huge frames yields the CPU to the decision loop (and to the workload).
try {
  os.setPriority(0, Math.min(19, os.getPriority(0) + 10));
} catch {
  // Not permitted here: decode at the loop's priority.
}

parentPort?.on('message', (m: { buf: ArrayBuffer }) => {
  void decodeForWorker(Buffer.from(m.buf)).then((reply) => parentPort?.postMessage(reply));
});
