import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { jsonSyntaxErrorOffset, lineColumn } from './json-position.js';
import { z } from 'zod';
import { TEMPLATE_KEYS } from './payload.js';
import { discoveryCandidates, type Candidate } from './discovery.js';
import { describeExposure, sandboxExposure, sandboxWritableRoots } from '../policy/sandbox-roots.js';
import { hookPathExposures, sha256, TrustStore, trustCommand, trustStorePath } from './trust.js';
import {
  HooksConfigError,
  type HookDefinition,
  type HookEvent,
  type HookMode,
  type HookPriority,
  type HookScope,
  type HooksConfig,
  type HooksFileInfo,
  type McpServerConfig,
  type UntrustedHooksFile,
  type WebhookHook,
} from './types.js';

/** smol-toml is loaded only when a hooks.toml is read (start-up); its CommonJS build, so synchronously. */
const parseToml = (text: string): unknown => (createRequire(import.meta.url)('smol-toml') as typeof import('smol-toml')).parse(text);

/**
 * Loading hooks.json (Codex / Claude Code) and hooks.toml (seed 001) into one
 * model.
 *
 * Discovery order (all found files are merged; every matching hook runs):
 *   1. the user's config dir: `$CODEX_HOME` (default `~/.codex`): hooks.json, then hooks.toml;
 *   2. the project: `<dir>/.codex/hooks.json`, then `<dir>/.codex/hooks.toml`;
 *   3. explicit `--hooks FILE` files, in the order given.
 * A file reached twice (same real path) is loaded once.
 *
 * `${VAR}` substitution: in hooks.toml every string value; in hooks.json only
 * webhook url/headers and MCP server fields (a JSON `command` is a shell line:
 * the shell expands its variables, as Claude Code does). An unset variable is
 * a load error. `$${` writes a literal `${`. Inside an mcp_tool hook's
 * `arguments`, the event placeholders (`${command}`, `${workdir}`...) are kept
 * for the engine to fill per event.
 */

// Discovery has no zod in it: `run` asks it first, and loads this module only when there is a file to read.
export { discoveryCandidates, userConfigDir } from './discovery.js';

export const DEFAULT_TIMEOUT_SECONDS = 30;

const EVENT_ALIASES: Readonly<Record<string, HookEvent>> = {
  PreToolUse: 'exec.before',
  PostToolUse: 'exec.after',
  SessionStart: 'session_start',
  Stop: 'session_end',
  SessionEnd: 'session_end',
  ErrorOccurred: 'error.occurred',
  'exec.before': 'exec.before',
  'exec.after': 'exec.after',
  session_start: 'session_start',
  session_end: 'session_end',
  'error.occurred': 'error.occurred',
  // Seed 000/001 spellings of the command events.
  command_start: 'exec.before',
  command_end: 'exec.after',
  command_complete: 'exec.after',
};

/** Map either naming to ours; undefined = not an event of this system. */
export function normalizeEvent(name: string): HookEvent | undefined {
  return Object.hasOwn(EVENT_ALIASES, name) ? EVENT_ALIASES[name] : undefined;
}

/** Claude Code events this system never produces (a warning); any other unknown name is a typo (an error). */
const CLAUDE_FOREIGN_EVENTS = new Set(['UserPromptSubmit', 'Notification', 'SubagentStop', 'SubagentStart', 'PreCompact', 'PermissionRequest', 'PostToolUseFailure']);

/** Events of Codex, Claude Code or the seed that this system never produces: a warning, not an error. */
function isForeignKnownEvent(name: string): boolean {
  return /^(task|patch|mcp|agent|integration)[._]/.test(name) || CLAUDE_FOREIGN_EVENTS.has(name);
}

const KNOWN_EVENT_NAMES = 'PreToolUse, PostToolUse, SessionStart, Stop, SessionEnd, ErrorOccurred (or exec.before, exec.after, session_start, session_end, error.occurred, command_start)';

