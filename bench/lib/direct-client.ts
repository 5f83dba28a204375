/**
 * A minimal in-process wrapper stand-in: speaks the wire protocol to an
 * EscalationSession over its client socket (handshake datagram with one
 * SOCK_STREAM end in SCM_RIGHTS, one request frame, one response frame).
 * Used where 100k real wrapper execs would take too long (RSS, rules scaling):
 * the server does exactly the work it does for a real wrapper.
 */
import { encodeJsonFrame, FrameReader } from '../../src/protocol/codec.js';
import { HANDSHAKE_BYTE } from '../../src/protocol/constants.js';
import { closeFd, Poller, recvMsg, sendMsg, socketPair, type Fd } from '../../src/native/index.js';

export interface WireRequest {
  readonly file: string;
  readonly argv: readonly string[];
  readonly workdir: string;
  readonly env: Readonly<Record<string, string>>;
}

const HANDSHAKE = Buffer.from([HANDSHAKE_BYTE]);

export class DirectClient {
  constructor(private readonly clientFd: Fd) {}

  /** One request → the server's parsed response (e.g. `{action: "Run"}`). */
  async request(req: WireRequest): Promise<unknown> {
    const [mine, theirs] = socketPair('stream', { cloexec: true, nonblock: true });
    try {
      await this.sendHandshake(theirs);
    } catch (err) {
      closeFd(mine);
      throw err;
    } finally {
      closeFd(theirs);
    }
    try {
      const frame = encodeJsonFrame(req);
      // A request is far smaller than the socket buffer: one send writes it whole.
      const n = sendMsg(mine, frame);
      if (n !== frame.length) throw new Error(`short write of a request frame (${String(n)} of ${frame.length} bytes)`);
      return await readOneFrame(mine);
    } finally {
      closeFd(mine);
    }
  }

  /** The session socket's queue is short (net.unix.max_dgram_qlen): retry on EAGAIN after yielding to the server. */
  private async sendHandshake(fd: Fd): Promise<void> {
    for (let tries = 0; ; tries++) {
      const r = sendMsg(this.clientFd, HANDSHAKE, [fd]);
      if (r !== 'again') return;
      if (tries > 100_000) throw new Error('escalation socket stayed full');
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
}

function readOneFrame(fd: Fd): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const reader = new FrameReader();
    const poller = new Poller(fd, (err, events) => {
      const fail = (e: Error) => {
        poller.close();
        reject(e);
      };
      if (err) return fail(err);
      for (;;) {
        let got;
        try {
          got = recvMsg(fd, 64 * 1024, 0);
        } catch (e) {
          return fail(e as Error);
        }
        if (got === 'again') {
          if (events.disconnect) return fail(new Error('server hung up without a response'));
          return;
        }
        if (got === 'eof') return fail(new Error('server closed the connection without a response'));
        const frames = reader.push(got.bytes);
        if (frames.length > 0) {
          poller.close();
          try {
            resolve(JSON.parse(frames[0]!.toString('utf8')));
          } catch (e) {
            reject(e as Error);
          }
          return;
        }
      }
    });
    poller.start({ readable: true });
  });
}

/** Run `total` requests with `concurrency` in flight; returns client-side round trips in µs. */
export async function drive(client: DirectClient, req: WireRequest, total: number, concurrency: number, expect?: (res: unknown) => void): Promise<number[]> {
  const rtts: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next < total) {
      next++;
      const t0 = process.hrtime.bigint();
      const res = await client.request(req);
      rtts.push(Number(process.hrtime.bigint() - t0) / 1000);
      expect?.(res);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  return rtts;
}
