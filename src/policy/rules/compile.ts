/**
 * From parsed calls to rules: argument binding, type checks, host_executable
 * validation, first-token expansion, and load-time validation of the
 * match / not_match examples. Multiple files merge in order.
 */
import os from 'node:os';
import { readFile } from 'node:fs/promises';
import { RulesLoadError, type SourcePos } from './errors.js';
import { evaluateRules } from './eval.js';
import { typeName, type Call, type Value } from './parser.js';
import {
  RuleSet,
  describeRule,
  normalizeAbsolute,
  pathFileName,
  type PatternToken,
  type NetworkRule,
  type NetworkRuleProtocol,
  type PrefixRule,
  type RuleDecision,
} from './ruleset.js';
import { shlexJoin, shlexSplit } from './shlex.js';

export interface Example {
  readonly argv: readonly string[];
  readonly pos: SourcePos;
}

/** One prefix_rule(...) call: its expanded rules (one per first-token alternative) and its examples. */
export interface PrefixRuleDecl {
  readonly rules: readonly PrefixRule[];
  readonly match: readonly Example[];
  readonly notMatch: readonly Example[];
  readonly pos: SourcePos;
}

export interface HostExecutableDecl {
  readonly name: string;
  /** Absolute, normalized, `~/` expanded, deduplicated. */
  readonly paths: readonly string[];
  readonly pos: SourcePos;
}

export type Statement =
  | { readonly kind: 'prefix_rule'; readonly decl: PrefixRuleDecl }
  | { readonly kind: 'host_executable'; readonly decl: HostExecutableDecl }
  | { readonly kind: 'network_rule'; readonly decl: NetworkRule };

/** A syntactically and semantically valid file whose examples are not yet validated (that needs the merged host_executable table). */
export interface ParsedRules {
  readonly file: string;
  readonly statements: readonly Statement[];
}

export interface CompileOptions {
  /** Home directory for `~/` in host_executable paths (default: os.homedir()). */
  readonly homeDir?: string;
}

const DECISIONS: readonly RuleDecision[] = ['allow', 'prompt', 'forbidden'];

const SIGNATURES: Readonly<Record<string, readonly string[]>> = {
  // Parameter order matches upstream so positional calls bind the same way.
  prefix_rule: ['pattern', 'decision', 'match', 'not_match', 'justification'],
  host_executable: ['name', 'paths'],
  network_rule: ['host', 'protocol', 'decision', 'justification'],
};
const REQUIRED: Readonly<Record<string, readonly string[]>> = {
  prefix_rule: ['pattern'],
  host_executable: ['name', 'paths'],
  network_rule: ['host', 'protocol', 'decision'],
};

// Upstream's spellings (NetworkRuleProtocol::parse): two aliases for https.
const NETWORK_PROTOCOLS: Readonly<Record<string, NetworkRuleProtocol>> = {
  http: 'http',
  https: 'https',
  https_connect: 'https',
  'http-connect': 'https',
  socks5_tcp: 'socks5_tcp',
  socks5_udp: 'socks5_udp',
};

export function parseRulesSource(source: string, file: string, opts: CompileOptions = {}): ParsedRules {
  const home = opts.homeDir ?? os.homedir();
  const calls = evaluateRules(source, file);
  const statements: Statement[] = calls.map((call) => {
    const args = bindArguments(call, file);
    if (call.callee === 'prefix_rule') return { kind: 'prefix_rule', decl: compilePrefixRule(call, args, file) };
    if (call.callee === 'network_rule') return { kind: 'network_rule', decl: compileNetworkRule(call, args, file) };
    return { kind: 'host_executable', decl: compileHostExecutable(call, args, file, home) };
  });
  return { file, statements };
}

