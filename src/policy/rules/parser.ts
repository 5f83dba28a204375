/**
 * Parser for `.rules` files: the Starlark that upstream codex execpolicy
 * accepts (its dialect: top-level statements, def, lambda, f-strings), minus
 * `load` (upstream has no loader either) and `while` (not Starlark).
 * Produces an AST that eval.ts runs; every node keeps its source position.
 */
import { RulesLoadError, type SourcePos } from './errors.js';
import { braceTemplate } from './braces.js';
import { describeToken, tokenize, type Token } from './lexer.js';

/** An argument value as the builtins see it (after evaluation), with where it came from. */
export type Value =
  | { readonly kind: 'string'; readonly value: string; readonly pos: SourcePos }
  | { readonly kind: 'list'; readonly items: readonly Value[]; readonly pos: SourcePos }
  | { readonly kind: 'tuple'; readonly items: readonly Value[]; readonly pos: SourcePos }
  | { readonly kind: 'none'; readonly pos: SourcePos }
  | { readonly kind: 'bool'; readonly value: boolean; readonly pos: SourcePos }
  | { readonly kind: 'int'; readonly text: string; readonly pos: SourcePos }
  /** Any other Starlark value (dict, function, ...): no builtin argument accepts one. */
  | { readonly kind: 'other'; readonly typeName: string; readonly pos: SourcePos };

export interface Argument {
  /** Keyword name, or undefined for a positional argument. */
  readonly name: string | undefined;
  readonly namePos: SourcePos;
  readonly value: Value;
}

/** One call of a rules builtin (prefix_rule, host_executable, network_rule), in evaluation order. */
export interface Call {
  readonly callee: string;
  readonly pos: SourcePos;
  readonly args: readonly Argument[];
}

/** Starlark type name of a value, as used in "found X" messages. */
export function typeName(v: Value): string {
  switch (v.kind) {
    case 'string':
      return 'string';
    case 'list':
      return 'list';
    case 'tuple':
      return 'tuple';
    case 'none':
      return 'NoneType';
    case 'bool':
      return 'bool';
    case 'int':
      return 'int';
    case 'other':
      return v.typeName;
  }
}

// ------------------------------------------------------------------ AST

export type FStringPart = string | { readonly name: string; readonly pos: SourcePos };

export type Expr =
  | { readonly k: 'str'; readonly v: string; readonly pos: SourcePos }
  | { readonly k: 'fstr'; readonly parts: readonly FStringPart[]; readonly pos: SourcePos }
  | { readonly k: 'int'; readonly v: number; readonly pos: SourcePos }
  | { readonly k: 'name'; readonly name: string; readonly pos: SourcePos }
  | { readonly k: 'list'; readonly items: readonly Expr[]; readonly pos: SourcePos }
  | { readonly k: 'tuple'; readonly items: readonly Expr[]; readonly pos: SourcePos }
  | { readonly k: 'dict'; readonly entries: readonly (readonly [Expr, Expr])[]; readonly pos: SourcePos }
  | { readonly k: 'listcomp'; readonly elt: Expr; readonly clauses: readonly Clause[]; readonly pos: SourcePos }
  | { readonly k: 'dictcomp'; readonly key: Expr; readonly val: Expr; readonly clauses: readonly Clause[]; readonly pos: SourcePos }
  | { readonly k: 'call'; readonly fn: Expr; readonly args: readonly CallArg[]; readonly pos: SourcePos }
  | { readonly k: 'index'; readonly obj: Expr; readonly idx: Expr; readonly pos: SourcePos }
  | { readonly k: 'slice'; readonly obj: Expr; readonly lo?: Expr; readonly hi?: Expr; readonly step?: Expr; readonly pos: SourcePos }
  | { readonly k: 'attr'; readonly obj: Expr; readonly name: string; readonly pos: SourcePos }
  | { readonly k: 'unary'; readonly op: string; readonly e: Expr; readonly pos: SourcePos }
  | { readonly k: 'bin'; readonly op: string; readonly l: Expr; readonly r: Expr; readonly pos: SourcePos }
  | { readonly k: 'cond'; readonly c: Expr; readonly a: Expr; readonly b: Expr; readonly pos: SourcePos }
  | { readonly k: 'lambda'; readonly params: readonly Param[]; readonly body: Expr; readonly pos: SourcePos };

