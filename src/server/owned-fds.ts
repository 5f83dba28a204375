import { closeFd, type Fd } from '../native/index.js';

/** Close an fd we own; a failure means it is already gone, and there is nothing left to release. */
export function closeQuietly(fd: Fd): void {
  try {
    closeFd(fd);
  } catch {
    // Already released.
  }
}

/**
 * The fds a piece of code owns right now. Whatever is still in the set when
 * the owner is done is closed by closeAll(); an fd handed to someone else
 * leaves the set first (take / takeAll), so it is closed exactly once.
 */
export class OwnedFds {
  private readonly fds: Fd[];

  constructor(fds: Iterable<Fd> = []) {
    this.fds = [...fds];
  }

  get size(): number {
    return this.fds.length;
  }

  /** The owned fds, in the order they were added. */
  list(): readonly Fd[] {
    return this.fds;
  }

  add(...fds: readonly Fd[]): void {
    this.fds.push(...fds);
  }

  /** Hand one fd over: it is no longer ours to close. Undefined when we do not own it. */
  take(fd: Fd): Fd | undefined {
    const i = this.fds.indexOf(fd);
    if (i < 0) return undefined;
    this.fds.splice(i, 1);
    return fd;
  }

  /** Hand every fd over, in order. */
  takeAll(): Fd[] {
    return this.fds.splice(0);
  }

  /** Close everything still owned. Idempotent. */
  closeAll(): void {
    for (const fd of this.fds.splice(0)) closeQuietly(fd);
  }
}
