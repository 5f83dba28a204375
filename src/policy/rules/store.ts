/**
 * Holds the rule set currently in force and swaps it atomically on reload.
 * A reload that fails (file missing, syntax error, failing example) keeps the
 * previous rules and reports the error; a decision never sees a half-loaded set.
 * Files marked read-once (those the sandbox can write) keep the text read at
 * open: neither a change nor SIGHUP makes them count again.
 */
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { compileRules, readRulesFile, type CompileOptions, type RulesSource } from './compile.js';
import { RuleSet } from './ruleset.js';

export type ReloadResult = { readonly ok: true; readonly rules: RuleSet } | { readonly ok: false; readonly error: Error };

export interface RulesStoreOptions extends CompileOptions {
  /** Reload when any rules file changes (watches the containing directories, so editor renames are seen). */
  readonly watch?: boolean;
  /** Reload on SIGHUP. */
  readonly reloadOnSighup?: boolean;
  /** Quiet period before a file-change reload, in ms (default 100). */
  readonly debounceMs?: number;
  /** Called after every reload attempt (not after the initial load). */
  readonly onReload?: (result: ReloadResult) => void;
  /** Files (as given to open) read once at open and never again: not watched, their first text reused on reload. */
  readonly readOnce?: readonly string[];
}

export class RulesStore {
  readonly paths: readonly string[];
  /** The read-once files (resolved) and the text they had at open. */
  readonly #frozen: ReadonlyMap<string, RulesSource>;
  #current: RuleSet;
  readonly #opts: RulesStoreOptions;
  readonly #watchers: FSWatcher[] = [];
  readonly #listeners = new Set<() => void>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  // Serializes reloads so an older, slower load can never overwrite a newer one.
  #chain: Promise<unknown> = Promise.resolve();
  readonly #onSighup = (): void => {
    void this.reload();
  };

  private constructor(paths: readonly string[], initial: RuleSet, opts: RulesStoreOptions, frozen: ReadonlyMap<string, RulesSource> = new Map()) {
    this.paths = paths;
    this.#frozen = frozen;
    this.#current = initial;
    this.#opts = opts;
  }

  /** Loads the files (throws RulesLoadError if they don't load) and starts watching if asked. */
  static async open(paths: readonly string[], opts: RulesStoreOptions = {}): Promise<RulesStore> {
    const resolved = paths.map((p) => path.resolve(p));
    const once = new Set((opts.readOnce ?? []).map((p) => path.resolve(p)));
    const sources: RulesSource[] = [];
    for (const file of resolved) sources.push(await readRulesFile(file));
    const initial = compileRules(sources, opts);
    const frozen = new Map(sources.filter((s) => once.has(s.file)).map((s) => [s.file, s] as const));
    const store = new RulesStore(resolved, initial, opts, frozen);
    if (opts.watch === true) store.#startWatching();
    if (opts.reloadOnSighup === true) process.on('SIGHUP', store.#onSighup);
    return store;
  }

  /** A store with fixed rules and no files (library use, tests). */
  static fromRuleSet(rules: RuleSet): RulesStore {
    return new RulesStore([], rules, {});
  }

  get current(): RuleSet {
    return this.#current;
  }

  /** Called synchronously each time new rules come into force (not at open); returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Re-reads all files; true if the new rules are now in force. Never throws. */
  reload(): Promise<boolean> {
    const run = async (): Promise<boolean> => {
      // Nothing that may change: the rules in force are the ones there are.
      if (this.paths.every((p) => this.#frozen.has(p))) return true;
      let result: ReloadResult;
      try {
        const sources: RulesSource[] = [];
        for (const file of this.paths) sources.push(this.#frozen.get(file) ?? (await readRulesFile(file)));
        const rules = compileRules(sources, this.#opts);
        if (!this.#closed) {
          this.#current = rules;
          // Before anything can decide under the new rules (remembered decisions are forgotten here).
          for (const listener of this.#listeners) listener();
        }
        result = { ok: true, rules };
      } catch (err) {
        result = { ok: false, error: err instanceof Error ? err : new Error(String(err)) };
      }
      try {
        this.#opts.onReload?.(result);
      } catch {
        // A failing logger must not break reloading.
      }
      return result.ok;
    };
    const p = this.#chain.then(run, run);
    this.#chain = p;
    return p;
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    for (const w of this.#watchers) w.close();
    this.#watchers.length = 0;
    process.removeListener('SIGHUP', this.#onSighup);
  }

  #startWatching(): void {
    const byDir = new Map<string, Set<string>>();
    for (const p of this.paths) {
      if (this.#frozen.has(p)) continue;
      const dir = path.dirname(p);
      const names = byDir.get(dir) ?? new Set<string>();
      names.add(path.basename(p));
      byDir.set(dir, names);
    }
    for (const [dir, names] of byDir) {
      try {
        const w = watch(dir, { persistent: false }, (_event, filename) => {
          // Some platforms omit the name; then reload to be safe.
          if (filename === null || names.has(filename.toString())) this.#schedule();
        });
        w.on('error', () => {
          // The directory went away; SIGHUP / explicit reload still work.
        });
        this.#watchers.push(w);
      } catch {
        // Unwatchable directory: keep serving the loaded rules.
      }
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.reload();
    }, this.#opts.debounceMs ?? 100);
    this.#timer.unref();
  }
}