/** Where an expression starts (an operator's node is at the operator). */
export function startPos(e: Expr): SourcePos {
  switch (e.k) {
    case 'bin':
      return startPos(e.l);
    case 'cond':
      return startPos(e.a);
    case 'call':
      return startPos(e.fn);
    case 'index':
    case 'slice':
    case 'attr':
      return startPos(e.obj);
    default:
      return e.pos;
  }
}

export type Clause = { readonly k: 'for'; readonly target: Target; readonly iter: Expr } | { readonly k: 'if'; readonly cond: Expr };

export type Target =
  | { readonly k: 'name'; readonly name: string; readonly pos: SourcePos }
  | { readonly k: 'tuple'; readonly items: readonly Target[]; readonly pos: SourcePos }
  | { readonly k: 'index'; readonly obj: Expr; readonly idx: Expr; readonly pos: SourcePos };

export interface CallArg {
  readonly kind: 'pos' | 'kw' | 'star' | 'kwstar';
  readonly name?: string;
  readonly namePos: SourcePos;
  readonly value: Expr;
}

export interface Param {
  readonly kind: 'normal' | 'star' | 'kwstar';
  /** Empty for a bare `*` (keyword-only marker). */
  readonly name: string;
  readonly default?: Expr;
  readonly pos: SourcePos;
}

export type Stmt =
  | { readonly k: 'expr'; readonly e: Expr; readonly pos: SourcePos }
  | { readonly k: 'assign'; readonly target: Target; readonly e: Expr; readonly pos: SourcePos }
  | { readonly k: 'augassign'; readonly target: Target; readonly op: string; readonly e: Expr; readonly pos: SourcePos }
  | { readonly k: 'def'; readonly name: string; readonly params: readonly Param[]; readonly body: readonly Stmt[]; readonly pos: SourcePos }
  | { readonly k: 'for'; readonly target: Target; readonly iter: Expr; readonly body: readonly Stmt[]; readonly pos: SourcePos }
  | { readonly k: 'if'; readonly cond: Expr; readonly body: readonly Stmt[]; readonly orelse: readonly Stmt[]; readonly pos: SourcePos }
  | { readonly k: 'return'; readonly e?: Expr; readonly pos: SourcePos }
  | { readonly k: 'break' | 'continue' | 'pass'; readonly pos: SourcePos };

const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'if', 'else', 'elif', 'for', 'def', 'return', 'pass', 'break', 'continue', 'lambda', 'load']);
/** Python words Starlark reserves: a clear error rather than "unknown name". */
const RESERVED = new Set(['while', 'class', 'import', 'from', 'try', 'except', 'finally', 'raise', 'with', 'yield', 'global', 'nonlocal', 'del', 'assert', 'as', 'is', 'async', 'await']);
const AUG_OPS = new Set(['+=', '-=', '*=', '//=', '%=', '|=', '&=', '^=', '<<=', '>>=']);
const COMPARE_OPS = new Set(['==', '!=', '<', '>', '<=', '>=']);