/** `required` unless the file says: a PreToolUse hook that cannot give a verdict denies (fail closed); others are best effort. */
function defaultRequired(event: HookEvent, given: boolean | undefined): boolean {
  return given ?? event === 'exec.before';
}

/** `scope` picks the PreToolUse level; on any other event it means nothing, so saying it is a mistake. */
function checkScope(event: HookEvent, scope: HookScope | undefined, file: string, entry: string): HookScope {
  if (scope !== undefined && event !== 'exec.before') {
    throw new HooksConfigError(`${file}: ${entry}: field "scope": only PreToolUse (exec.before) hooks have a scope`, file, entry, 'scope');
  }
  return scope ?? 'exec';
}

/** What a hook entry says in either file format, once the format's own defaults are applied. */
interface EntryFields {
  readonly description?: string | undefined;
  readonly enabled: boolean;
  readonly matcher?: string | undefined;
  readonly required?: boolean | undefined;
  readonly concurrency?: number | undefined;
  readonly scope?: HookScope | undefined;
  readonly timeoutSeconds: number;
  readonly mode: HookMode;
  readonly priority: string;
  readonly conditions: Readonly<Record<string, string>>;
}

/** The fields every hook type shares, built one way for hooks.toml and hooks.json alike. */
function hookBase(file: string, entry: string, event: HookEvent, baseDir: string, f: EntryFields) {
  return {
    id: `${path.basename(file)}#${entry}`,
    source: path.resolve(file),
    entry,
    event,
    description: f.description,
    enabled: f.enabled,
    matcher: f.matcher,
    required: defaultRequired(event, f.required),
    concurrency: f.concurrency,
    scope: checkScope(event, f.scope, file, entry),
    timeoutMs: Math.round(f.timeoutSeconds * 1000),
    mode: f.mode,
    priority: f.priority as HookPriority,
    conditions: f.conditions,
    baseDir,
  } as const;
}

/** A Claude Code plugin keeps its hooks in `<plugin root>/hooks/hooks.json`; its commands find themselves through CLAUDE_PLUGIN_ROOT. */
function pluginRootOf(file: string): string | undefined {
  const abs = path.resolve(file);
  return path.basename(abs) === 'hooks.json' && path.basename(path.dirname(abs)) === 'hooks' ? path.dirname(path.dirname(abs)) : undefined;
}

export interface LoadHooksOptions {
  /** Explicit files (`--hooks`), relative to process.cwd(). */
  readonly files?: readonly string[];
  /** Discover `.codex/hooks.*` in this directory and the user's config dir. */
  readonly discoverFrom?: string;
  /** Environment for `${VAR}` substitution and `$CODEX_HOME` (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * The session's sandbox-writable roots (default: those of `discoverFrom`, or
   * of process.cwd()). Used to distrust a trust store inside them and to warn
   * about named files and hook scripts the sandbox can change.
   */
  readonly roots?: readonly string[];
  /** Where discovered files' trust is recorded (default: TrustStore at trustStorePath(env)). */
  readonly trustStore?: TrustStore;
}

/** The promise form of loadHooksSync (loading is synchronous: small local files, read once at start); kept for API callers. */
export async function loadHooks(opts: LoadHooksOptions = {}): Promise<HooksConfig> {
  return loadHooksSync(opts);
}

