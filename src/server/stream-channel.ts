import { FrameReader, ProtocolError, type ByteBudget } from '../protocol/codec.js';
import { MAX_FDS_PER_MESSAGE, MAX_FRAME_BYTES } from '../protocol/constants.js';
import { Poller, recvMsg, sendMsg, type Fd } from '../native/index.js';
import { closeQuietly, OwnedFds } from './owned-fds.js';

/** A frame as it arrived: JSON payload bytes plus any fds that rode on it. */
export interface ReceivedFrame {
  readonly payload: Buffer;
  readonly fds: Fd[];
}

export class ChannelClosedError extends Error {
  override readonly name = 'ChannelClosedError';
}

export class ChannelTimeoutError extends Error {
  override readonly name = 'ChannelTimeoutError';
}

// Reading in bounded chunks keeps one hostile client from making us allocate
// (or hold) more than a frame's worth at a time.
const READ_CHUNK = 256 * 1024;

/**
 * The private SOCK_STREAM connection to one wrapper. Owns the fd: close()
 * releases it and any fds received but not yet handed out.
 */
export class StreamChannel {
  private readonly reader: FrameReader;
  /** Made on first need: a request already in the stream (our wrapper writes it before the handshake) is read and answered without one. */
  private poller: Poller | null = null;
  private wantRead = false;
  private wantWrite = false;
  private wake: (() => void) | null = null;
  private hangup = false;
  private closed = false;
  /** Fds received with the bytes of a frame not yet complete: ours until the frame is handed out. */
  private readonly pendingFds = new OwnedFds();
  private hangupListener: (() => void) | null = null;

  constructor(
    readonly fd: Fd,
    maxFrameBytes: number = MAX_FRAME_BYTES,
    budget?: ByteBudget,
  ) {
    this.reader = new FrameReader(maxFrameBytes, budget);
  }

  private ensurePoller(): Poller {
    this.poller ??= new Poller(this.fd, (err, events) => {
      if (err || events.disconnect) this.hangup = true;
      const wake = this.wake;
      this.wake = null;
      if (wake) wake();
      else if (this.hangup || events.readable) this.notifyIdleEvent();
    });
    return this.poller;
  }

  /** Read one whole frame; fds that arrived with its bytes are returned with it (the caller owns them). */
  async readFrame(timeoutMs?: number): Promise<ReceivedFrame> {
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    for (;;) {
      const frame = this.tryReadFrame();
      if (frame !== 'again') return frame;
      if (this.hangup) throw new ChannelClosedError('peer hung up');
      await this.waitFor('read', deadline);
    }
  }

  /**
   * One non-blocking read pass: a whole frame, or 'again' when the socket has
   * nothing more right now. Throws ChannelClosedError at EOF.
   */
  tryReadFrame(): ReceivedFrame | 'again' {
    for (;;) {
      this.assertOpen();
      const want = Math.min(this.reader.wanted, READ_CHUNK);
      const got = recvMsg(this.fd, want, MAX_FDS_PER_MESSAGE);
      if (got === 'again') return 'again';
      if (got === 'eof') {
        this.hangup = true;
        throw new ChannelClosedError(this.reader.idle ? 'peer closed the connection' : 'peer closed the connection in the middle of a frame');
      }
      this.pendingFds.add(...got.fds);
      // Only a datagram socket truncates: the rest of its message is gone, so the byte stream is not what was sent.
      if (got.truncated) throw new ProtocolError('connection is not a stream socket (message truncated)');
      if (got.controlTruncated) throw new ProtocolError(`more than ${MAX_FDS_PER_MESSAGE} fds attached to one message`);
      const frames = this.reader.push(got.bytes);
      // We asked for at most the rest of this frame, so at most one completes.
      if (frames.length > 0) return { payload: frames[0]!, fds: this.pendingFds.takeAll() };
    }
  }

  /** Write a whole frame, attaching fds to its first byte. */
  async writeFrame(frame: Buffer, fds: readonly Fd[] = []): Promise<void> {
    let offset = 0;
    let attach = fds;
    while (offset < frame.length) {
      this.assertOpen();
      const n = sendMsg(this.fd, offset === 0 ? frame : frame.subarray(offset), attach);
      if (n === 'again') {
        await this.waitFor('write', undefined);
        continue;
      }
      offset += n;
      attach = [];
    }
  }

  /**
   * writeFrame without a promise when the socket takes the whole frame at
   * once, as it nearly always does for a reply: undefined then, else the
   * promise of the rest.
   */
  writeFrameSoon(frame: Buffer): Promise<void> | undefined {
    this.assertOpen();
    const n = sendMsg(this.fd, frame);
    if (n === frame.length) return undefined;
    return this.writeFrame(n === 'again' ? frame : frame.subarray(n));
  }

  /**
   * Watch for the peer going away (or sending anything) while we are not
   * reading: used during an escalated run, where the wrapper's death must
   * terminate the command.
   */
  onPeerActivity(listener: (() => void) | null): void {
    this.hangupListener = listener;
    this.wantRead = listener !== null;
    this.rearm();
  }

  /** True once the peer has hung up or the fd errored. */
  get peerGone(): boolean {
    return this.hangup;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.reader.dispose();
    this.poller?.close();
    this.pendingFds.closeAll();
    closeQuietly(this.fd);
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private notifyIdleEvent(): void {
    const listener = this.hangupListener;
    if (listener) listener();
  }

  private assertOpen(): void {
    if (this.closed) throw new ChannelClosedError('connection closed');
  }

  private waitFor(kind: 'read' | 'write', deadline: number | undefined): Promise<void> {
    if (kind === 'read') this.wantRead = true;
    else this.wantWrite = true;
    this.rearm();
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      if (deadline !== undefined) {
        const ms = Math.max(0, deadline - Date.now());
        timer = setTimeout(() => {
          this.wake = null;
          reject(new ChannelTimeoutError(`no complete frame within the time limit`));
        }, ms);
      }
      this.wake = () => {
        if (timer) clearTimeout(timer);
        if (kind === 'read') this.wantRead = this.hangupListener !== null;
        else this.wantWrite = false;
        this.rearm();
        resolve();
      };
    });
  }

  private rearm(): void {
    if (this.closed) return;
    if (this.wantRead || this.wantWrite) this.ensurePoller().start({ readable: this.wantRead, writable: this.wantWrite });
    else this.poller?.stop();
  }
}