/** Parses a whole file into statements; throws RulesLoadError at the first syntax error. */
export function parseModule(source: string, file: string, maxNesting = 200): Stmt[] {
  const tokens = tokenize(source, file);
  let p = 0;
  let nesting = 0;
  let blocks = 0;
  let loopDepth = 0;
  let defDepth = 0;
  const peek = (o = 0): Token => tokens[Math.min(p + o, tokens.length - 1)] as Token;
  const next = (): Token => tokens[p++] as Token;
  const fail = (at: SourcePos, msg: string): never => {
    throw new RulesLoadError(file, at, msg);
  };
  const isOp = (t: Token, op: string): boolean => t.kind === 'op' && t.value === op;
  const isKw = (t: Token, kw: string): boolean => t.kind === 'name' && t.value === kw;
  const expectOp = (op: string, context: string): Token => {
    const t = next();
    if (!isOp(t, op)) fail(t.pos, `expected '${op}' ${context}, found ${describeToken(t)}`);
    return t;
  };
  const expectName = (context: string): Token => {
    const t = next();
    if (t.kind !== 'name' || KEYWORDS.has(t.value)) fail(t.pos, `expected a name ${context}, found ${describeToken(t)}`);
    return t;
  };

  return parseStatements(false);

  /** Statements up to the end of the file, or (in a block) up to and including the block's dedent. */
  function parseStatements(inBlock: boolean): Stmt[] {
    const out: Stmt[] = [];
    for (;;) {
      const t = peek();
      if (inBlock && t.kind === 'dedent') {
        p++;
        break;
      }
      if (t.kind === 'eof') break;
      if (t.kind === 'newline') {
        p++;
        continue;
      }
      if (t.kind === 'indent') fail(t.pos, inBlock ? 'unexpected indentation: this line is indented more than the block it is in' : 'unexpected indentation: top-level statements must start in column 1');
      out.push(...parseStatement());
    }
    return out;
  }

  /** One line's statements (simple statements joined by `;`) or one compound statement. */
  function parseStatement(): Stmt[] {
    const t = peek();
    if (t.kind === 'name') {
      if (t.value === 'def') return [parseDef()];
      if (t.value === 'for') return [parseFor()];
      if (t.value === 'if') return [parseIf()];
      if (t.value === 'elif' || t.value === 'else') fail(t.pos, `\`${t.value}\` without a matching \`if\``);
    }
    const out: Stmt[] = [];
    for (;;) {
      out.push(parseSimple());
      const end = peek();
      if (isOp(end, ';')) {
        p++;
        if (peek().kind === 'newline' || peek().kind === 'eof') break;
        continue;
      }
      if (end.kind === 'newline') {
        p++;
        break;
      }
      if (end.kind === 'eof' || end.kind === 'dedent') break;
      fail(end.pos, `expected end of line after the statement, found ${describeToken(end)}`);
    }
    return out;
  }

  function parseSuite(what: string): Stmt[] {
    if (++blocks > maxNesting) fail(peek().pos, `blocks nested more than ${maxNesting} deep`);
    try {
      return parseSuiteInner(what);
    } finally {
      blocks--;
    }
  }

  function parseSuiteInner(what: string): Stmt[] {
    expectOp(':', `after the ${what} header`);
    const t = peek();
    if (t.kind !== 'newline') {
      // `for x in y: stmt` on one line.
      const one: Stmt[] = [];
      for (;;) {
        one.push(parseSimple());
        if (isOp(peek(), ';')) {
          p++;
          if (peek().kind === 'newline') break;
          continue;
        }
        break;
      }
      const end = next();
      if (end.kind !== 'newline' && end.kind !== 'eof') fail(end.pos, `expected end of line, found ${describeToken(end)}`);
      return one;
    }
    p++;
    const ind = next();
    if (ind.kind !== 'indent') fail(ind.pos, `expected an indented block after the ${what} header, found ${describeToken(ind)}`);
    return parseStatements(true);
  }

  function parseDef(): Stmt {
    const kw = next();
    if (defDepth > 0) fail(kw.pos, 'nested `def` is not supported: define helper functions at the top level');
    const name = expectName('after `def`');
    expectOp('(', `after \`def ${name.value}\``);
    const params = parseParams(')');
    expectOp(')', 'to close the parameter list');
    defDepth++;
    const savedLoop = loopDepth;
    loopDepth = 0;
    const body = parseSuite('def');
    loopDepth = savedLoop;
    defDepth--;
    return { k: 'def', name: name.value, params, body, pos: kw.pos };
  }

  function parseParams(close: string): Param[] {
    const params: Param[] = [];
    const seen = new Set<string>();
    let sawDefault = false;
    let sawStar = false;
    let sawKwStar = false;
    for (;;) {
      const t = peek();
      if (isOp(t, close)) break;
      if (sawKwStar) fail(t.pos, 'no parameter may follow `**kwargs`');
      let kind: Param['kind'] = 'normal';
      if (isOp(t, '*') || isOp(t, '**')) {
        p++;
        kind = t.value === '*' ? 'star' : 'kwstar';
      }
      if (kind === 'star' && sawStar) fail(t.pos, 'only one `*` parameter is allowed');
      let name = '';
      const nt = peek();
      if (kind === 'star' && (isOp(nt, ',') || isOp(nt, close))) {
        name = ''; // bare `*`: the following parameters are keyword-only
      } else {
        name = expectName('for a parameter').value;
        if (seen.has(name)) fail(nt.pos, `duplicate parameter \`${name}\``);
        seen.add(name);
      }
      let dflt: Expr | undefined;
      if (kind === 'normal' && isOp(peek(), '=')) {
        p++;
        dflt = parseTest();
        sawDefault = true;
      } else if (kind === 'normal' && sawDefault && !sawStar) {
        fail(nt.pos, `parameter \`${name}\` without a default follows one with a default`);
      }
      if (kind === 'star') sawStar = true;
      if (kind === 'kwstar') sawKwStar = true;
      params.push(dflt !== undefined ? { kind, name, default: dflt, pos: t.pos } : { kind, name, pos: t.pos });
      if (isOp(peek(), ',')) {
        p++;
        continue;
      }
      break;
    }
    return params;
  }

  function parseFor(): Stmt {
    const kw = next();
    const target = parseTargetList();
    const inTok = next();
    if (!isKw(inTok, 'in')) fail(inTok.pos, `expected \`in\` in the for statement, found ${describeToken(inTok)}`);
    const iter = parseExprList();
    loopDepth++;
    const body = parseSuite('for');
    loopDepth--;
    return { k: 'for', target, iter, body, pos: kw.pos };
  }

  function parseIf(): Stmt {
    const kw = next();
    const cond = parseTest();
    const body = parseSuite(kw.value);
    let orelse: Stmt[] = [];
    const t = peek();
    if (isKw(t, 'elif')) orelse = [parseIf()];
    else if (isKw(t, 'else')) {
      p++;
      orelse = parseSuite('else');
    }
    return { k: 'if', cond, body, orelse, pos: kw.pos };
  }

  function parseSimple(): Stmt {
    const t = peek();
    if (t.kind === 'name') {
      switch (t.value) {
        case 'pass':
          p++;
          return { k: 'pass', pos: t.pos };
        case 'break':
        case 'continue':
          p++;
          if (loopDepth === 0) fail(t.pos, `\`${t.value}\` outside a for loop`);
          return { k: t.value, pos: t.pos };
        case 'return': {
          p++;
          if (defDepth === 0) fail(t.pos, '`return` outside a function');
          const n = peek();
          if (n.kind === 'newline' || n.kind === 'eof' || n.kind === 'dedent' || isOp(n, ';')) return { k: 'return', pos: t.pos };
          return { k: 'return', e: parseExprList(), pos: t.pos };
        }
        case 'load':
          fail(t.pos, '`load` statements are not supported: a rules file cannot load other files (upstream codex has no loader either)');
          break;
        case 'while':
          fail(t.pos, '`while` loops are not supported: Starlark has no `while` (use `for x in list` or `for i in range(n)`)');
          break;
        default:
          if (RESERVED.has(t.value)) fail(t.pos, `\`${t.value}\` is reserved in Starlark and not supported`);
      }
    }
    const e = parseExprList();
    const n = peek();
    if (isOp(n, '=')) {
      p++;
      const target = toTarget(e);
      const rhs = parseExprList();
      if (isOp(peek(), '=')) fail(peek().pos, 'chained assignment (`a = b = ...`) is not supported: assign one name at a time');
      return { k: 'assign', target, e: rhs, pos: e.pos };
    }
    if (n.kind === 'op' && AUG_OPS.has(n.value)) {
      p++;
      const target = toTarget(e);
      if (target.k === 'tuple') fail(e.pos, `\`${n.value}\` needs a single name or an element, not a tuple`);
      return { k: 'augassign', target, op: n.value.slice(0, -1), e: parseExprList(), pos: e.pos };
    }
    return { k: 'expr', e, pos: e.pos };
  }

  function toTarget(e: Expr): Target {
    if (e.k === 'name') return { k: 'name', name: e.name, pos: e.pos };
    if (e.k === 'index') return { k: 'index', obj: e.obj, idx: e.idx, pos: e.pos };
    if ((e.k === 'tuple' || e.k === 'list') && e.items.length > 0) return { k: 'tuple', items: e.items.map(toTarget), pos: e.pos };
    return fail(e.pos, 'cannot assign to this expression: expected a name, `a, b` or `x[i]`');
  }

  /** `a, b` as a loop target (stops before `in`). */
  function parseTargetList(): Target {
    const first = parsePrimaryTarget();
    if (!isOp(peek(), ',')) return first;
    const items = [first];
    while (isOp(peek(), ',')) {
      p++;
      if (isKw(peek(), 'in')) break;
      items.push(parsePrimaryTarget());
    }
    return { k: 'tuple', items, pos: first.pos };
  }

  function parsePrimaryTarget(): Target {
    const t = peek();
    if (isOp(t, '(') || isOp(t, '[')) {
      p++;
      const close = t.value === '(' ? ')' : ']';
      const inner = parseTargetList();
      expectOp(close, 'to close the loop target');
      return inner.k === 'tuple' ? inner : { k: 'tuple', items: [inner], pos: t.pos };
    }
    return toTarget(parsePrimary());
  }

  /** Expression list: `a, b` is a tuple. */
  function parseExprList(): Expr {
    const first = parseTest();
    if (!isOp(peek(), ',')) return first;
    const items = [first];
    while (isOp(peek(), ',')) {
      p++;
      const n = peek();
      if (n.kind === 'newline' || n.kind === 'eof' || isOp(n, '=') || isOp(n, ')') || isOp(n, ':') || isOp(n, ';')) break;
      items.push(parseTest());
    }
    return { k: 'tuple', items, pos: first.pos };
  }

  /** test: conditional expression or lambda. Counts nesting: a hostile file must not overflow the stack. */
  function parseTest(): Expr {
    if (++nesting > maxNesting) fail(peek().pos, `expression nested more than ${maxNesting} deep`);
    try {
      return parseTestInner();
    } finally {
      nesting--;
    }
  }

  function parseTestInner(): Expr {
    const t = peek();
    if (isKw(t, 'lambda')) {
      p++;
      const params = parseParams(':');
      expectOp(':', 'after the lambda parameters');
      return { k: 'lambda', params, body: parseTest(), pos: t.pos };
    }
    const e = parseOr();
    if (isKw(peek(), 'if')) {
      // `a if c else b`; but inside a comprehension `if` starts a clause, and has no `else`.
      const save = p;
      p++;
      const c = parseOr();
      if (!isKw(peek(), 'else')) {
        p = save;
        return e;
      }
      p++;
      return { k: 'cond', c, a: e, b: parseTest(), pos: e.pos };
    }
    return e;
  }

  function parseOr(): Expr {
    return parseBoolChain('or', parseAnd);
  }

  function parseAnd(): Expr {
    return parseBoolChain('and', parseNot);
  }

  /** `a or b or c` (`and` alike): left-associative, each operand one precedence level tighter. */
  function parseBoolChain(kw: 'or' | 'and', operand: () => Expr): Expr {
    let l = operand();
    while (isKw(peek(), kw)) {
      const op = next();
      l = { k: 'bin', op: kw, l, r: operand(), pos: op.pos };
    }
    return l;
  }

  function parseNot(): Expr {
    const t = peek();
    if (isKw(t, 'not')) {
      p++;
      if (++nesting > maxNesting) fail(t.pos, `expression nested more than ${maxNesting} deep`);
      try {
        return { k: 'unary', op: 'not', e: parseNot(), pos: t.pos };
      } finally {
        nesting--;
      }
    }
    return parseCompare();
  }

  function parseCompare(): Expr {
    const l = parseBinary(0);
    const t = peek();
    let op: string | undefined;
    if (t.kind === 'op' && COMPARE_OPS.has(t.value)) op = t.value;
    else if (isKw(t, 'in')) op = 'in';
    else if (isKw(t, 'not') && isKw(peek(1), 'in')) op = 'not in';
    if (op === undefined) return l;
    p += op === 'not in' ? 2 : 1;
    const r = parseBinary(0);
    const n = peek();
    if ((n.kind === 'op' && COMPARE_OPS.has(n.value)) || isKw(n, 'in')) {
      fail(n.pos, 'chained comparisons (`a < b < c`) are not allowed in Starlark: use `and`');
    }
    return { k: 'bin', op, l, r, pos: t.pos };
  }

  // Binary operators by increasing precedence, as in the Starlark spec.
  function parseBinary(level: number): Expr {
    const LEVELS: readonly (readonly string[])[] = [['|'], ['^'], ['&'], ['<<', '>>'], ['+', '-'], ['*', '/', '//', '%']];
    if (level >= LEVELS.length) return parseUnary();
    let l = parseBinary(level + 1);
    for (;;) {
      const t = peek();
      if (t.kind !== 'op' || !(LEVELS[level] as readonly string[]).includes(t.value)) return l;
      p++;
      l = { k: 'bin', op: t.value, l, r: parseBinary(level + 1), pos: t.pos };
    }
  }

  function parseUnary(): Expr {
    const t = peek();
    if (t.kind === 'op' && (t.value === '-' || t.value === '+' || t.value === '~')) {
      p++;
      if (++nesting > maxNesting) fail(t.pos, `expression nested more than ${maxNesting} deep`);
      try {
        return { k: 'unary', op: t.value, e: parseUnary(), pos: t.pos };
      } finally {
        nesting--;
      }
    }
    if (isOp(t, '**')) fail(t.pos, '`**` is not a Starlark operator');
    return parsePrimary();
  }

  function parsePrimary(): Expr {
    let e = parseAtom();
    for (;;) {
      const t = peek();
      if (isOp(t, '(')) {
        p++;
        e = { k: 'call', fn: e, args: parseCallArgs(e), pos: e.k === 'name' ? e.pos : t.pos };
        continue;
      }
      if (isOp(t, '[')) {
        p++;
        e = parseSubscript(e, t);
        continue;
      }
      if (isOp(t, '.')) {
        p++;
        const name = expectName('after `.`');
        e = { k: 'attr', obj: e, name: name.value, pos: name.pos };
        continue;
      }
      return e;
    }
  }

  function parseSubscript(obj: Expr, open: Token): Expr {
    let lo: Expr | undefined;
    if (!isOp(peek(), ':')) {
      lo = parseTest();
      if (isOp(peek(), ']')) {
        p++;
        return { k: 'index', obj, idx: lo, pos: open.pos };
      }
    }
    expectOp(':', 'in the subscript');
    let hi: Expr | undefined;
    let step: Expr | undefined;
    if (!isOp(peek(), ']') && !isOp(peek(), ':')) hi = parseTest();
    if (isOp(peek(), ':')) {
      p++;
      if (!isOp(peek(), ']')) step = parseTest();
    }
    expectOp(']', 'to close the subscript');
    return { k: 'slice', obj, ...(lo ? { lo } : {}), ...(hi ? { hi } : {}), ...(step ? { step } : {}), pos: open.pos };
  }

  function parseCallArgs(fn: Expr): CallArg[] {
    const what = fn.k === 'name' ? `${fn.name}(...)` : 'the call';
    const args: CallArg[] = [];
    for (;;) {
      const a = peek();
      if (isOp(a, ')')) break;
      if (isOp(a, '*') || isOp(a, '**')) {
        p++;
        args.push({ kind: a.value === '*' ? 'star' : 'kwstar', namePos: a.pos, value: parseTest() });
      } else if (a.kind === 'name' && !KEYWORDS.has(a.value) && isOp(peek(1), '=')) {
        p += 2;
        args.push({ kind: 'kw', name: a.value, namePos: a.pos, value: parseTest() });
      } else {
        const v = parseTest();
        if (isKw(peek(), 'for')) fail(peek().pos, 'a bare generator is not supported as an argument: use a list comprehension [... for ...]');
        args.push({ kind: 'pos', namePos: a.pos, value: v });
      }
      const sep = peek();
      if (isOp(sep, ',')) {
        p++;
        continue;
      }
      if (isOp(sep, ')')) break;
      fail(sep.pos, `expected ',' or ')' in the arguments of ${what}, found ${describeToken(sep)}`);
    }
    next(); // the ')'
    return args;
  }

  function parseClauses(close: string): Clause[] {
    const clauses: Clause[] = [];
    for (;;) {
      const t = peek();
      if (isKw(t, 'for')) {
        p++;
        const target = parseTargetList();
        const inTok = next();
        if (!isKw(inTok, 'in')) fail(inTok.pos, `expected \`in\` in the comprehension, found ${describeToken(inTok)}`);
        clauses.push({ k: 'for', target, iter: parseOr() });
        continue;
      }
      if (isKw(t, 'if')) {
        p++;
        clauses.push({ k: 'if', cond: parseOr() });
        continue;
      }
      if (isOp(t, close)) return clauses;
      return fail(t.pos, `expected \`for\`, \`if\` or '${close}' in the comprehension, found ${describeToken(t)}`);
    }
  }

  function parseAtom(): Expr {
    const t = next();
    switch (t.kind) {
      case 'string': {
        const n = peek();
        if (n.kind === 'string' || n.kind === 'fstring') {
          fail(n.pos, "implicit string concatenation is not supported: expected ',' between the two strings (or `+` to join them)");
        }
        return { k: 'str', v: t.value, pos: t.pos };
      }
      case 'fstring':
        return { k: 'fstr', parts: parseFString(t), pos: t.pos };
      case 'int':
        return { k: 'int', v: parseIntLiteral(t), pos: t.pos };
      case 'name':
        if (KEYWORDS.has(t.value) || RESERVED.has(t.value)) {
          return fail(t.pos, `expected a value, found keyword \`${t.value}\``);
        }
        return { k: 'name', name: t.value, pos: t.pos };
      case 'op':
        break;
      default:
        return fail(t.pos, `expected a value (a string, a number, a list, a name...), found ${describeToken(t)}`);
    }
    if (t.value === '(') {
      if (isOp(peek(), ')')) {
        p++;
        return { k: 'tuple', items: [], pos: t.pos };
      }
      const first = parseTest();
      if (isOp(peek(), ')')) {
        p++;
        return first; // `(x)` is just x
      }
      if (isKw(peek(), 'for')) fail(peek().pos, 'generator expressions are not supported: use a list comprehension [... for ...]');
      const items = [first];
      while (isOp(peek(), ',')) {
        p++;
        if (isOp(peek(), ')')) break;
        items.push(parseTest());
      }
      const close = peek();
      if (!isOp(close, ')')) fail(close.pos, `expected ',' or ')' in parentheses, found ${describeToken(close)}`);
      p++;
      return { k: 'tuple', items, pos: t.pos };
    }
    if (t.value === '[') {
      if (isOp(peek(), ']')) {
        p++;
        return { k: 'list', items: [], pos: t.pos };
      }
      const first = parseTest();
      if (isKw(peek(), 'for')) {
        const clauses = parseClauses(']');
        p++;
        return { k: 'listcomp', elt: first, clauses, pos: t.pos };
      }
      const items = [first];
      parseMoreItems(']', 'list', () => items.push(parseTest()));
      return { k: 'list', items, pos: t.pos };
    }
    if (t.value === '{') {
      if (isOp(peek(), '}')) {
        p++;
        return { k: 'dict', entries: [], pos: t.pos };
      }
      const k0 = parseTest();
      const colon = peek();
      if (!isOp(colon, ':')) fail(colon.pos, `expected ':' after a dictionary key (sets are not Starlark), found ${describeToken(colon)}`);
      p++;
      const v0 = parseTest();
      if (isKw(peek(), 'for')) {
        const clauses = parseClauses('}');
        p++;
        return { k: 'dictcomp', key: k0, val: v0, clauses, pos: t.pos };
      }
      const entries: [Expr, Expr][] = [[k0, v0]];
      parseMoreItems('}', 'dictionary', () => {
        const k = parseTest();
        expectOp(':', 'after a dictionary key');
        entries.push([k, parseTest()]);
      });
      return { k: 'dict', entries, pos: t.pos };
    }
    return fail(t.pos, `expected a value (a string, a number, a list, a name...), found ${describeToken(t)}`);
  }

  function parseIntLiteral(t: Token): number {
    const s = t.value;
    let v: number;
    if (/^0[xX][0-9a-fA-F]+$/.test(s)) v = parseInt(s.slice(2), 16);
    else if (/^0[oO][0-7]+$/.test(s)) v = parseInt(s.slice(2), 8);
    else if (/^0[bB][01]+$/.test(s)) v = parseInt(s.slice(2), 2);
    else if (/^(0|[1-9][0-9]*)$/.test(s)) v = Number(s);
    else if (/^[0-9]*\.[0-9]*([eE][-+]?[0-9]+)?$|^[0-9]+[eE][-+]?[0-9]+$/.test(s)) return fail(t.pos, `floating-point numbers are not supported here: ${s}`);
    else return fail(t.pos, `invalid number literal ${s}`);
    if (!Number.isSafeInteger(v)) fail(t.pos, `integer literal ${s} is too large (at most ${Number.MAX_SAFE_INTEGER})`);
    return v;
  }

  /** After a display's first item: `, item` until `close` (a trailing comma allowed); consumes `close`. */
  function parseMoreItems(close: ']' | '}', what: string, item: () => void): void {
    for (;;) {
      const sep = peek();
      if (isOp(sep, close)) break;
      if (!isOp(sep, ',')) fail(sep.pos, `expected ',' or '${close}' in ${what}, found ${describeToken(sep)}`);
      p++;
      if (isOp(peek(), close)) break;
      item();
    }
    p++;
  }

  /** `f"a{name}b"`: literal text and identifiers (upstream's f-strings take identifiers only); `{{` `}}` escape braces. */
  function parseFString(t: Token): FStringPart[] {
    const parts: FStringPart[] = [];
    for (const part of braceTemplate(t.value, (problem) => fail(t.pos, `invalid f-string: ${problem}`))) {
      if ('lit' in part) {
        parts.push(part.lit);
        continue;
      }
      const name = part.field.trim();
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || KEYWORDS.has(name)) {
        fail(t.pos, `invalid f-string: {${part.field}} must name a variable (f-strings take identifiers only, like upstream)`);
      }
      parts.push({ name, pos: t.pos });
    }
    return parts;
  }
}
