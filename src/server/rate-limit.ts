/**
 * Lets at most `perSecond` events through each second and counts the rest, so
 * a flood of bad input yields a bounded number of log lines that still say
 * how much was dropped.
 */
export class RateLimiter {
  private windowStart = 0;
  private inWindow = 0;
  private suppressed = 0;

  constructor(private readonly perSecond: number) {}

  /** Returns null when suppressed, else the number suppressed since the last one let through. */
  take(now: number = Date.now()): number | null {
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (this.inWindow >= this.perSecond) {
      this.suppressed++;
      return null;
    }
    this.inWindow++;
    const dropped = this.suppressed;
    this.suppressed = 0;
    return dropped;
  }
}