export function loadHooksSync(opts: LoadHooksOptions = {}): HooksConfig {
  const env = opts.env ?? process.env;
  const candidates: Candidate[] = [];
  if (opts.discoverFrom !== undefined) {
    for (const c of discoveryCandidates(opts.discoverFrom, env)) if (existsSync(c.path)) candidates.push(c);
  }
  for (const f of opts.files ?? []) candidates.push({ path: path.resolve(f), origin: 'explicit' });

  const roots = opts.roots ?? sandboxWritableRoots(opts.discoverFrom ?? process.cwd());
  // Only discovery needs the store: an explicit --hooks file is trusted as named.
  const store = candidates.some((c) => c.origin !== 'explicit') ? (opts.trustStore ?? TrustStore.open(trustStorePath(env), roots)) : undefined;
  const trustWarnings: string[] = [];
  if (store?.distrusted !== undefined) trustWarnings.push(store.distrusted);
  if (store?.problem !== undefined) trustWarnings.push(store.problem);
  const untrusted: UntrustedHooksFile[] = [];
  const seen = new Set<string>();
  const files: HooksFileInfo[] = [];
  const hooks: HookDefinition[] = [];
  const mcpServers: Record<string, McpServerConfig> = {};
  const warnings: string[] = [];
  let parallel = true;
  let debug = false;

  for (const c of candidates) {
    let real: string;
    try {
      real = realpathSync(c.path);
    } catch (e) {
      throw new HooksConfigError(`${c.path}: cannot read hooks file: ${(e as Error).message}`, c.path, undefined, undefined, { cause: e });
    }
    if (seen.has(real)) continue;
    if (!statSync(real).isFile()) throw new HooksConfigError(`${c.path}: not a regular file`, c.path);
    // One read: the bytes hashed for trust are the bytes parsed.
    const bytes = readFileSync(real);
    const format: 'json' | 'toml' = real.endsWith('.toml') ? 'toml' : 'json';
    if (c.origin !== 'explicit') {
      const state = store?.state(path.resolve(c.path), sha256(bytes)) ?? 'untrusted';
      if (state !== 'trusted') {
        untrusted.push({ path: c.path, realPath: real, origin: c.origin, state, format });
        continue;
      }
    } else {
      const e = sandboxExposure(real, roots);
      if (e !== undefined) trustWarnings.push(`hooks file ${describeExposure(c.path, e)}: read once at start and trusted because it was named with --hooks`);
    }
    seen.add(real);
    const text = bytes.toString('utf8');
    const loaded = format === 'toml' ? loadTomlText(text, c.path, env) : loadJsonText(text, c.path, env);
    for (const [name, s] of Object.entries(loaded.mcpServers)) {
      const prev = mcpServers[name];
      // The same server defined identically in two files (e.g. both example files) is one server.
      if (prev && JSON.stringify({ ...prev, source: '' }) === JSON.stringify({ ...s, source: '' })) continue;
      if (prev) {
        throw new HooksConfigError(`${c.path}: MCP server "${name}" is already defined in ${mcpServers[name]!.source}`, c.path, `mcp_servers.${name}`);
      }
      mcpServers[name] = s;
    }
    hooks.push(...loaded.hooks);
    warnings.push(...loaded.warnings);
    if (!loaded.parallel) parallel = false;
    if (loaded.debug) debug = true;
    files.push({ path: c.path, format, origin: c.origin, enabled: loaded.enabled, hookCount: loaded.hooks.length, trust: c.origin === 'explicit' ? 'named' : 'trusted' });
  }
  for (const u of untrusted) {
    if (seen.has(u.realPath)) continue; // also named with --hooks: loaded as named
    trustWarnings.push(
      `hooks file ${u.path} is ${u.state === 'changed' ? 'changed since it was trusted' : 'not trusted'}: its hooks do not run; trust it with: ${trustCommand(path.resolve(u.path))}`,
    );
  }
  const sessionDir = path.resolve(opts.discoverFrom ?? process.cwd());
  for (const h of hooks) for (const w of hookPathExposures(h, sessionDir, roots)) trustWarnings.push(w);
  for (const s of Object.values(mcpServers)) for (const w of hookPathExposures(s, sessionDir, roots)) trustWarnings.push(w);

  for (const h of hooks) {
    if (h.type === 'mcp_tool' && !Object.hasOwn(mcpServers, h.server)) {
      throw new HooksConfigError(
        `${h.source}: ${h.entry}: field "server": no MCP server named "${h.server}" (define it under [mcp_servers.${h.server}] or "mcpServers")`,
        h.source,
        h.entry,
        'server',
      );
    }
  }
  return { files, hooks, mcpServers, parallel, debug, warnings, untrusted: untrusted.filter((u) => !seen.has(u.realPath)), trustWarnings };
}

