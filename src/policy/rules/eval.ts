/**
 * A bounded Starlark evaluator for `.rules` files. Runs the module and records
 * every call of the rules builtins (prefix_rule, host_executable,
 * network_rule) in order; compile.ts checks their arguments.
 *
 * Rules files can come from hostile places, so evaluation is bounded: a step
 * budget (every expression and loop iteration counts), caps on the size of
 * any string, list or dict, no recursion (Starlark forbids it) and no `while`.
 * Every runtime error points at file:line:column.
 */
import { braceTemplate } from './braces.js';
import { RulesLoadError, type SourcePos } from './errors.js';
import { parseModule, startPos, type Argument, type Call, type CallArg, type Clause, type Expr, type Param, type Stmt, type Target, type Value } from './parser.js';

/** Limits on one file's evaluation (all generous for real policies: the largest known is a few hundred rules). */
export const EVAL_LIMITS = {
  /** Work units: one per expression and loop iteration, plus one per element (or 16 characters) built, copied, searched or compared. */
  steps: 5_000_000,
  /** Size of one rules file, in characters. */
  sourceChars: 16 * 1024 * 1024,
  /** Brackets, calls and operators nested in one expression (the parser recurses on them). */
  nesting: 200,
  /** Elements in one list, tuple or dict. */
  items: 100_000,
  /** Characters in one string. */
  chars: 1_000_000,
  /** Nested function calls. */
  callDepth: 64,
  /** Calls of the rules builtins. */
  ruleCalls: 100_000,
} as const;

/** The names a rules file may call to declare policy. */
export const RULE_BUILTINS = ['prefix_rule', 'host_executable', 'network_rule'] as const;

type Fn = (args: readonly RV[], kwargs: readonly (readonly [string, RV, SourcePos])[], at: SourcePos, argPos: readonly SourcePos[]) => RV;

interface UserFn {
  readonly name: string;
  readonly params: readonly Param[];
  readonly defaults: readonly (RV | undefined)[];
  readonly body: readonly Stmt[] | Expr;
}

/** Runtime values. `pos` is where the value was written (a literal) or computed. */
type RV =
  | { readonly t: 'str'; readonly v: string; readonly pos: SourcePos }
  | { readonly t: 'int'; readonly v: number; readonly pos: SourcePos }
  | { readonly t: 'bool'; readonly v: boolean; readonly pos: SourcePos }
  | { readonly t: 'none'; readonly pos: SourcePos }
  | { readonly t: 'list'; readonly items: RV[]; readonly pos: SourcePos }
  | { readonly t: 'tuple'; readonly items: readonly RV[]; readonly pos: SourcePos }
  | { readonly t: 'dict'; readonly map: Map<string, readonly [RV, RV]>; readonly pos: SourcePos }
  | { readonly t: 'function'; readonly fn: UserFn; readonly pos: SourcePos }
  | { readonly t: 'builtin'; readonly name: string; readonly call: Fn; readonly pos: SourcePos };

const TYPE_NAMES: Readonly<Record<RV['t'], string>> = {
  str: 'string',
  int: 'int',
  bool: 'bool',
  none: 'NoneType',
  list: 'list',
  tuple: 'tuple',
  dict: 'dict',
  function: 'function',
  builtin: 'builtin_function_or_method',
};
const tn = (v: RV): string => TYPE_NAMES[v.t];

class Return {
  constructor(readonly value: RV) {}
}
const BREAK = Symbol('break');
const CONTINUE = Symbol('continue');
type Flow = undefined | typeof BREAK | typeof CONTINUE | Return;

/** Evaluates `source` and returns the rules-builtin calls it made, in order. Throws RulesLoadError. */
export function evaluateRules(source: string, file: string): Call[] {
  if (source.length > EVAL_LIMITS.sourceChars) {
    throw new RulesLoadError(file, { line: 1, column: 1 }, `rules file too large: ${source.length} characters, at most ${EVAL_LIMITS.sourceChars}`);
  }
  const module = parseModule(source, file, EVAL_LIMITS.nesting);
  const ev = new Evaluator(file);
  try {
    return ev.run(module);
  } catch (err) {
    // A value nested deeper than the JS stack (built in a loop) must still fail as a load error with a position.
    if (err instanceof RangeError) throw new RulesLoadError(file, ev.lastPos, `evaluation nested too deeply (${err.message})`, { cause: err });
    throw err;
  }
}

class Evaluator {
  readonly #file: string;
  readonly #globals = new Map<string, RV>();
  readonly #builtins = new Map<string, RV>();
  readonly #calls: Call[] = [];
  #steps = 0;
  /** The statement being run, for errors that have no better position. */
  lastPos: SourcePos = { line: 1, column: 1 };
  readonly #active = new Set<UserFn>();
  #depth = 0;

  constructor(file: string) {
    this.#file = file;
    this.#installBuiltins();
  }

  run(module: readonly Stmt[]): Call[] {
    const flow = this.#execBlock(module, undefined);
    if (flow instanceof Return) this.#fail(module[0]?.pos ?? { line: 1, column: 1 }, '`return` outside a function');
    return this.#calls;
  }

  #fail(at: SourcePos, msg: string): never {
    throw new RulesLoadError(this.#file, at, msg);
  }

