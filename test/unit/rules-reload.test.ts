import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RulesLoadError, RulesStore, type ReloadResult } from '../../src/policy/rules/index.js';

let dir: string;
const stores: RulesStore[] = [];
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'rules-reload-'));
});
afterEach(async () => {
  for (const s of stores.splice(0)) s.close();
  await rm(dir, { recursive: true, force: true });
});

const decisionOf = (store: RulesStore, argv: string[]): string | undefined => store.current.evaluate(argv).decision;

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting for condition');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('RulesStore', () => {
  it('fails to open when the rules do not load', async () => {
    const f = path.join(dir, 'bad.rules');
    await writeFile(f, 'prefix_rule(pattern=[])');
    await expect(RulesStore.open([f])).rejects.toBeInstanceOf(RulesLoadError);
    await expect(RulesStore.open([path.join(dir, 'missing.rules')])).rejects.toThrow(/cannot read rules file: no such file/);
  });

  it('reload(): a broken edit keeps the old policy, a good edit takes effect', async () => {
    const f = path.join(dir, 'p.rules');
    await writeFile(f, 'prefix_rule(pattern=["rm"], decision="forbidden")\n');
    const results: ReloadResult[] = [];
    const store = await RulesStore.open([f], { onReload: (r) => results.push(r) });
    stores.push(store);
    const before = store.current;
    expect(decisionOf(store, ['rm'])).toBe('forbidden');

    await writeFile(f, 'prefix_rule(pattern=["rm"], decision="forbiden")\n');
    expect(await store.reload()).toBe(false);
    expect(store.current).toBe(before);
    expect(decisionOf(store, ['rm'])).toBe('forbidden');
    const failed = results[0];
    expect(failed?.ok).toBe(false);
    expect(failed?.ok === false && failed.error.message).toMatch(/p\.rules:1:38: invalid decision "forbiden"/);

    // A failing example is a failed load too.
    await writeFile(f, 'prefix_rule(pattern=["rm"], decision="prompt", match=["ls"])\n');
    expect(await store.reload()).toBe(false);
    expect(decisionOf(store, ['rm'])).toBe('forbidden');

    await writeFile(f, 'prefix_rule(pattern=["rm"], decision="prompt")\n');
    expect(await store.reload()).toBe(true);
    expect(decisionOf(store, ['rm'])).toBe('prompt');
    expect(results.map((r) => r.ok)).toEqual([false, false, true]);
  });

  it('a deleted file is a failed reload that keeps the previous rules', async () => {
    const f = path.join(dir, 'p.rules');
    await writeFile(f, 'prefix_rule(pattern=["ls"], decision="prompt")\n');
    const store = await RulesStore.open([f]);
    stores.push(store);
    await rm(f);
    expect(await store.reload()).toBe(false);
    expect(decisionOf(store, ['ls'])).toBe('prompt');
  });

  it('watch: reloads on file change (in place and by rename), ignores broken edits, debounces', async () => {
    const f = path.join(dir, 'p.rules');
    const other = path.join(dir, 'p2.rules');
    await writeFile(f, 'prefix_rule(pattern=["git", "push"], decision="prompt")\n');
    await writeFile(other, 'prefix_rule(pattern=["ls"])\n');
    const results: ReloadResult[] = [];
    const store = await RulesStore.open([f, other], { watch: true, debounceMs: 50, onReload: (r) => results.push(r) });
    stores.push(store);
    expect(decisionOf(store, ['git', 'push'])).toBe('prompt');

    // Broken edit: old policy stays, error reported.
    await writeFile(f, 'prefix_rule(pattern=["git", "push"], decision="forbidden"\n');
    await waitFor(() => results.length >= 1);
    expect(results.at(-1)?.ok).toBe(false);
    expect(decisionOf(store, ['git', 'push'])).toBe('prompt');

    // Editors often write a temp file and rename it over the original.
    const tmp = path.join(dir, '.p.rules.swp');
    await writeFile(tmp, 'prefix_rule(pattern=["git", "push"], decision="forbidden")\n');
    await rename(tmp, f);
    await waitFor(() => decisionOf(store, ['git', 'push']) === 'forbidden');
    expect(results.at(-1)?.ok).toBe(true);

    // The second file is watched too.
    const n = results.length;
    await writeFile(other, 'prefix_rule(pattern=["ls"], decision="forbidden")\n');
    await waitFor(() => decisionOf(store, ['ls']) === 'forbidden');
    // Several quick writes collapse into few reloads.
    for (let i = 0; i < 5; i++) await writeFile(other, `prefix_rule(pattern=["ls"], decision="prompt", justification="v${i}")\n`);
    await waitFor(() => store.current.evaluate(['ls']).matchedRules[0]?.justification === 'v4');
    expect(results.length - n).toBeLessThan(6);
  });

  it('SIGHUP reloads when asked to', async () => {
    const f = path.join(dir, 'p.rules');
    await writeFile(f, 'prefix_rule(pattern=["ls"], decision="prompt")\n');
    const results: ReloadResult[] = [];
    const store = await RulesStore.open([f], { reloadOnSighup: true, onReload: (r) => results.push(r) });
    stores.push(store);
    await writeFile(f, 'prefix_rule(pattern=["ls"], decision="forbidden")\n');
    process.kill(process.pid, 'SIGHUP');
    await waitFor(() => decisionOf(store, ['ls']) === 'forbidden');
    const listening = process.listenerCount('SIGHUP');
    store.close();
    // After close the handler is gone: no reload happens on the next SIGHUP.
    expect(process.listenerCount('SIGHUP')).toBe(listening - 1);
    const keep = (): void => undefined;
    process.on('SIGHUP', keep); // keep the default action (terminate) from killing the test process
    try {
      await writeFile(f, 'prefix_rule(pattern=["ls"])\n');
      const delivered = new Promise((r) => process.once('SIGHUP', r));
      process.kill(process.pid, 'SIGHUP');
      await delivered;
      expect(decisionOf(store, ['ls'])).toBe('forbidden');
      expect(results).toHaveLength(1);
    } finally {
      process.removeListener('SIGHUP', keep);
    }
  });

  it('serializes concurrent reloads: the last one wins', async () => {
    const f = path.join(dir, 'p.rules');
    await writeFile(f, 'prefix_rule(pattern=["ls"], decision="prompt")\n');
    const store = await RulesStore.open([f]);
    stores.push(store);
    const a = store.reload();
    await writeFile(f, 'prefix_rule(pattern=["ls"], decision="forbidden")\n');
    const b = store.reload();
    expect(await Promise.all([a, b])).toEqual([true, true]);
    expect(decisionOf(store, ['ls'])).toBe('forbidden');
  });
});