interface LoadedFile {
  hooks: HookDefinition[];
  mcpServers: Record<string, McpServerConfig>;
  enabled: boolean;
  parallel: boolean;
  debug: boolean;
  warnings: string[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

// ---------------------------------------------------------------- substitution

const ENV_REF = /\$\$\{|\$\{([^}]*)\}/g;

function substitute(
  s: string,
  env: NodeJS.ProcessEnv,
  where: { file: string; entry: string; field: string },
  keepTemplates = false,
): string {
  return s.replace(ENV_REF, (m, name: string | undefined) => {
    if (m === '$${') return '${';
    const n = name ?? '';
    if (keepTemplates && (TEMPLATE_KEYS as readonly string[]).includes(n)) return m;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(n)) {
      throw new HooksConfigError(`${where.file}: ${where.entry}: field "${where.field}": invalid variable reference ${m}`, where.file, where.entry, where.field);
    }
    const v = env[n];
    if (v === undefined) {
      throw new HooksConfigError(
        `${where.file}: ${where.entry}: field "${where.field}": environment variable ${n} is not set`,
        where.file,
        where.entry,
        where.field,
      );
    }
    return v;
  });
}

function substDeep(v: unknown, env: NodeJS.ProcessEnv, where: { file: string; entry: string; field: string }, keep: boolean): unknown {
  if (typeof v === 'string') return substitute(v, env, where, keep);
  if (Array.isArray(v)) return v.map((x) => substDeep(x, env, where, keep));
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substDeep(x, env, { ...where, field: `${where.field}.${k}` }, keep)]));
  }
  return v;
}

function substRecord(
  r: Readonly<Record<string, string>> | undefined,
  env: NodeJS.ProcessEnv,
  where: { file: string; entry: string; field: string },
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(r ?? {})) out[k] = substitute(v, env, { ...where, field: `${where.field}.${k}` });
  return out;
}

/** A webhook entry's own fields, the same in both file formats (variables substituted, the URL checked). */
function webhookFields(
  h: { readonly url: string; readonly method: WebhookHook['method']; readonly headers?: Readonly<Record<string, string>> | undefined; readonly retry_count: number },
  env: NodeJS.ProcessEnv,
  file: string,
  entry: string,
): Pick<WebhookHook, 'type' | 'url' | 'method' | 'headers' | 'retryCount'> {
  const where = (field: string) => ({ file, entry, field });
  return {
    type: 'webhook',
    url: checkUrl(substitute(h.url, env, where('url')), file, entry),
    method: h.method,
    headers: substRecord(h.headers, env, where('headers')),
    retryCount: h.retry_count,
  };
}

// ---------------------------------------------------------------- zod helpers

function formatIssues(err: z.ZodError, file: string, entry: string): HooksConfigError {
  const first = err.issues[0];
  const fieldPath = first ? first.path.map(String).join('.') : '';
  const details = err.issues
    .slice(0, 5)
    .map((i) => {
      const f = i.path.map(String).join('.');
      if (i.code === 'unrecognized_keys') return `${f === '' ? '' : `field "${f}": `}unknown field(s) ${i.keys.map((k) => `"${k}"`).join(', ')}`;
      return `${f === '' ? '' : `field "${f}": `}${i.message}`;
    })
    .join('; ');
  return new HooksConfigError(`${file}: ${entry}: ${details}`, file, entry, fieldPath === '' ? undefined : fieldPath);
}

const positiveSeconds = z.number().positive('must be a positive number of seconds').max(3600, 'must be at most 3600 seconds');
const stringMap = z.record(z.string(), z.string());
const conditionMap = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]));
const priority = z.enum(['high', 'normal', 'low']);
const mode = z.enum(['sync', 'async']);
const method = z.enum(['POST', 'PUT', 'PATCH']);