  #step(at: SourcePos, units = 1): void {
    this.#steps += units;
    if (this.#steps > EVAL_LIMITS.steps) {
      this.#fail(at, `evaluation exceeded ${EVAL_LIMITS.steps} steps: a rules file must finish quickly (is a loop too large?)`);
    }
  }

  #checkItems(n: number, at: SourcePos): void {
    if (n > EVAL_LIMITS.items) this.#fail(at, `a list, tuple or dict would have ${n} elements: at most ${EVAL_LIMITS.items} are allowed in a rules file`);
    this.#step(at, n);
  }

  #str(v: string, at: SourcePos): RV {
    this.#step(at, v.length >> 4);
    if (v.length > EVAL_LIMITS.chars) this.#fail(at, `a string would have ${v.length} characters: at most ${EVAL_LIMITS.chars} are allowed in a rules file`);
    return { t: 'str', v, pos: at };
  }

  #int(v: number, at: SourcePos): RV {
    if (!Number.isSafeInteger(v)) this.#fail(at, `integer overflow: the result is beyond ±${Number.MAX_SAFE_INTEGER}`);
    return { t: 'int', v, pos: at };
  }

  #list(items: RV[], at: SourcePos): RV {
    this.#checkItems(items.length, at);
    return { t: 'list', items, pos: at };
  }

  // ---------------------------------------------------------------- statements

  #execBlock(stmts: readonly Stmt[], locals: Map<string, RV> | undefined): Flow {
    for (const s of stmts) {
      const flow = this.#exec(s, locals);
      if (flow !== undefined) return flow;
    }
    return undefined;
  }

  #exec(s: Stmt, locals: Map<string, RV> | undefined): Flow {
    this.#step(s.pos);
    this.lastPos = s.pos;
    switch (s.k) {
      case 'expr':
        this.#eval(s.e, locals);
        return undefined;
      case 'assign':
        this.#assign(s.target, this.#eval(s.e, locals), locals);
        return undefined;
      case 'augassign': {
        const cur = this.#eval(s.target.k === 'name' ? { k: 'name', name: s.target.name, pos: s.target.pos } : { k: 'index', obj: (s.target as { obj: Expr }).obj, idx: (s.target as { idx: Expr }).idx, pos: s.target.pos }, locals);
        const rhs = this.#eval(s.e, locals);
        // `x += list` extends x in place, as in Starlark.
        if (s.op === '+' && cur.t === 'list' && rhs.t === 'list') {
          this.#checkItems(cur.items.length + rhs.items.length, s.pos);
          cur.items.push(...rhs.items);
          return undefined;
        }
        this.#assign(s.target, this.#binary(s.op, cur, rhs, s.pos), locals);
        return undefined;
      }
      case 'def': {
        const defaults = s.params.map((p) => (p.default !== undefined ? this.#eval(p.default, locals) : undefined));
        this.#assign({ k: 'name', name: s.name, pos: s.pos }, { t: 'function', fn: { name: s.name, params: s.params, defaults, body: s.body }, pos: s.pos }, locals);
        return undefined;
      }
      case 'for': {
        const items = this.#iterate(this.#eval(s.iter, locals), s.iter.pos);
        for (const item of items) {
          this.#step(s.pos);
          this.#assign(s.target, item, locals);
          const flow = this.#execBlock(s.body, locals);
          if (flow === BREAK) break;
          if (flow === CONTINUE) continue;
          if (flow !== undefined) return flow;
        }
        return undefined;
      }
      case 'if':
        return this.#execBlock(truthy(this.#eval(s.cond, locals)) ? s.body : s.orelse, locals);
      case 'return':
        return new Return(s.e !== undefined ? this.#eval(s.e, locals) : { t: 'none', pos: s.pos });
      case 'break':
        return BREAK;
      case 'continue':
        return CONTINUE;
      case 'pass':
        return undefined;
    }
  }

  #assign(target: Target, v: RV, locals: Map<string, RV> | undefined): void {
    if (target.k === 'name') {
      if (RULE_BUILTINS.includes(target.name as (typeof RULE_BUILTINS)[number])) {
        this.#fail(target.pos, `cannot assign to \`${target.name}\`: it is a rules builtin`);
      }
      (locals ?? this.#globals).set(target.name, v);
      return;
    }
    if (target.k === 'tuple') {
      const items = this.#iterate(v, target.pos);
      if (items.length !== target.items.length) {
        this.#fail(target.pos, `cannot unpack ${items.length} values into ${target.items.length} names`);
      }
      target.items.forEach((t, i) => this.#assign(t, items[i] as RV, locals));
      return;
    }
    const obj = this.#eval(target.obj, locals);
    const idx = this.#eval(target.idx, locals);
    if (obj.t === 'list') {
      obj.items[this.#index(idx, obj.items.length, target.pos)] = v;
      return;
    }
    if (obj.t === 'dict') {
      this.#checkItems(obj.map.size + 1, target.pos);
      obj.map.set(this.#key(idx), [idx, v]);
      return;
    }
    this.#fail(target.pos, `cannot assign to an element of a ${tn(obj)}`);
  }

  // ---------------------------------------------------------------- expressions

  #eval(e: Expr, locals: Map<string, RV> | undefined): RV {
    this.#step(e.pos);
    switch (e.k) {
      case 'str':
        return { t: 'str', v: e.v, pos: e.pos };
      case 'int':
        return { t: 'int', v: e.v, pos: e.pos };
      case 'fstr': {
        let out = '';
        for (const part of e.parts) {
          out += typeof part === 'string' ? part : toStr(this.#lookup(part.name, part.pos, locals));
          if (out.length > EVAL_LIMITS.chars) this.#str(out, e.pos);
        }
        return this.#str(out, e.pos);
      }
      case 'name': {
        const v = this.#lookup(e.name, e.pos, locals);
        // Constants are where they are used.
        return v.t === 'none' || v.t === 'bool' ? { ...v, pos: e.pos } : v;
      }
      case 'list':
        return this.#list(e.items.map((i) => this.#eval(i, locals)), e.pos);
      case 'tuple':
        return { t: 'tuple', items: e.items.map((i) => this.#eval(i, locals)), pos: e.pos };
      case 'dict': {
        const map = new Map<string, readonly [RV, RV]>();
        for (const [ke, ve] of e.entries) {
          const k = this.#eval(ke, locals);
          const key = this.#key(k);
          if (map.has(key)) this.#fail(ke.pos, `duplicate key ${toRepr(k)} in dictionary literal`);
          map.set(key, [k, this.#eval(ve, locals)]);
        }
        return { t: 'dict', map, pos: e.pos };
      }
      case 'listcomp': {
        const out: RV[] = [];
        // Comprehension variables are local to the comprehension.
        const scope = new Map(locals ?? []);
        this.#comprehend(e.clauses, 0, scope, locals === undefined, () => {
          out.push(this.#eval(e.elt, scope));
          this.#checkItems(out.length, e.pos);
        });
        return this.#list(out, e.pos);
      }
      case 'dictcomp': {
        const map = new Map<string, readonly [RV, RV]>();
        const scope = new Map(locals ?? []);
        this.#comprehend(e.clauses, 0, scope, locals === undefined, () => {
          const k = this.#eval(e.key, scope);
          map.set(this.#key(k), [k, this.#eval(e.val, scope)]);
          this.#checkItems(map.size, e.pos);
        });
        return { t: 'dict', map, pos: e.pos };
      }
      case 'call':
        return this.#evalCall(e.fn, e.args, e.pos, locals);
      case 'index': {
        const obj = this.#eval(e.obj, locals);
        const idx = this.#eval(e.idx, locals);
        if (obj.t === 'list' || obj.t === 'tuple') return obj.items[this.#index(idx, obj.items.length, e.pos)] as RV;
        if (obj.t === 'str') return { t: 'str', v: obj.v[this.#index(idx, obj.v.length, e.pos)] as string, pos: e.pos };
        if (obj.t === 'dict') {
          const hit = obj.map.get(this.#key(idx));
          if (hit === undefined) this.#fail(e.pos, `key ${toRepr(idx)} not found in dictionary`);
          return hit[1];
        }
        return this.#fail(e.pos, `a ${tn(obj)} cannot be indexed`);
      }
      case 'slice': {
        const obj = this.#eval(e.obj, locals);
        const num = (x: Expr | undefined): number | undefined => {
          if (x === undefined) return undefined;
          const v = this.#eval(x, locals);
          if (v.t === 'none') return undefined;
          if (v.t !== 'int') this.#fail(x.pos, `slice indices must be int or None, found ${tn(v)}`);
          return v.v;
        };
        const step = num(e.step) ?? 1;
        if (step === 0) this.#fail(e.pos, 'slice step cannot be zero');
        const len = obj.t === 'str' ? obj.v.length : obj.t === 'list' || obj.t === 'tuple' ? obj.items.length : this.#fail(e.pos, `a ${tn(obj)} cannot be sliced`);
        const idx = sliceIndices(len, num(e.lo), num(e.hi), step);
        if (obj.t === 'str') return this.#str(idx.map((i) => obj.v[i]).join(''), e.pos);
        const items = idx.map((i) => (obj as { items: readonly RV[] }).items[i] as RV);
        return obj.t === 'list' ? this.#list(items, e.pos) : { t: 'tuple', items, pos: e.pos };
      }
      case 'attr':
        return this.#method(this.#eval(e.obj, locals), e.name, e.pos);
      case 'unary': {
        const v = this.#eval(e.e, locals);
        if (e.op === 'not') return { t: 'bool', v: !truthy(v), pos: e.pos };
        if (v.t !== 'int') this.#fail(e.pos, `unary ${e.op} needs an int, found ${tn(v)}`);
        return this.#int(e.op === '-' ? -v.v : e.op === '~' ? ~v.v : v.v, e.pos);
      }
      case 'bin': {
        if (e.op === 'and' || e.op === 'or') {
          const l = this.#eval(e.l, locals);
          if (truthy(l) === (e.op === 'or')) return l;
          return this.#eval(e.r, locals);
        }
        // Errors point at the operator; the value is where its expression starts.
        const v = this.#binary(e.op, this.#eval(e.l, locals), this.#eval(e.r, locals), e.pos);
        return { ...v, pos: startPos(e) };
      }
      case 'cond':
        return truthy(this.#eval(e.c, locals)) ? this.#eval(e.a, locals) : this.#eval(e.b, locals);
      case 'lambda': {
        const defaults = e.params.map((p) => (p.default !== undefined ? this.#eval(p.default, locals) : undefined));
        return { t: 'function', fn: { name: 'lambda', params: e.params, defaults, body: e.body }, pos: e.pos };
      }
    }
  }

  #comprehend(clauses: readonly Clause[], i: number, scope: Map<string, RV>, _topLevel: boolean, emit: () => void): void {
    const c = clauses[i];
    if (c === undefined) {
      emit();
      return;
    }
    if (c.k === 'if') {
      if (truthy(this.#eval(c.cond, scope))) this.#comprehend(clauses, i + 1, scope, _topLevel, emit);
      return;
    }
    for (const item of this.#iterate(this.#eval(c.iter, scope), c.iter.pos)) {
      this.#step(c.iter.pos);
      this.#assign(c.target, item, scope);
      this.#comprehend(clauses, i + 1, scope, _topLevel, emit);
    }
  }

  #lookup(name: string, at: SourcePos, locals: Map<string, RV> | undefined): RV {
    const v = locals?.get(name) ?? this.#globals.get(name) ?? this.#builtins.get(name);
    if (v === undefined) {
      this.#fail(at, `unknown name \`${name}\`: not defined before this line (nor a builtin)`);
    }
    return v;
  }

  #evalCall(fnExpr: Expr, argExprs: readonly CallArg[], at: SourcePos, locals: Map<string, RV> | undefined): RV {
    let fn: RV;
    if (fnExpr.k === 'name' && locals?.get(fnExpr.name) === undefined && !this.#globals.has(fnExpr.name) && !this.#builtins.has(fnExpr.name)) {
      this.#fail(fnExpr.pos, `unknown function \`${fnExpr.name}\`: expected prefix_rule, host_executable, network_rule, a builtin, or a function defined above`);
    }
    fn = this.#eval(fnExpr, locals);
    // A rules builtin's argument errors point at the argument as written in the call (its elements keep their own positions).
    const here = fn.t === 'builtin' && (RULE_BUILTINS as readonly string[]).includes(fn.name);
    const args: RV[] = [];
    const argPos: SourcePos[] = [];
    const kwargs: [string, RV, SourcePos][] = [];
    for (const a of argExprs) {
      const raw = this.#eval(a.value, locals);
      const v: RV = here && (a.kind === 'pos' || a.kind === 'kw') ? { ...raw, pos: a.value.pos } : raw;
      if (a.kind === 'pos') {
        if (kwargs.length > 0) this.#fail(a.value.pos, `positional argument after keyword argument in ${calleeName(fnExpr)}(...)`);
        args.push(v);
        argPos.push(a.namePos);
      } else if (a.kind === 'kw') {
        kwargs.push([a.name as string, v, a.namePos]);
      } else if (a.kind === 'star') {
        for (const item of this.#iterate(v, a.value.pos)) {
          args.push(item);
          argPos.push(item.pos);
        }
      } else {
        if (v.t !== 'dict') this.#fail(a.value.pos, `** argument must be a dict, found ${tn(v)}`);
        for (const [k, val] of v.map.values()) {
          if (k.t !== 'str') this.#fail(a.value.pos, `** argument keys must be strings, found ${tn(k)}`);
          kwargs.push([k.v, val, a.namePos]);
        }
      }
    }
    if (fn.t === 'builtin') return fn.call(args, kwargs, at, argPos);
    if (fn.t === 'function') return this.#callUser(fn.fn, args, kwargs, at);
    return this.#fail(at, `a ${tn(fn)} is not callable`);
  }

  #callUser(fn: UserFn, args: readonly RV[], kwargs: readonly (readonly [string, RV, SourcePos])[], at: SourcePos): RV {
    if (this.#active.has(fn)) this.#fail(at, `recursion is not allowed: \`${fn.name}\` is already running (Starlark forbids recursion)`);
    if (this.#depth >= EVAL_LIMITS.callDepth) this.#fail(at, `calls nested more than ${EVAL_LIMITS.callDepth} deep`);
    const locals = new Map<string, RV>();
    let ai = 0;
    let starName: string | undefined;
    let kwName: string | undefined;
    let kwOnly = false;
    const named = new Map<string, number>();
    fn.params.forEach((p, i) => {
      if (p.kind === 'star') {
        kwOnly = true;
        if (p.name !== '') starName = p.name;
        return;
      }
      if (p.kind === 'kwstar') {
        kwName = p.name;
        return;
      }
      named.set(p.name, i);
      if (!kwOnly && ai < args.length) locals.set(p.name, args[ai++] as RV);
    });
    if (ai < args.length) {
      if (starName === undefined) this.#fail(at, `${fn.name}() takes ${ai} positional argument${ai === 1 ? '' : 's'} but ${args.length} were given`);
      locals.set(starName, { t: 'tuple', items: args.slice(ai), pos: at });
    } else if (starName !== undefined) locals.set(starName, { t: 'tuple', items: [], pos: at });
    const extra = new Map<string, readonly [RV, RV]>();
    for (const [k, v, kp] of kwargs) {
      if (named.has(k)) {
        if (locals.has(k)) this.#fail(kp, `argument \`${k}\` given more than once in ${fn.name}(...)`);
        locals.set(k, v);
      } else if (kwName !== undefined) {
        extra.set(`s:${k}`, [{ t: 'str', v: k, pos: kp }, v]);
      } else {
        this.#fail(kp, `unknown keyword argument \`${k}\` for ${fn.name}()`);
      }
    }
    if (kwName !== undefined) locals.set(kwName, { t: 'dict', map: extra, pos: at });
    fn.params.forEach((p, i) => {
      if (p.kind !== 'normal' || locals.has(p.name)) return;
      const d = fn.defaults[i];
      if (d === undefined) this.#fail(at, `missing argument \`${p.name}\` for ${fn.name}()`);
      locals.set(p.name, d);
    });
    this.#active.add(fn);
    this.#depth++;
    try {
      if (!Array.isArray(fn.body)) return this.#eval(fn.body as Expr, locals);
      const flow = this.#execBlock(fn.body as readonly Stmt[], locals);
      return flow instanceof Return ? flow.value : { t: 'none', pos: at };
    } finally {
      this.#depth--;
      this.#active.delete(fn);
    }
  }

  #iterate(v: RV, at: SourcePos): readonly RV[] {
    // A copy: mutating the list inside the loop cannot make it run longer.
    if (v.t === 'list') {
      this.#step(at, v.items.length);
      return [...v.items];
    }
    if (v.t === 'tuple') return v.items;
    if (v.t === 'dict') {
      this.#step(at, v.map.size);
      return [...v.map.values()].map(([k]) => k);
    }
    return this.#fail(at, `a ${tn(v)} is not iterable${v.t === 'str' ? ' (Starlark strings are not: use .elems() or .split())' : ''}`);
  }

  #index(idx: RV, len: number, at: SourcePos): number {
    if (idx.t !== 'int') this.#fail(at, `index must be an int, found ${tn(idx)}`);
    const i = idx.v < 0 ? idx.v + len : idx.v;
    if (i < 0 || i >= len) this.#fail(at, `index ${idx.v} out of range (length ${len})`);
    return i;
  }

  #key(v: RV): string {
    switch (v.t) {
      case 'str':
        return `s:${v.v}`;
      case 'int':
        return `i:${v.v}`;
      case 'bool':
        return `b:${v.v}`;
      case 'none':
        return 'n';
      case 'tuple':
        return `t:[${v.items.map((x) => this.#key(x)).join(',')}]`;
      default:
        return this.#fail(v.pos, `a ${tn(v)} cannot be a dictionary key (not hashable)`);
    }
  }

  #binary(op: string, l: RV, r: RV, at: SourcePos): RV {
    switch (op) {
      case '==':
      case '!=':
        this.#step(at, sizeOf(l) + sizeOf(r));
        return { t: 'bool', v: equal(l, r) === (op === '=='), pos: at };
      case '<':
      case '>':
      case '<=':
      case '>=': {
        const c = this.#compare(l, r, at);
        return { t: 'bool', v: op === '<' ? c < 0 : op === '>' ? c > 0 : op === '<=' ? c <= 0 : c >= 0, pos: at };
      }
      case 'in':
      case 'not in': {
        let found: boolean;
        this.#step(at, sizeOf(r) + sizeOf(l));
        if (r.t === 'str') {
          if (l.t !== 'str') this.#fail(at, `'in <string>' needs a string on the left, found ${tn(l)}`);
          found = r.v.includes(l.v);
        } else if (r.t === 'list' || r.t === 'tuple') found = r.items.some((x) => equal(x, l));
        else if (r.t === 'dict') found = r.map.has(this.#key(l));
        else return this.#fail(at, `'in' needs a string, list, tuple or dict on the right, found ${tn(r)}`);
        return { t: 'bool', v: op === 'in' ? found : !found, pos: at };
      }
      case '+':
        if (l.t === 'int' && r.t === 'int') return this.#int(l.v + r.v, at);
        if (l.t === 'str' && r.t === 'str') return this.#str(l.v + r.v, at);
        if (l.t === 'list' && r.t === 'list') return this.#list([...l.items, ...r.items], at);
        if (l.t === 'tuple' && r.t === 'tuple') {
          this.#checkItems(l.items.length + r.items.length, at);
          return { t: 'tuple', items: [...l.items, ...r.items], pos: at };
        }
        break;
      case '-':
        if (l.t === 'int' && r.t === 'int') return this.#int(l.v - r.v, at);
        break;
      case '*': {
        if (l.t === 'int' && r.t === 'int') return this.#int(l.v * r.v, at);
        const [seq, n] = l.t === 'int' ? [r, l.v] : r.t === 'int' ? [l, r.v] : [undefined, 0];
        if (seq?.t === 'str') {
          if (seq.v.length * Math.max(n, 0) > EVAL_LIMITS.chars) this.#str('x'.repeat(EVAL_LIMITS.chars + 1), at);
          return this.#str(seq.v.repeat(Math.max(n, 0)), at);
        }
        if (seq?.t === 'list' || seq?.t === 'tuple') {
          this.#checkItems(seq.items.length * Math.max(n, 0), at);
          const items: RV[] = [];
          for (let i = 0; i < n; i++) items.push(...seq.items);
          return seq.t === 'list' ? this.#list(items, at) : { t: 'tuple', items, pos: at };
        }
        break;
      }
      case '/':
        if (l.t === 'int' && r.t === 'int') this.#fail(at, 'floating-point division (`/`) is not supported: use `//`');
        break;
      case '//':
      case '%':
        if (l.t === 'int' && r.t === 'int') {
          if (r.v === 0) this.#fail(at, op === '//' ? 'integer division by zero' : 'integer modulo by zero');
          // Starlark rounds toward minus infinity, like Python.
          return this.#int(op === '//' ? Math.floor(l.v / r.v) : l.v - r.v * Math.floor(l.v / r.v), at);
        }
        if (op === '%' && l.t === 'str') return this.#str(this.#percent(l.v, r, at), at);
        break;
      case '|':
        if (l.t === 'int' && r.t === 'int') return this.#int(l.v | r.v, at);
        if (l.t === 'dict' && r.t === 'dict') {
          const map = new Map([...l.map, ...r.map]);
          this.#checkItems(map.size, at);
          return { t: 'dict', map, pos: at };
        }
        break;
      case '&':
        if (l.t === 'int' && r.t === 'int') return this.#int(l.v & r.v, at);
        break;
      case '^':
        if (l.t === 'int' && r.t === 'int') return this.#int(l.v ^ r.v, at);
        break;
      case '<<':
      case '>>':
        if (l.t === 'int' && r.t === 'int') {
          if (r.v < 0 || r.v > 52) this.#fail(at, `shift count ${r.v} out of range`);
          return this.#int(op === '<<' ? l.v * 2 ** r.v : Math.floor(l.v / 2 ** r.v), at);
        }
        break;
    }
    return this.#fail(at, `unsupported operand types for ${op}: ${tn(l)} and ${tn(r)}`);
  }

  #compare(l: RV, r: RV, at: SourcePos): number {
    if (l.t === 'int' && r.t === 'int') return l.v - r.v;
    this.#step(at, sizeOf(l) + sizeOf(r));
    if (l.t === 'str' && r.t === 'str') return l.v < r.v ? -1 : l.v > r.v ? 1 : 0;
    if ((l.t === 'list' && r.t === 'list') || (l.t === 'tuple' && r.t === 'tuple')) {
      const n = Math.min(l.items.length, r.items.length);
      for (let i = 0; i < n; i++) {
        const a = l.items[i] as RV;
        const b = r.items[i] as RV;
        if (!equal(a, b)) return this.#compare(a, b, at);
      }
      return l.items.length - r.items.length;
    }
    if (l.t === 'bool' && r.t === 'bool') return Number(l.v) - Number(r.v);
    return this.#fail(at, `cannot compare ${tn(l)} with ${tn(r)}`);
  }

  /** `"%s-%d" % (a, b)`: %s %d %r %% (what policies need). */
  #percent(fmt: string, arg: RV, at: SourcePos): string {
    const args = arg.t === 'tuple' ? arg.items : [arg];
    let i = 0;
    const out = fmt.replace(/%(.)?/g, (_m, c: string | undefined) => {
      if (c === '%') return '%';
      if (c === undefined) this.#fail(at, 'incomplete format: a `%` at the end of the string');
      if (c !== 's' && c !== 'd' && c !== 'r') this.#fail(at, `unsupported format directive %${c}: use %s, %d, %r or %%`);
      const v = args[i++];
      if (v === undefined) this.#fail(at, 'not enough arguments for the format string');
      if (c === 'd' && v.t !== 'int') this.#fail(at, `%d needs an int, found ${tn(v)}`);
      return c === 'r' ? toRepr(v) : toStr(v);
    });
    if (i < args.length) this.#fail(at, 'too many arguments for the format string');
    return out;
  }

  // ---------------------------------------------------------------- methods

  #method(obj: RV, name: string, at: SourcePos): RV {
    const m = (call: Fn): RV => ({ t: 'builtin', name: `${tn(obj)}.${name}`, call, pos: at });
    const str = (v: RV, what: string, p: SourcePos): string => {
      if (v.t !== 'str') this.#fail(p, `${what} must be a string, found ${tn(v)}`);
      return v.v;
    };
    const arity = (args: readonly RV[], kwargs: readonly unknown[], min: number, max: number, p: SourcePos): void => {
      if (kwargs.length > 0) this.#fail(p, `${tn(obj)}.${name}() takes no keyword arguments`);
      if (args.length < min || args.length > max) {
        this.#fail(p, `${tn(obj)}.${name}() takes ${min === max ? min : `${min} to ${max}`} argument${max === 1 ? '' : 's'}, got ${args.length}`);
      }
    };
    if (obj.t === 'str') {
      const s = obj.v;
      switch (name) {
        case 'format':
          return m((args, kwargs, p) => this.#str(this.#format(s, args, kwargs, p), p));
        case 'join':
          return m((args, kw, p) => {
            arity(args, kw, 1, 1, p);
            const parts = this.#iterate(args[0] as RV, p).map((x) => str(x, 'join() element', p));
            return this.#str(parts.join(s), p);
          });
        case 'split':
        case 'rsplit':
          return m((args, kw, p) => {
            arity(args, kw, 0, 2, p);
            const sep = args[0] === undefined || args[0].t === 'none' ? undefined : str(args[0], 'separator', p);
            if (sep === '') this.#fail(p, 'empty separator');
            const max = args[1] === undefined ? -1 : args[1].t === 'int' ? args[1].v : this.#fail(p, 'maxsplit must be an int');
            let parts = sep === undefined ? s.split(/\s+/).filter((x) => x !== '') : s.split(sep);
            if (max >= 0 && parts.length > max + 1) {
              const joiner = sep ?? ' ';
              parts = name === 'split' ? [...parts.slice(0, max), parts.slice(max).join(joiner)] : [parts.slice(0, parts.length - max).join(joiner), ...parts.slice(parts.length - max)];
            }
            return this.#list(parts.map((x) => ({ t: 'str', v: x, pos: p })), p);
          });
        case 'strip':
        case 'lstrip':
        case 'rstrip':
          return m((args, kw, p) => {
            arity(args, kw, 0, 1, p);
            const chars = args[0] === undefined || args[0].t === 'none' ? undefined : str(args[0], 'chars', p);
            const set = (c: string): boolean => (chars === undefined ? /\s/.test(c) : chars.includes(c));
            let a = 0;
            let b = s.length;
            if (name !== 'rstrip') while (a < b && set(s[a] as string)) a++;
            if (name !== 'lstrip') while (b > a && set(s[b - 1] as string)) b--;
            return { t: 'str', v: s.slice(a, b), pos: p };
          });
        case 'startswith':
        case 'endswith':
          return m((args, kw, p) => {
            arity(args, kw, 1, 1, p);
            const a = args[0] as RV;
            const cands = a.t === 'tuple' ? a.items.map((x) => str(x, `${name}() argument`, p)) : [str(a, `${name}() argument`, p)];
            return { t: 'bool', v: cands.some((c) => (name === 'startswith' ? s.startsWith(c) : s.endsWith(c))), pos: p };
          });
        case 'replace':
          return m((args, kw, p) => {
            arity(args, kw, 2, 3, p);
            const from = str(args[0] as RV, 'old', p);
            const to = str(args[1] as RV, 'new', p);
            const count = args[2] === undefined ? -1 : args[2].t === 'int' ? args[2].v : this.#fail(p, 'count must be an int');
            let out = '';
            let rest = s;
            let n = 0;
            if (from === '') return this.#str(count < 0 ? to + [...s].join(to) + to : s, p);
            for (;;) {
              const i = rest.indexOf(from);
              if (i < 0 || (count >= 0 && n >= count)) break;
              out += rest.slice(0, i) + to;
              rest = rest.slice(i + from.length);
              n++;
              if (out.length > EVAL_LIMITS.chars) this.#str(out, p);
            }
            return this.#str(out + rest, p);
          });
        case 'lower':
        case 'upper':
        case 'title':
        case 'capitalize':
          return m((args, kw, p) => {
            arity(args, kw, 0, 0, p);
            const v = name === 'lower' ? s.toLowerCase() : name === 'upper' ? s.toUpperCase() : name === 'capitalize' ? s.charAt(0).toUpperCase() + s.slice(1).toLowerCase() : s.replace(/\w\S*/g, (w) => w.charAt(0).toUpperCase() + w.slice(1).toLowerCase());
            return { t: 'str', v, pos: p };
          });
        case 'removeprefix':
        case 'removesuffix':
          return m((args, kw, p) => {
            arity(args, kw, 1, 1, p);
            const a = str(args[0] as RV, name, p);
            const v = name === 'removeprefix' ? (s.startsWith(a) ? s.slice(a.length) : s) : a !== '' && s.endsWith(a) ? s.slice(0, -a.length) : s;
            return { t: 'str', v, pos: p };
          });
        case 'count':
        case 'find':
        case 'index':
          return m((args, kw, p) => {
            arity(args, kw, 1, 1, p);
            const a = str(args[0] as RV, 'substring', p);
            if (name === 'count') return { t: 'int', v: a === '' ? s.length + 1 : s.split(a).length - 1, pos: p };
            const i = s.indexOf(a);
            if (i < 0 && name === 'index') this.#fail(p, `substring ${JSON.stringify(a)} not found`);
            return { t: 'int', v: i, pos: p };
          });
        case 'splitlines':
          return m((args, kw, p) => {
            arity(args, kw, 0, 0, p);
            const lines = s.split(/\r\n|\r|\n/);
            if (lines[lines.length - 1] === '') lines.pop();
            return this.#list(lines.map((x) => ({ t: 'str', v: x, pos: p })), p);
          });
        case 'elems':
          return m((args, kw, p) => {
            arity(args, kw, 0, 0, p);
            return this.#list([...s].map((x) => ({ t: 'str', v: x, pos: p })), p);
          });
        case 'isdigit':
        case 'isalpha':
        case 'isalnum':
        case 'isspace':
          return m((args, kw, p) => {
            arity(args, kw, 0, 0, p);
            const re = name === 'isdigit' ? /^[0-9]+$/ : name === 'isalpha' ? /^[A-Za-z]+$/ : name === 'isalnum' ? /^[A-Za-z0-9]+$/ : /^\s+$/;
            return { t: 'bool', v: re.test(s), pos: p };
          });
      }
    }
    if (obj.t === 'list') {
      const items = obj.items;
      switch (name) {
        case 'append':
          return m((args, kw, p) => {
            arity(args, kw, 1, 1, p);
            this.#checkItems(items.length + 1, p);
            items.push(args[0] as RV);
            return { t: 'none', pos: p };
          });
        case 'extend':
          return m((args, kw, p) => {
            arity(args, kw, 1, 1, p);
            const more = this.#iterate(args[0] as RV, p);
            this.#checkItems(items.length + more.length, p);
            items.push(...more);
            return { t: 'none', pos: p };
          });
        case 'insert':
          return m((args, kw, p) => {
            arity(args, kw, 2, 2, p);
            const i = (args[0] as RV).t === 'int' ? ((args[0] as { v: number }).v) : this.#fail(p, 'insert() index must be an int');
            this.#checkItems(items.length + 1, p);
            items.splice(i < 0 ? Math.max(0, items.length + i) : Math.min(i, items.length), 0, args[1] as RV);
            return { t: 'none', pos: p };
          });
        case 'pop':
          return m((args, kw, p) => {
            arity(args, kw, 0, 1, p);
            if (items.length === 0) this.#fail(p, 'pop from an empty list');
            const i = args[0] === undefined ? items.length - 1 : this.#index(args[0], items.length, p);
            return items.splice(i, 1)[0] as RV;
          });
        case 'remove':
          return m((args, kw, p) => {
            arity(args, kw, 1, 1, p);
            const i = items.findIndex((x) => equal(x, args[0] as RV));
            if (i < 0) this.#fail(p, `list.remove(x): ${toRepr(args[0] as RV)} not in list`);
            items.splice(i, 1);
            return { t: 'none', pos: p };
          });
        case 'index':
          return m((args, kw, p) => {
            arity(args, kw, 1, 1, p);
            const i = items.findIndex((x) => equal(x, args[0] as RV));
            if (i < 0) this.#fail(p, `${toRepr(args[0] as RV)} is not in the list`);
            return { t: 'int', v: i, pos: p };
          });
        case 'clear':
          return m((args, kw, p) => {
            arity(args, kw, 0, 0, p);
            items.length = 0;
            return { t: 'none', pos: p };
          });
      }
    }
    if (obj.t === 'dict') {
      const map = obj.map;
      switch (name) {
        case 'get':
          return m((args, kw, p) => {
            arity(args, kw, 1, 2, p);
            return map.get(this.#key(args[0] as RV))?.[1] ?? args[1] ?? { t: 'none', pos: p };
          });
        case 'keys':
        case 'values':
        case 'items':
          return m((args, kw, p) => {
            arity(args, kw, 0, 0, p);
            const out = [...map.values()].map(([k, v]): RV => (name === 'keys' ? k : name === 'values' ? v : { t: 'tuple', items: [k, v], pos: p }));
            return this.#list(out, p);
          });
        case 'update':
          return m((args, kw, p) => {
            arity(args, [], 0, 1, p);
            if (args[0] !== undefined) {
              const src = args[0];
              if (src.t !== 'dict') this.#fail(p, `dict.update() needs a dict, found ${tn(src)}`);
              for (const [k, e] of src.map) map.set(k, e);
            }
            for (const [k, v, kp] of kw) map.set(`s:${k}`, [{ t: 'str', v: k, pos: kp }, v]);
            this.#checkItems(map.size, p);
            return { t: 'none', pos: p };
          });
        case 'pop':
          return m((args, kw, p) => {
            arity(args, kw, 1, 2, p);
            const key = this.#key(args[0] as RV);
            const hit = map.get(key);
            if (hit === undefined) return args[1] ?? this.#fail(p, `key ${toRepr(args[0] as RV)} not found in dictionary`);
            map.delete(key);
            return hit[1];
          });
        case 'setdefault':
          return m((args, kw, p) => {
            arity(args, kw, 1, 2, p);
            const key = this.#key(args[0] as RV);
            const hit = map.get(key);
            if (hit !== undefined) return hit[1];
            const v = args[1] ?? { t: 'none', pos: p };
            this.#checkItems(map.size + 1, p);
            map.set(key, [args[0] as RV, v]);
            return v;
          });
      }
    }
    return this.#fail(at, `a ${tn(obj)} has no attribute \`${name}\``);
  }

  /** `"{} {name} {0}".format(...)`: automatic, positional and named fields; no format specs. */
  #format(fmt: string, args: readonly RV[], kwargs: readonly (readonly [string, RV, SourcePos])[], at: SourcePos): string {
    let auto = 0;
    let out = '';
    for (const part of braceTemplate(fmt, (problem) => this.#fail(at, `format string: ${problem}`))) {
      if ('lit' in part) {
        out += part.lit;
        continue;
      }
      const field = part.field;
      let v: RV | undefined;
      if (field === '') v = args[auto++];
      else if (/^[0-9]+$/.test(field)) v = args[Number(field)];
      else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(field)) v = kwargs.find(([k]) => k === field)?.[1];
      else this.#fail(at, `format string: unsupported field {${field}} (format specs are not supported)`);
      if (v === undefined) this.#fail(at, `format string: no argument for {${field}}`);
      out += toStr(v);
      if (out.length > EVAL_LIMITS.chars) this.#str(out, at);
    }
    return out;
  }

  // ---------------------------------------------------------------- builtins

  #installBuiltins(): void {
    const def = (name: string, call: Fn): void => {
      this.#builtins.set(name, { t: 'builtin', name, call, pos: { line: 0, column: 0 } });
    };
    const fixed = (name: string, min: number, max: number, fn: (args: readonly RV[], at: SourcePos) => RV): void =>
      def(name, (args, kwargs, at) => {
        if (kwargs.length > 0) this.#fail(kwargs[0]?.[2] ?? at, `${name}() takes no keyword arguments`);
        if (args.length < min || args.length > max) {
          this.#fail(at, `${name}() takes ${min === max ? min : `${min} to ${max}`} argument${max === 1 ? '' : 's'}, got ${args.length}`);
        }
        return fn(args, at);
      });

    for (const name of RULE_BUILTINS) {
      def(name, (args, kwargs, at, argPos) => {
        if (this.#calls.length >= EVAL_LIMITS.ruleCalls) this.#fail(at, `more than ${EVAL_LIMITS.ruleCalls} rules in one file`);
        const bound: Argument[] = [
          ...args.map((v, i): Argument => ({ name: undefined, namePos: argPos[i] ?? v.pos, value: toValue(v) })),
          ...kwargs.map(([k, v, kp]): Argument => ({ name: k, namePos: kp, value: toValue(v) })),
        ];
        this.#calls.push({ callee: name, pos: at, args: bound });
        return { t: 'none', pos: at };
      });
    }
    fixed('len', 1, 1, ([v], at) => {
      const x = v as RV;
      if (x.t === 'str') return { t: 'int', v: x.v.length, pos: at };
      if (x.t === 'list' || x.t === 'tuple') return { t: 'int', v: x.items.length, pos: at };
      if (x.t === 'dict') return { t: 'int', v: x.map.size, pos: at };
      return this.#fail(at, `len() of a ${tn(x)}`);
    });
    fixed('range', 1, 3, (args, at) => {
      const n = args.map((a) => (a.t === 'int' ? a.v : this.#fail(at, `range() arguments must be int, found ${tn(a)}`)));
      const [start, stop, step] = n.length === 1 ? [0, n[0] as number, 1] : [n[0] as number, n[1] as number, n[2] ?? 1];
      if (step === 0) this.#fail(at, 'range() step cannot be zero');
      const count = Math.max(0, Math.ceil((stop - start) / step));
      this.#checkItems(count, at);
      const items: RV[] = [];
      for (let i = 0; i < count; i++) items.push({ t: 'int', v: start + i * step, pos: at });
      return this.#list(items, at);
    });
    fixed('str', 1, 1, ([v], at) => this.#str(toStr(v as RV), at));
    fixed('repr', 1, 1, ([v], at) => this.#str(toRepr(v as RV), at));
    fixed('bool', 0, 1, ([v], at) => ({ t: 'bool', v: v !== undefined && truthy(v), pos: at }));
    fixed('int', 1, 2, ([v, base], at) => {
      const x = v as RV;
      if (x.t === 'int') return x;
      if (x.t === 'bool') return { t: 'int', v: Number(x.v), pos: at };
      if (x.t !== 'str') return this.#fail(at, `int() of a ${tn(x)}`);
      const b = base === undefined ? 10 : base.t === 'int' ? base.v : this.#fail(at, 'int() base must be an int');
      const digits = x.v.trim();
      const ok = b === 10 ? /^[-+]?[0-9]+$/ : b === 16 ? /^[-+]?(0[xX])?[0-9a-fA-F]+$/ : b === 8 ? /^[-+]?(0[oO])?[0-7]+$/ : b === 2 ? /^[-+]?(0[bB])?[01]+$/ : undefined;
      if (ok === undefined) this.#fail(at, `int() base ${b} is not supported (use 2, 8, 10 or 16)`);
      if (!ok.test(digits)) this.#fail(at, `int(): invalid literal ${JSON.stringify(x.v)} for base ${b}`);
      const neg = digits.startsWith('-');
      const body = digits.replace(/^[-+]/, '').replace(/^0[xXoObB]/, '');
      return this.#int((neg ? -1 : 1) * parseInt(body, b), at);
    });
    fixed('list', 0, 1, ([v], at) => this.#list(v === undefined ? [] : [...this.#iterate(v, at)], at));
    fixed('tuple', 0, 1, ([v], at) => ({ t: 'tuple', items: v === undefined ? [] : [...this.#iterate(v, at)], pos: at }));
    def('dict', (args, kwargs, at) => {
      if (args.length > 1) this.#fail(at, `dict() takes at most 1 positional argument, got ${args.length}`);
      const map = new Map<string, readonly [RV, RV]>();
      const src = args[0];
      if (src?.t === 'dict') for (const [k, e] of src.map) map.set(k, e);
      else if (src !== undefined) {
        for (const pair of this.#iterate(src, at)) {
          const kv = this.#iterate(pair, at);
          if (kv.length !== 2) this.#fail(at, 'dict(): each element must be a pair');
          map.set(this.#key(kv[0] as RV), [kv[0] as RV, kv[1] as RV]);
        }
      }
      for (const [k, v, kp] of kwargs) map.set(`s:${k}`, [{ t: 'str', v: k, pos: kp }, v]);
      this.#checkItems(map.size, at);
      return { t: 'dict', map, pos: at };
    });
    fixed('enumerate', 1, 2, ([v, s], at) => {
      const start = s === undefined ? 0 : s.t === 'int' ? s.v : this.#fail(at, 'enumerate() start must be an int');
      return this.#list(this.#iterate(v as RV, at).map((x, i): RV => ({ t: 'tuple', items: [{ t: 'int', v: start + i, pos: at }, x], pos: at })), at);
    });
    def('zip', (args, kwargs, at) => {
      if (kwargs.length > 0) this.#fail(at, 'zip() takes no keyword arguments');
      const seqs = args.map((a) => this.#iterate(a, at));
      const n = seqs.length === 0 ? 0 : Math.min(...seqs.map((s) => s.length));
      const out: RV[] = [];
      for (let i = 0; i < n; i++) out.push({ t: 'tuple', items: seqs.map((s) => s[i] as RV), pos: at });
      return this.#list(out, at);
    });
    def('sorted', (args, kwargs, at) => {
      if (args.length !== 1) this.#fail(at, `sorted() takes 1 positional argument, got ${args.length}`);
      let reverse = false;
      for (const [k, v, kp] of kwargs) {
        if (k !== 'reverse') this.#fail(kp, `sorted(): unsupported keyword argument \`${k}\` (only reverse)`);
        reverse = truthy(v);
      }
      const items = [...this.#iterate(args[0] as RV, at)];
      this.#step(at, items.length * Math.ceil(Math.log2(items.length + 1)));
      // Array.sort is n log n; #compare throws on mixed types (and charges each comparison).
      items.sort((a, b) => this.#compare(a, b, at));
      if (reverse) items.reverse();
      return this.#list(items, at);
    });
    fixed('reversed', 1, 1, ([v], at) => this.#list([...this.#iterate(v as RV, at)].reverse(), at));
    fixed('any', 1, 1, ([v], at) => ({ t: 'bool', v: this.#iterate(v as RV, at).some(truthy), pos: at }));
    fixed('all', 1, 1, ([v], at) => ({ t: 'bool', v: this.#iterate(v as RV, at).every(truthy), pos: at }));
    for (const name of ['min', 'max'] as const) {
      def(name, (args, kwargs, at) => {
        if (kwargs.length > 0) this.#fail(at, `${name}() takes no keyword arguments here`);
        const items = args.length === 1 ? this.#iterate(args[0] as RV, at) : args;
        if (items.length === 0) this.#fail(at, `${name}() of an empty sequence`);
        let best = items[0] as RV;
        for (const x of items.slice(1)) {
          const c = this.#compare(x, best, at);
          if (name === 'min' ? c < 0 : c > 0) best = x;
        }
        return best;
      });
    }
    fixed('abs', 1, 1, ([v], at) => (v?.t === 'int' ? this.#int(Math.abs(v.v), at) : this.#fail(at, `abs() of a ${tn(v as RV)}`)));
    fixed('type', 1, 1, ([v], at) => ({ t: 'str', v: tn(v as RV), pos: at }));
    fixed('hasattr', 2, 2, ([o, n], at) => {
      if (n?.t !== 'str') return this.#fail(at, 'hasattr() name must be a string');
      try {
        this.#method(o as RV, n.v, at);
        return { t: 'bool', v: true, pos: at };
      } catch {
        return { t: 'bool', v: false, pos: at };
      }
    });
    def('fail', (args, _kwargs, at) => {
      this.#fail(at, `fail(): ${args.map(toStr).join(' ')}`);
    });
    // print() output has nowhere to go in a policy load; it is accepted and ignored.
    def('print', (_args, _kwargs, at) => ({ t: 'none', pos: at }));
    this.#builtins.set('True', { t: 'bool', v: true, pos: { line: 0, column: 0 } });
    this.#builtins.set('False', { t: 'bool', v: false, pos: { line: 0, column: 0 } });
    this.#builtins.set('None', { t: 'none', pos: { line: 0, column: 0 } });
  }
}

/** Work a value costs to scan: elements, or characters / 16. */
function sizeOf(v: RV): number {
  if (v.t === 'str') return v.v.length >> 4;
  if (v.t === 'list' || v.t === 'tuple') return v.items.length;
  if (v.t === 'dict') return v.map.size;
  return 0;
}

function calleeName(e: Expr): string {
  return e.k === 'name' ? e.name : e.k === 'attr' ? e.name : 'the function';
}

function truthy(v: RV): boolean {
  switch (v.t) {
    case 'none':
      return false;
    case 'bool':
      return v.v;
    case 'int':
      return v.v !== 0;
    case 'str':
      return v.v !== '';
    case 'list':
    case 'tuple':
      return v.items.length > 0;
    case 'dict':
      return v.map.size > 0;
    default:
      return true;
  }
}

function equal(a: RV, b: RV): boolean {
  if (a.t !== b.t) return false;
  switch (a.t) {
    case 'str':
    case 'int':
    case 'bool':
      return a.v === (b as typeof a).v;
    case 'none':
      return true;
    case 'list':
    case 'tuple': {
      const bi = (b as typeof a).items;
      return a.items.length === bi.length && a.items.every((x, i) => equal(x, bi[i] as RV));
    }
    case 'dict': {
      const bm = (b as typeof a).map;
      if (a.map.size !== bm.size) return false;
      for (const [k, [, v]] of a.map) {
        const o = bm.get(k);
        if (o === undefined || !equal(v, o[1])) return false;
      }
      return true;
    }
    default:
      return a === b;
  }
}

function toStr(v: RV): string {
  return v.t === 'str' ? v.v : toRepr(v);
}

function toRepr(v: RV): string {
  switch (v.t) {
    case 'str':
      return JSON.stringify(v.v);
    case 'int':
      return String(v.v);
    case 'bool':
      return v.v ? 'True' : 'False';
    case 'none':
      return 'None';
    case 'list':
      return `[${v.items.map(toRepr).join(', ')}]`;
    case 'tuple':
      return v.items.length === 1 ? `(${toRepr(v.items[0] as RV)},)` : `(${v.items.map(toRepr).join(', ')})`;
    case 'dict':
      return `{${[...v.map.values()].map(([k, x]) => `${toRepr(k)}: ${toRepr(x)}`).join(', ')}}`;
    case 'function':
      return `<function ${v.fn.name}>`;
    case 'builtin':
      return `<built-in function ${v.name}>`;
  }
}

/** Python slice semantics. */
function sliceIndices(len: number, lo: number | undefined, hi: number | undefined, step: number): number[] {
  const clamp = (x: number, min: number, max: number): number => Math.min(Math.max(x, min), max);
  const norm = (x: number): number => (x < 0 ? x + len : x);
  const out: number[] = [];
  if (step > 0) {
    const a = lo === undefined ? 0 : clamp(norm(lo), 0, len);
    const b = hi === undefined ? len : clamp(norm(hi), 0, len);
    for (let i = a; i < b; i += step) out.push(i);
  } else {
    const a = lo === undefined ? len - 1 : clamp(norm(lo), -1, len - 1);
    const b = hi === undefined ? -1 : clamp(norm(hi), -1, len - 1);
    for (let i = a; i > b; i += step) out.push(i);
  }
  return out;
}

/** A runtime value as the rules builtins' argument checks see it (compile.ts). */
function toValue(v: RV): Value {
  switch (v.t) {
    case 'str':
      return { kind: 'string', value: v.v, pos: v.pos };
    case 'int':
      return { kind: 'int', text: String(v.v), pos: v.pos };
    case 'bool':
      return { kind: 'bool', value: v.v, pos: v.pos };
    case 'none':
      return { kind: 'none', pos: v.pos };
    case 'list':
      return { kind: 'list', items: v.items.map(toValue), pos: v.pos };
    case 'tuple':
      return { kind: 'tuple', items: v.items.map(toValue), pos: v.pos };
    default:
      return { kind: 'other', typeName: tn(v), pos: v.pos };
  }
}
