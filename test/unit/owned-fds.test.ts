import { fstatSync, openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { closeQuietly, OwnedFds } from '../../src/server/owned-fds.js';

const isOpen = (fd: number): boolean => {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
};
const open3 = () => [openSync('/dev/null', 'r'), openSync('/dev/null', 'r'), openSync('/dev/null', 'r')] as const;

describe('OwnedFds', () => {
  it('closeAll closes every fd still owned, once (a second closeAll touches nothing)', () => {
    const [a, b, c] = open3();
    const owned = new OwnedFds([a, b]);
    owned.add(c);
    expect(owned.size).toBe(3);
    owned.closeAll();
    expect([a, b, c].map(isOpen)).toEqual([false, false, false]);
    expect(owned.size).toBe(0);
    // The numbers are free again: a new open may reuse one, and a second closeAll must not close it.
    const reused = openSync('/dev/null', 'r');
    owned.closeAll();
    expect(isOpen(reused)).toBe(true);
    closeQuietly(reused);
  });

  it('an fd handed over with take() or takeAll() is left open', () => {
    const [a, b, c] = open3();
    const owned = new OwnedFds([a, b, c]);
    expect(owned.take(b)).toBe(b);
    expect(owned.take(b)).toBeUndefined();
    owned.closeAll();
    expect([a, b, c].map(isOpen)).toEqual([false, true, false]);
    const rest = new OwnedFds([b]);
    expect(rest.takeAll()).toEqual([b]);
    rest.closeAll();
    expect(isOpen(b)).toBe(true);
    closeQuietly(b);
  });

  it('closeQuietly on an fd that is already closed does not throw', () => {
    const [a] = open3();
    closeQuietly(a);
    expect(isOpen(a)).toBe(false);
    expect(() => closeQuietly(a)).not.toThrow();
  });
});