const mcpServerSchema = z.strictObject({
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  env: stringMap.default({}),
  cwd: z.string().optional(),
});

/** The fields a hook has in both formats, with the same meaning and defaults. */
const sharedHookFields = {
  description: z.string().optional(),
  enabled: z.boolean().default(true),
  required: z.boolean().optional(),
  concurrency: z.number().int().min(1).max(64).optional(),
  scope: z.enum(['exec', 'run', 'both']).optional(),
};

// ---------------------------------------------------------------- TOML

const tomlHookSchema = z.strictObject({
  event: z.string().min(1),
  type: z.enum(['script', 'command', 'webhook', 'mcp_tool']).default('script'),
  command: z.union([z.string().min(1), z.array(z.string()).min(1, 'must not be empty')]).optional(),
  ...sharedHookFields,
  timeout: positiveSeconds.optional(),
  mode: mode.default('sync'),
  priority: priority.default('normal'),
  cwd: z.string().optional(),
  environment: stringMap.default({}),
  conditions: conditionMap.default({}),
  matcher: z.string().optional(),
  persistent: z.boolean().default(false),
  url: z.string().optional(),
  method: method.default('POST'),
  headers: stringMap.default({}),
  retry_count: z.number().int().min(0).max(10).default(0),
  server: z.string().optional(),
  tool: z.string().optional(),
  arguments: z.record(z.string(), z.unknown()).default({}),
});

const tomlGlobalKeys = new Set(['enabled', 'timeout_seconds', 'parallel_execution', 'debug']);
const tomlGlobalSchema = z.object({
  enabled: z.boolean().default(true),
  timeout_seconds: positiveSeconds.default(DEFAULT_TIMEOUT_SECONDS),
  parallel_execution: z.boolean().default(true),
  debug: z.boolean().default(false),
});