function bindArguments(call: Call, file: string): Map<string, Value> {
  const params = SIGNATURES[call.callee];
  if (params === undefined) {
    throw new RulesLoadError(file, call.pos, `unknown function \`${call.callee}\`: expected prefix_rule, host_executable or network_rule`);
  }
  const bound = new Map<string, Value>();
  let sawKeyword = false;
  call.args.forEach((arg, index) => {
    if (arg.name === undefined) {
      if (sawKeyword) throw new RulesLoadError(file, arg.value.pos, `positional argument after keyword argument in ${call.callee}(...)`);
      const param = params[index];
      if (param === undefined) {
        throw new RulesLoadError(
          file,
          arg.value.pos,
          `too many positional arguments for ${call.callee}(...): it takes at most ${params.length} (${params.join(', ')})`,
        );
      }
      bound.set(param, arg.value);
      return;
    }
    sawKeyword = true;
    if (!params.includes(arg.name)) {
      throw new RulesLoadError(
        file,
        arg.namePos,
        `unknown keyword argument \`${arg.name}\` for ${call.callee}: expected one of ${params.join(', ')}`,
      );
    }
    if (bound.has(arg.name)) {
      throw new RulesLoadError(file, arg.namePos, `argument \`${arg.name}\` given more than once in ${call.callee}(...)`);
    }
    bound.set(arg.name, arg.value);
  });
  // `None` means "not given" for the optional parameters, as in upstream.
  for (const [k, v] of bound) if (v.kind === 'none' && !(REQUIRED[call.callee] ?? []).includes(k)) bound.delete(k);
  for (const req of REQUIRED[call.callee] ?? []) {
    if (!bound.has(req)) throw new RulesLoadError(file, call.pos, `missing required argument \`${req}\` for ${call.callee}(...)`);
  }
  return bound;
}

function expectString(v: Value, what: string, file: string): string {
  if (v.kind !== 'string') throw new RulesLoadError(file, v.pos, `${what} must be a string, found ${typeName(v)}`);
  return v.value;
}

function expectList(v: Value, what: string, file: string): readonly Value[] {
  if (v.kind !== 'list') throw new RulesLoadError(file, v.pos, `${what} must be a list, found ${typeName(v)}`);
  return v.items;
}

function compilePrefixRule(call: Call, args: Map<string, Value>, file: string): PrefixRuleDecl {
  const patternVal = args.get('pattern') as Value;
  const items = expectList(patternVal, '`pattern`', file);
  if (items.length === 0) throw new RulesLoadError(file, patternVal.pos, 'pattern cannot be empty: expected at least the program name');
  const tokens: PatternToken[] = items.map((item) => {
    if (item.kind === 'string') return item.value;
    if (item.kind === 'list') {
      const alts = item.items.map((a) => {
        if (a.kind !== 'string') throw new RulesLoadError(file, a.pos, `pattern alternative must be a string, found ${typeName(a)}`);
        return a.value;
      });
      if (alts.length === 0) throw new RulesLoadError(file, item.pos, 'pattern alternatives cannot be empty: expected at least one string');
      return alts.length === 1 ? (alts[0] as string) : alts;
    }
    throw new RulesLoadError(file, item.pos, `pattern element must be a string or a list of strings, found ${typeName(item)}`);
  });

  let decision: RuleDecision = 'allow';
  const decisionVal = args.get('decision');
  if (decisionVal !== undefined) {
    const raw = expectString(decisionVal, '`decision`', file);
    if (!(DECISIONS as readonly string[]).includes(raw)) {
      throw new RulesLoadError(file, decisionVal.pos, `invalid decision ${JSON.stringify(raw)}: expected "allow", "prompt" or "forbidden"`);
    }
    decision = raw as RuleDecision;
  }

  const justification = optionalJustification(args, file);

  const match = compileExamples(args.get('match'), 'match', file);
  const notMatch = compileExamples(args.get('not_match'), 'not_match', file);

  const [first, ...rest] = tokens as [PatternToken, ...PatternToken[]];
  const heads = typeof first === 'string' ? [first] : first;
  const origin = { file, line: call.pos.line, column: call.pos.column };
  // First-position alternatives expand into one rule per program name (so each is indexed);
  // later alternatives stay alternatives (no cartesian product).
  const rules: PrefixRule[] = heads.map((program) => ({ program, rest, decision, justification, origin }));
  return { rules, match, notMatch, pos: call.pos };
}

/** The optional `justification` of prefix_rule and network_rule: a non-blank string when given. */
function optionalJustification(args: Map<string, Value>, file: string): string | undefined {
  const justVal = args.get('justification');
  if (justVal === undefined) return undefined;
  const justification = expectString(justVal, '`justification`', file);
  if (justification.trim() === '') {
    throw new RulesLoadError(file, justVal.pos, 'justification cannot be empty or blank: explain why the rule exists, or omit it');
  }
  return justification;
}

