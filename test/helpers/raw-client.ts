import { closeFd, Poller, recvMsg, sendMsg, socketPair, type Fd } from '../../src/native/index.js';
import { encodeJsonFrame, FrameReader, parseJsonPayload } from '../../src/protocol/codec.js';

/**
 * A client that speaks the protocol directly, as a hostile sandboxed process
 * could (no wrapper): handshake on the session's datagram fd, then frames on
 * a private stream.
 */
export class RawClient {
  readonly fd: Fd;
  private readonly reader = new FrameReader();
  private readonly poller: Poller;
  private waiting: (() => void) | null = null;
  private closed = false;

  private constructor(fd: Fd) {
    this.fd = fd;
    this.poller = new Poller(fd, () => {
      const w = this.waiting;
      this.waiting = null;
      w?.();
    });
  }

  /** Connect through a session's client datagram fd. */
  static connect(datagramFd: Fd): RawClient {
    const [mine, theirs] = socketPair('stream', { cloexec: true, nonblock: true });
    const sent = sendMsg(datagramFd, Buffer.of(0), [theirs]);
    closeFd(theirs);
    if (sent !== 1) throw new Error(`handshake not sent (${String(sent)})`);
    return new RawClient(mine);
  }

  /**
   * Connect as our wrapper does: whatever of `request` fits goes into the stream (fds on its first byte) before
   * the handshake, the rest after it. Returns the client and the bytes that went before.
   */
  static async connectWithRequest(datagramFd: Fd, request: Buffer, fds: readonly Fd[] = []): Promise<{ client: RawClient; early: number }> {
    const [mine, theirs] = socketPair('stream', { cloexec: true, nonblock: true });
    let early = 0;
    while (early < request.length) {
      const n = sendMsg(mine, request.subarray(early), early === 0 ? fds : []);
      if (n === 'again') break;
      early += n;
    }
    const sent = sendMsg(datagramFd, Buffer.of(0), [theirs]);
    closeFd(theirs);
    if (sent !== 1) throw new Error(`handshake not sent (${String(sent)})`);
    const client = new RawClient(mine);
    let off = early;
    while (off < request.length) {
      const n = sendMsg(mine, request.subarray(off), off === 0 ? fds : []);
      if (n === 'again') await client.writable();
      else off += n;
    }
    return { client, early };
  }

  private writable(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.waiting = () => {
        this.poller.stop();
        resolve();
      };
      this.poller.start({ writable: true });
    });
  }

  send(message: unknown, fds: readonly Fd[] = []): void {
    this.sendRaw(encodeJsonFrame(message), fds);
  }

  sendRaw(bytes: Buffer, fds: readonly Fd[] = []): void {
    let off = 0;
    while (off < bytes.length) {
      const n = sendMsg(this.fd, bytes.subarray(off), off === 0 ? fds : []);
      if (n === 'again') throw new Error('socket buffer full');
      off += n;
    }
  }

  /** Next whole frame as JSON, or 'eof'. */
  async receive(timeoutMs = 5000): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = recvMsg(this.fd, 65536, 16);
      if (got === 'eof') return 'eof';
      if (got !== 'again') {
        for (const fd of got.fds) closeFd(fd);
        const frames = this.reader.push(got.bytes);
        if (frames.length) return parseJsonPayload(frames[0]!);
        continue;
      }
      if (Date.now() > deadline) throw new Error('timed out waiting for a frame');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiting = () => {
          clearTimeout(t);
          this.poller.stop();
          resolve();
        };
        this.poller.start({ readable: true });
      });
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.poller.close();
    closeFd(this.fd);
  }
}
