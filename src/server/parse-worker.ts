/** Worker thread of OffLoopParser: decodes one large request frame per message. */
import { parentPort } from 'node:worker_threads';
import { decodeForWorker } from './parse-request.js';

parentPort?.on('message', (m: { buf: ArrayBuffer }) => {
  parentPort?.postMessage(decodeForWorker(Buffer.from(m.buf)));
});