/** network_rule(host, protocol, decision, justification?): validated as upstream does; kept, but it never decides an exec. */
function compileNetworkRule(call: Call, args: Map<string, Value>, file: string): NetworkRule {
  const hostVal = args.get('host') as Value;
  const host = normalizeNetworkHost(expectString(hostVal, '`host`', file), (msg) => new RulesLoadError(file, hostVal.pos, msg));
  const protoVal = args.get('protocol') as Value;
  const rawProto = expectString(protoVal, '`protocol`', file);
  const protocol = Object.hasOwn(NETWORK_PROTOCOLS, rawProto) ? NETWORK_PROTOCOLS[rawProto] : undefined;
  if (protocol === undefined) {
    throw new RulesLoadError(file, protoVal.pos, `invalid network_rule protocol ${JSON.stringify(rawProto)}: expected one of http, https, socks5_tcp, socks5_udp`);
  }
  const decVal = args.get('decision') as Value;
  const rawDec = expectString(decVal, '`decision`', file);
  // network_rule also accepts "deny" (= forbidden), prefix_rule does not.
  const decision = rawDec === 'deny' ? 'forbidden' : (DECISIONS as readonly string[]).includes(rawDec) ? (rawDec as RuleDecision) : undefined;
  if (decision === undefined) {
    throw new RulesLoadError(file, decVal.pos, `invalid network_rule decision ${JSON.stringify(rawDec)}: expected "allow", "prompt", "forbidden" or "deny"`);
  }
  const justification = optionalJustification(args, file);
  return { host, protocol, decision, justification, origin: { file, line: call.pos.line, column: call.pos.column } };
}

