/**
 * Parser for the Starlark subset of `.rules` files: a sequence of top-level
 * calls whose arguments are literals (strings, lists, None/True/False, numbers).
 * Produces a small AST; semantic checks live in compile.ts.
 */
import { RulesLoadError, type SourcePos } from './errors.js';
import { describeToken, tokenize, type Token } from './lexer.js';

export type Value =
  | { readonly kind: 'string'; readonly value: string; readonly pos: SourcePos }
  | { readonly kind: 'list'; readonly items: readonly Value[]; readonly pos: SourcePos }
  | { readonly kind: 'tuple'; readonly items: readonly Value[]; readonly pos: SourcePos }
  | { readonly kind: 'none'; readonly pos: SourcePos }
  | { readonly kind: 'bool'; readonly value: boolean; readonly pos: SourcePos }
  | { readonly kind: 'int'; readonly text: string; readonly pos: SourcePos };

export interface Argument {
  /** Keyword name, or undefined for a positional argument. */
  readonly name: string | undefined;
  readonly namePos: SourcePos;
  readonly value: Value;
}

export interface Call {
  readonly callee: string;
  readonly pos: SourcePos;
  readonly args: readonly Argument[];
  /** Position of the closing parenthesis (for "missing argument" errors). */
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
  }
}

export function parseCalls(source: string, file: string): Call[] {
  const tokens = tokenize(source, file);
  let p = 0;
  const peek = (): Token => tokens[p] as Token;
  const next = (): Token => tokens[p++] as Token;
  const fail = (at: SourcePos, msg: string): never => {
    throw new RulesLoadError(file, at, msg);
  };
  const expectOp = (op: string, context: string): Token => {
    const t = next();
    if (t.kind !== 'op' || t.value !== op) fail(t.pos, `expected '${op}' ${context}, found ${describeToken(t)}`);
    return t;
  };

  const calls: Call[] = [];
  for (;;) {
    const t = peek();
    if (t.kind === 'eof') break;
    if (t.kind === 'newline' || (t.kind === 'op' && t.value === ';')) {
      p++;
      continue;
    }
    calls.push(parseStatement());
    const end = peek();
    if (end.kind === 'newline' || end.kind === 'eof' || (end.kind === 'op' && end.value === ';')) continue;
    fail(end.pos, `expected end of line after the call, found ${describeToken(end)}`);
  }
  return calls;

  function parseStatement(): Call {
    const t = next();
    if (t.kind !== 'name') {
      fail(t.pos, `expected a call to prefix_rule(...) or host_executable(...), found ${describeToken(t)}`);
    }
    const after = peek();
    if (after.kind === 'op' && after.value === '=') {
      fail(
        t.pos,
        `assignments are not supported (\`${t.value} = ...\`): expected a call to prefix_rule(...) or host_executable(...)`,
      );
    }
    if (['def', 'load', 'if', 'for', 'return', 'pass', 'while', 'lambda'].includes(t.value)) {
      fail(t.pos, `\`${t.value}\` statements are not supported: expected a call to prefix_rule(...) or host_executable(...)`);
    }
    expectOp('(', `after \`${t.value}\` (expected a call to prefix_rule(...) or host_executable(...))`);
    const args: Argument[] = [];
    for (;;) {
      const a = peek();
      if (a.kind === 'op' && a.value === ')') break;
      if (a.kind === 'op' && (a.value === '*' || a.value === '**')) {
        fail(a.pos, `\`${a.value}\` arguments are not supported: expected name = value`);
      }
      const n1 = tokens[p + 1] as Token;
      if (a.kind === 'name' && n1.kind === 'op' && n1.value === '=') {
        p += 2;
        args.push({ name: a.value, namePos: a.pos, value: parseValue() });
      } else {
        args.push({ name: undefined, namePos: a.pos, value: parseValue() });
      }
      const sep = peek();
      if (sep.kind === 'op' && sep.value === ',') {
        p++;
        continue;
      }
      if (sep.kind === 'op' && sep.value === ')') break;
      fail(sep.pos, `expected ',' or ')' in the arguments of ${t.value}(...), found ${describeToken(sep)}`);
    }
    next(); // the ')'
    return { callee: t.value, pos: t.pos, args };
  }

  function parseValue(): Value {
    const t = next();
    if (t.kind === 'string') {
      const n = peek();
      if (n.kind === 'string') {
        fail(n.pos, 'implicit string concatenation is not supported: expected \',\' between the two strings');
      }
      return { kind: 'string', value: t.value, pos: t.pos };
    }
    if (t.kind === 'int') return { kind: 'int', text: t.value, pos: t.pos };
    if (t.kind === 'name') {
      if (t.value === 'None') return { kind: 'none', pos: t.pos };
      if (t.value === 'True' || t.value === 'False') return { kind: 'bool', value: t.value === 'True', pos: t.pos };
      fail(t.pos, `unknown name \`${t.value}\`: variables are not supported, expected a string or a list of strings`);
    }
    if (t.kind === 'op' && (t.value === '[' || t.value === '(')) {
      const close = t.value === '[' ? ']' : ')';
      const items: Value[] = [];
      let sawComma = false;
      for (;;) {
        const n = peek();
        if (n.kind === 'op' && n.value === close) break;
        items.push(parseValue());
        const sep = peek();
        if (sep.kind === 'op' && sep.value === ',') {
          sawComma = true;
          p++;
          continue;
        }
        if (sep.kind === 'op' && sep.value === close) break;
        fail(sep.pos, `expected ',' or '${close}' in ${close === ']' ? 'list' : 'parentheses'}, found ${describeToken(sep)}`);
      }
      p++;
      if (close === ']') return { kind: 'list', items, pos: t.pos };
      // `(x)` is just x; `(x,)`, `(x, y)` and `()` are tuples, which no argument accepts.
      if (items.length === 1 && !sawComma) return items[0] as Value;
      return { kind: 'tuple', items, pos: t.pos };
    }
    if (t.kind === 'op' && t.value === '{') {
      fail(t.pos, 'dictionaries are not supported: expected a string or a list of strings');
    }
    return fail(t.pos, `expected a value (a string, a list, or None), found ${describeToken(t)}`);
  }
}