export function loadTomlText(text: string, file: string, env: NodeJS.ProcessEnv): LoadedFile {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (e) {
    // smol-toml's TomlError carries the 1-based line and column.
    const { line, column } = e as { line?: unknown; column?: unknown };
    const where = typeof line === 'number' && typeof column === 'number' ? `:${line}:${column}` : '';
    const what = ((e as Error).message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
    throw new HooksConfigError(`${file}${where}: invalid TOML: ${what}`, file, undefined, undefined, { cause: e });
  }
  for (const k of Object.keys(doc)) {
    if (k !== 'hooks' && k !== 'mcp_servers') throw new HooksConfigError(`${file}: unknown top-level table [${k}] (expected [hooks] and [mcp_servers.*])`, file, k);
  }
  const root = doc.hooks ?? {};
  if (typeof root !== 'object' || root === null || Array.isArray(root)) throw new HooksConfigError(`${file}: [hooks] must be a table`, file, 'hooks');
  const rootRec = root as Record<string, unknown>;
  const globalsRaw: Record<string, unknown> = {};
  for (const k of tomlGlobalKeys) if (k in rootRec) globalsRaw[k] = rootRec[k];
  const g = tomlGlobalSchema.safeParse(globalsRaw);
  if (!g.success) throw formatIssues(g.error, file, '[hooks]');
  const globals = g.data;

  const baseDir = path.dirname(path.resolve(file));
  const hooks: HookDefinition[] = [];
  const warnings: string[] = [];
  for (const [category, list] of Object.entries(rootRec)) {
    if (tomlGlobalKeys.has(category)) continue;
    if (!Array.isArray(list)) {
      throw new HooksConfigError(`${file}: hooks.${category}: must be an array of tables ([[hooks.${category}]])`, file, `hooks.${category}`);
    }
    list.forEach((raw, idx) => {
      const entry = `hooks.${category}[${idx}]`;
      const r = tomlHookSchema.safeParse(raw);
      if (!r.success) throw formatIssues(r.error, file, entry);
      const h = r.data;
      const event = normalizeEvent(h.event);
      if (event === undefined) {
        if (isForeignKnownEvent(h.event)) {
          warnings.push(`${file}: ${entry}: event "${h.event}" is never produced by this system; the hook will not run`);
          return;
        }
        throw new HooksConfigError(
          `${file}: ${entry}: field "event": unknown event "${h.event}" (expected one of ${KNOWN_EVENT_NAMES})`,
          file,
          entry,
          'event',
        );
      }
      const where = (field: string) => ({ file, entry, field });
      const common = hookBase(file, entry, event, baseDir, {
        ...h,
        enabled: globals.enabled && h.enabled,
        timeoutSeconds: h.timeout ?? globals.timeout_seconds,
        conditions: Object.fromEntries(
          Object.entries(h.conditions).map(([k, v]) => [k, substitute(String(v), env, where(`conditions.${k}`))]),
        ),
      });
      if (h.type === 'script' || h.type === 'command') {
        if (h.command === undefined) throw new HooksConfigError(`${file}: ${entry}: field "command": required for a ${h.type} hook`, file, entry, 'command');
        const command = typeof h.command === 'string' ? substitute(h.command, env, where('command')) : h.command.map((c, i) => substitute(c, env, where(`command[${i}]`)));
        hooks.push({
          ...common,
          type: 'command',
          command,
          cwd: h.cwd === undefined ? undefined : path.resolve(baseDir, substitute(h.cwd, env, where('cwd'))),
          env: substRecord(h.environment, env, where('environment')),
          persistent: h.persistent,
        });
      } else if (h.type === 'webhook') {
        if (h.url === undefined) throw new HooksConfigError(`${file}: ${entry}: field "url": required for a webhook hook`, file, entry, 'url');
        hooks.push({ ...common, ...webhookFields({ ...h, url: h.url }, env, file, entry) });
      } else {
        if (h.server === undefined) throw new HooksConfigError(`${file}: ${entry}: field "server": required for an mcp_tool hook`, file, entry, 'server');
        if (h.tool === undefined) throw new HooksConfigError(`${file}: ${entry}: field "tool": required for an mcp_tool hook`, file, entry, 'tool');
        hooks.push({
          ...common,
          type: 'mcp_tool',
          server: h.server,
          tool: h.tool,
          arguments: substDeep(h.arguments, env, where('arguments'), true) as Record<string, unknown>,
        });
      }
    });
  }

  const mcpServers: Record<string, McpServerConfig> = {};
  const serversRaw = doc.mcp_servers ?? {};
  if (typeof serversRaw !== 'object' || serversRaw === null || Array.isArray(serversRaw)) {
    throw new HooksConfigError(`${file}: [mcp_servers] must be a table of tables`, file, 'mcp_servers');
  }
  for (const [name, raw] of Object.entries(serversRaw)) {
    mcpServers[name] = mcpServer(name, raw, file, `mcp_servers.${name}`, env, baseDir);
  }
  return { hooks, mcpServers, enabled: globals.enabled, parallel: globals.parallel_execution, debug: globals.debug, warnings };
}

function mcpServer(name: string, raw: unknown, file: string, entry: string, env: NodeJS.ProcessEnv, baseDir: string): McpServerConfig {
  const r = mcpServerSchema.safeParse(raw);
  if (!r.success) throw formatIssues(r.error, file, entry);
  const where = (field: string) => ({ file, entry, field });
  return {
    name,
    source: path.resolve(file),
    command: substitute(r.data.command, env, where('command')),
    args: r.data.args.map((a, i) => substitute(a, env, where(`args[${i}]`))),
    env: substRecord(r.data.env, env, where('env')),
    cwd: r.data.cwd === undefined ? baseDir : path.resolve(baseDir, substitute(r.data.cwd, env, where('cwd'))),
  };
}

function checkUrl(u: string, file: string, entry: string): string {
  let parsed: URL;
  try {
    parsed = new URL(u);
  } catch {
    throw new HooksConfigError(`${file}: ${entry}: field "url": not a valid URL: ${u}`, file, entry, 'url');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new HooksConfigError(`${file}: ${entry}: field "url": only http and https URLs are supported`, file, entry, 'url');
  }
  return u;
}

// ---------------------------------------------------------------- JSON

const jsonCommonFields = {
  timeout: positiveSeconds.optional(),
  ...sharedHookFields,
  mode: mode.optional(),
  async: z.boolean().optional(),
  priority: priority.default('normal'),
  conditions: conditionMap.default({}),
};

const jsonHookSchema = z.discriminatedUnion('type', [
  z.looseObject({
    type: z.literal('command'),
    command: z.union([z.string().min(1), z.array(z.string()).min(1)]),
    cwd: z.string().optional(),
    env: stringMap.default({}),
    persistent: z.boolean().default(false),
    ...jsonCommonFields,
  }),
  z.looseObject({
    type: z.enum(['http', 'webhook']),
    url: z.string(),
    method: method.default('POST'),
    headers: stringMap.default({}),
    retry_count: z.number().int().min(0).max(10).default(0),
    ...jsonCommonFields,
  }),
  z.looseObject({
    type: z.literal('mcp_tool'),
    server: z.string().min(1),
    tool: z.string().min(1),
    arguments: z.record(z.string(), z.unknown()).optional(),
    input: z.record(z.string(), z.unknown()).optional(),
    ...jsonCommonFields,
  }),
]);

const jsonGroupSchema = z.strictObject({
  matcher: z.string().optional(),
  hooks: z.array(z.unknown()),
});

// Strict: a misplaced or misspelt key would otherwise load 0 hooks and guard nothing.
const jsonFileSchema = z.strictObject({
  $schema: z.string().optional(),
  /** Claude Code plugin hooks/hooks.json carries one. */
  description: z.string().optional(),
  enabled: z.boolean().default(true),
  timeout_seconds: positiveSeconds.default(DEFAULT_TIMEOUT_SECONDS),
  parallel_execution: z.boolean().default(true),
  debug: z.boolean().default(false),
  hooks: z.record(z.string(), z.array(z.unknown())).default({}),
  mcpServers: z.record(z.string(), z.unknown()).default({}),
});

const KNOWN_JSON_HOOK_KEYS = new Set([
  'type', 'command', 'cwd', 'env', 'persistent', 'url', 'method', 'headers', 'retry_count', 'server', 'tool', 'arguments', 'input',
  'timeout', 'description', 'enabled', 'required', 'mode', 'async', 'priority', 'conditions', 'concurrency', 'scope',
]);

/** Claude Code hook fields that only affect its UI: accepted, ignored. */
const IGNORED_JSON_HOOK_KEYS = new Set(['statusMessage']);

/** `line:col` of a JSON syntax error (see json-position.ts) and JSON.parse's message without its own location or excerpt. */
export function jsonErrorLocation(text: string, message: string): { where: string; what: string } {
  const offset = jsonSyntaxErrorOffset(text) ?? text.length;
  const { line, column } = lineColumn(text, offset);
  const what = message
    .replace(/ in JSON at position \d+.*$/, '')
    .replace(/, ".*" is not valid JSON$/s, '')
    .replace(/ \(line \d+ column \d+\)$/, '');
  return { where: `${line}:${column}`, what };
}

export function loadJsonText(text: string, file: string, env: NodeJS.ProcessEnv): LoadedFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    const { where, what } = jsonErrorLocation(text, (e as Error).message);
    throw new HooksConfigError(`${file}:${where}: invalid JSON: ${what}`, file, undefined, undefined, { cause: e });
  }
  if (isRecord(doc)) {
    for (const k of Object.keys(doc)) {
      if (normalizeEvent(k) !== undefined || isForeignKnownEvent(k)) {
        throw new HooksConfigError(`${file}: (top level): "${k}" is an event: put it under "hooks" ({"hooks": {"${k}": [...]}})`, file, k);
      }
    }
  }
  // A Claude Code settings file carries much more than hooks (permissions, env, model...): those keys are its business.
  const settingsFile = /^settings(\.local)?\.json$/.test(path.basename(file));
  const top = (settingsFile ? jsonFileSchema.loose() : jsonFileSchema).safeParse(doc);
  if (!top.success) throw formatIssues(top.error, file, '(top level)');
  const t = top.data;
  const baseDir = path.dirname(path.resolve(file));
  const pluginRoot = pluginRootOf(file);
  const hooks: HookDefinition[] = [];
  const warnings: string[] = [];

  for (const [eventName, groups] of Object.entries(t.hooks)) {
    const event = normalizeEvent(eventName);
    if (event === undefined) {
      if (isForeignKnownEvent(eventName)) {
        warnings.push(`${file}: hooks.${eventName}: event "${eventName}" is never produced by this system; its hooks will not run`);
        continue;
      }
      throw new HooksConfigError(`${file}: hooks.${eventName}: unknown event "${eventName}" (expected one of ${KNOWN_EVENT_NAMES})`, file, `hooks.${eventName}`, 'event');
    }
    groups.forEach((rawGroup, gi) => {
      const gEntry = `hooks.${eventName}[${gi}]`;
      const g = jsonGroupSchema.safeParse(rawGroup);
      if (!g.success) throw formatIssues(g.error, file, gEntry);
      g.data.hooks.forEach((rawHook, hi) => {
        const entry = `${gEntry}.hooks[${hi}]`;
        const r = jsonHookSchema.safeParse(rawHook);
        if (!r.success) throw formatIssues(r.error, file, entry);
        const h = r.data;
        for (const k of Object.keys(h)) {
          if (KNOWN_JSON_HOOK_KEYS.has(k)) continue;
          if (IGNORED_JSON_HOOK_KEYS.has(k)) warnings.push(`${file}: ${entry}: field "${k}" is not supported and is ignored`);
          else throw new HooksConfigError(`${file}: ${entry}: unknown field "${k}"`, file, entry, k);
        }
        if (h.mode !== undefined && h.async !== undefined && (h.mode === 'async') !== h.async) {
          throw new HooksConfigError(`${file}: ${entry}: field "async": contradicts "mode"`, file, entry, 'async');
        }
        const where = (field: string) => ({ file, entry, field });
        const common = hookBase(file, entry, event, baseDir, {
          ...h,
          enabled: t.enabled && h.enabled,
          matcher: g.data.matcher,
          timeoutSeconds: h.timeout ?? t.timeout_seconds,
          mode: h.mode ?? (h.async === true ? 'async' : 'sync'),
          conditions: Object.fromEntries(Object.entries(h.conditions).map(([k, v]) => [k, String(v)])),
        });
        if (h.type === 'command') {
          hooks.push({
            ...common,
            type: 'command',
            command: h.command,
            cwd: h.cwd === undefined ? undefined : path.resolve(baseDir, h.cwd),
            env: h.env,
            persistent: h.persistent,
            pluginRoot,
          });
        } else if (h.type === 'mcp_tool') {
          hooks.push({ ...common, type: 'mcp_tool', server: h.server, tool: h.tool, arguments: h.arguments ?? h.input ?? {} });
        } else {
          hooks.push({ ...common, ...webhookFields(h, env, file, entry) });
        }
      });
    });
  }
  const mcpServers: Record<string, McpServerConfig> = {};
  for (const [name, raw] of Object.entries(t.mcpServers)) mcpServers[name] = mcpServer(name, raw, file, `mcpServers.${name}`, env, baseDir);
  return { hooks, mcpServers, enabled: t.enabled, parallel: t.parallel_execution, debug: t.debug, warnings };
}