/** Upstream's host normalization: a hostname or IP literal, optional :port dropped, lowercased, no scheme/path/wildcard. */
export function normalizeNetworkHost(raw: string, error: (msg: string) => Error): string {
  let host = raw.trim();
  if (host === '') throw error('network_rule host cannot be empty');
  if (host.includes('://') || /[/?#]/.test(host)) throw error('network_rule host must be a hostname or IP literal (without scheme or path)');
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    if (close < 0) throw error('network_rule host has an invalid bracketed IPv6 literal');
    const rest = host.slice(close + 1);
    if (rest !== '' && !/^:[0-9]+$/.test(rest)) throw error(`network_rule host contains an unsupported suffix: ${raw}`);
    host = host.slice(1, close);
  } else {
    const m = /^([^:]+):([0-9]+)$/.exec(host);
    if (m !== null) host = m[1] as string;
  }
  const normalized = host.replace(/\.+$/, '').trim().toLowerCase();
  if (normalized === '') throw error('network_rule host cannot be empty');
  if (normalized.includes('*')) throw error('network_rule host must be a specific host; wildcards are not allowed');
  if (/\s/.test(normalized)) throw error('network_rule host cannot contain whitespace');
  return normalized;
}

function compileExamples(v: Value | undefined, what: string, file: string): Example[] {
  if (v === undefined) return [];
  return expectList(v, `\`${what}\``, file).map((ex) => {
    if (ex.kind === 'string') {
      const argv = shlexSplit(ex.value);
      if (argv === undefined) throw new RulesLoadError(file, ex.pos, `invalid ${what} example ${JSON.stringify(ex.value)}: unbalanced quotes or a trailing backslash`);
      if (argv.length === 0) throw new RulesLoadError(file, ex.pos, `invalid ${what} example: an example cannot be an empty string`);
      return { argv, pos: ex.pos };
    }
    if (ex.kind === 'list') {
      const argv = ex.items.map((t) => {
        if (t.kind !== 'string') throw new RulesLoadError(file, t.pos, `invalid ${what} example: example tokens must be strings, found ${typeName(t)}`);
        return t.value;
      });
      if (argv.length === 0) throw new RulesLoadError(file, ex.pos, `invalid ${what} example: an example cannot be an empty list`);
      return { argv, pos: ex.pos };
    }
    throw new RulesLoadError(file, ex.pos, `invalid ${what} example: expected a string or a list of strings, found ${typeName(ex)}`);
  });
}

function compileHostExecutable(call: Call, args: Map<string, Value>, file: string, home: string): HostExecutableDecl {
  const nameVal = args.get('name') as Value;
  const name = expectString(nameVal, '`name`', file);
  if (name === '') throw new RulesLoadError(file, nameVal.pos, 'host_executable name cannot be empty');
  if (name.includes('/') || name === '.' || name === '..') {
    throw new RulesLoadError(file, nameVal.pos, `host_executable name must be a bare executable name like "git", found ${JSON.stringify(name)}`);
  }
  const pathsVal = args.get('paths') as Value;
  const paths: string[] = [];
  for (const item of expectList(pathsVal, '`paths`', file)) {
    const raw = expectString(item, 'host_executable paths', file);
    let expanded = raw;
    if (raw === '~') expanded = home;
    else if (raw.startsWith('~/')) expanded = home + '/' + raw.slice(2).replace(/^\/+/, '');
    if (!expanded.startsWith('/')) {
      throw new RulesLoadError(file, item.pos, `host_executable paths must be absolute or start with ~/, found ${JSON.stringify(raw)}`);
    }
    const normalized = normalizeAbsolute(expanded);
    if (pathFileName(normalized) !== name) {
      throw new RulesLoadError(file, item.pos, `host_executable path ${JSON.stringify(raw)} must have basename ${JSON.stringify(name)}`);
    }
    if (!paths.includes(normalized)) paths.push(normalized);
  }
  return { name, paths, pos: call.pos };
}

/**
 * Accumulates files in order: rules append per program, a later host_executable
 * for a name replaces the earlier one. Each file's examples are validated when
 * it is added, against the host_executable table as it stands after that file.
 */
export class RulesBuilder {
  readonly #byProgram = new Map<string, PrefixRule[]>();
  readonly #hostExecutables = new Map<string, readonly string[]>();
  readonly #networkRules: NetworkRule[] = [];

  add(parsed: ParsedRules): this {
    const decls: PrefixRuleDecl[] = [];
    for (const st of parsed.statements) {
      if (st.kind === 'network_rule') {
        this.#networkRules.push(st.decl);
        continue;
      }
      if (st.kind === 'host_executable') {
        this.#hostExecutables.set(st.decl.name, st.decl.paths);
        continue;
      }
      decls.push(st.decl);
      for (const rule of st.decl.rules) {
        const list = this.#byProgram.get(rule.program);
        if (list === undefined) this.#byProgram.set(rule.program, [rule]);
        else list.push(rule);
      }
    }
    for (const decl of decls) validateExamples(decl, this.#hostExecutables, parsed.file);
    return this;
  }

  build(): RuleSet {
    const byProgram = new Map<string, readonly PrefixRule[]>();
    for (const [k, v] of this.#byProgram) byProgram.set(k, [...v]);
    return new RuleSet(byProgram, new Map(this.#hostExecutables), [...this.#networkRules]);
  }
}

function validateExamples(decl: PrefixRuleDecl, hostExecutables: ReadonlyMap<string, readonly string[]>, file: string): void {
  // Examples test this call's own rules (not the whole policy), with host-executable resolution on, like upstream.
  const own = new Map<string, PrefixRule[]>();
  for (const r of decl.rules) own.set(r.program, [...(own.get(r.program) ?? []), r]);
  const set = new RuleSet(own, hostExecutables);
  const ruleName = describeRule(decl.rules[0] as PrefixRule, decl.rules.map((r) => r.program));
  for (const ex of decl.notMatch) {
    if (set.matches(ex.argv, { resolveHostExecutables: true }).length > 0) {
      throw new RulesLoadError(
        file,
        ex.pos,
        `not_match example \`${shlexJoin(ex.argv)}\` matches ${ruleName}: expected it not to match`,
      );
    }
  }
  for (const ex of decl.match) {
    if (set.matches(ex.argv, { resolveHostExecutables: true }).length === 0) {
      throw new RulesLoadError(
        file,
        ex.pos,
        `match example \`${shlexJoin(ex.argv)}\` does not match ${ruleName}: expected it to match`,
      );
    }
  }
}

export interface RulesSource {
  readonly file: string;
  readonly source: string;
}

/** Parses and merges sources in order into one RuleSet; throws RulesLoadError. */
export function compileRules(sources: readonly RulesSource[], opts: CompileOptions = {}): RuleSet {
  const builder = new RulesBuilder();
  for (const s of sources) builder.add(parseRulesSource(s.source, s.file, opts));
  return builder.build();
}

/** Reads one rules file. Unreadable files are RulesLoadError at 1:1. */
export async function readRulesFile(file: string): Promise<RulesSource> {
  try {
    return { file, source: await readFile(file, 'utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new RulesLoadError(file, { line: 1, column: 1 }, `cannot read rules file: ${why}`, { cause: err });
  }
}

/** Reads and merges rules files in order. Unreadable files are RulesLoadError at 1:1. */
export async function loadRulesFiles(paths: readonly string[], opts: CompileOptions = {}): Promise<RuleSet> {
  const sources: RulesSource[] = [];
  for (const file of paths) sources.push(await readRulesFile(file));
  return compileRules(sources, opts);
}
