/**
 * Tokenizer for the Starlark subset used by codex execpolicy `.rules` files.
 * Hand-written so every error can point at an exact line and column.
 */
import { RulesLoadError, type SourcePos } from './errors.js';

export type TokenKind = 'name' | 'string' | 'fstring' | 'int' | 'op' | 'newline' | 'indent' | 'dedent' | 'eof';

export interface Token {
  readonly kind: TokenKind;
  /** Decoded value for strings, the spelling for everything else. */
  readonly value: string;
  readonly pos: SourcePos;
}

/** Human description of a token for "expected X, found Y" messages. */
export function describeToken(t: Token): string {
  switch (t.kind) {
    case 'name':
      return `name \`${t.value}\``;
    case 'string':
      return `string ${JSON.stringify(t.value)}`;
    case 'fstring':
      return `f-string ${JSON.stringify(t.value)}`;
    case 'indent':
      return 'an indented block';
    case 'dedent':
      return 'the end of an indented block';
    case 'int':
      return `number ${t.value}`;
    case 'op':
      return `'${t.value}'`;
    case 'newline':
      return 'end of line';
    case 'eof':
      return 'end of file';
  }
}

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
  "'": "'",
  '"': '"',
};

// Operators Starlark knows; we tokenize them only to report a clear
// "not supported here" error at the right place instead of "unexpected character".
const OPERATORS = [
  '**=', '//=', '>>=', '<<=', '==', '!=', '<=', '>=', '+=', '-=', '*=', '/=', '%=', '&=', '|=', '^=',
  '//', '**', '<<', '>>', '->',
  '(', ')', '[', ']', '{', '}', ',', '=', ';', ':', '.', '+', '-', '*', '/', '%', '<', '>', '&', '|', '^', '~',
];

// By length, for a longest-match lookup without scanning the whole list at every operator.
const OPS_BY_LENGTH: readonly ReadonlySet<string>[] = [3, 2, 1].map((n) => new Set(OPERATORS.filter((o) => o.length === n)));

const isIdentStart = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95;
const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isIdentPart = (c: number): boolean => isIdentStart(c) || isDigit(c);

export function tokenize(source: string, file: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  let depth = 0; // bracket nesting: newlines inside brackets are insignificant
  const openers: { op: string; pos: SourcePos }[] = [];
  let atLineStart = true;
  // Python-style block structure: the indentation strings of the open blocks.
  const indents: string[] = [''];

  const pos = (at: number): SourcePos => ({ line, column: at - lineStart + 1 });
  const fail = (at: SourcePos, msg: string): never => {
    throw new RulesLoadError(file, at, msg);
  };
  const indentTo = (indent: string, at: SourcePos): void => {
    const top = indents[indents.length - 1] as string;
    if (indent === top) return;
    if (indent.startsWith(top)) {
      indents.push(indent);
      tokens.push({ kind: 'indent', value: indent, pos: at });
      return;
    }
    while (indents.length > 1 && !indent.startsWith(indents[indents.length - 1] as string)) {
      indents.pop();
      tokens.push({ kind: 'dedent', value: '', pos: at });
    }
    if (indent !== indents[indents.length - 1]) {
      fail(at, 'inconsistent indentation: this line does not line up with any enclosing block (mixed tabs and spaces?)');
    }
  };
  const newline = (at: number): void => {
    line += 1;
    lineStart = at + 1;
  };

  while (i < source.length) {
    const c = source[i] as string;

    if (atLineStart) {
      // Measure indentation of a logical line; blank and comment-only lines don't count.
      let j = i;
      while (j < source.length && (source[j] === ' ' || source[j] === '\t' || source[j] === '\f')) j++;
      const next = source[j];
      atLineStart = false;
      if (next === undefined || next === '\n' || next === '\r' || next === '#') {
        i = j;
        continue;
      }
      if (depth === 0) indentTo(source.slice(i, j), pos(j));
      i = j;
      continue;
    }

    if (c === ' ' || c === '\t' || c === '\f') {
      i++;
      continue;
    }
    if (c === '\r' && source[i + 1] === '\n') {
      i++;
      continue;
    }
    if (c === '\n' || c === '\r') {
      if (depth === 0) {
        const last = tokens[tokens.length - 1];
        if (last !== undefined && last.kind !== 'newline') tokens.push({ kind: 'newline', value: '\n', pos: pos(i) });
        atLineStart = true;
      }
      newline(i);
      i++;
      continue;
    }
    if (c === '#') {
      while (i < source.length && source[i] !== '\n' && source[i] !== '\r') i++;
      continue;
    }
    if (c === '\\') {
      // Explicit line joining.
      if (source[i + 1] === '\n') {
        newline(i + 1);
        i += 2;
        continue;
      }
      if (source[i + 1] === '\r' && source[i + 2] === '\n') {
        newline(i + 2);
        i += 3;
        continue;
      }
      fail(pos(i), 'unexpected character \'\\\' (a backslash outside a string must end the line)');
    }

    const start = pos(i);

    const code = source.charCodeAt(i);
    if (isIdentStart(code)) {
      let j = i + 1;
      while (j < source.length && isIdentPart(source.charCodeAt(j))) j++;
      const word = source.slice(i, j);
      const q = source[j];
      if ((q === '"' || q === "'") && /^[rRbBfF]{1,2}$/.test(word)) {
        const lower = word.toLowerCase();
        if (lower.includes('b')) fail(start, 'byte strings are not supported: expected a plain string literal');
        // Upstream parses rules with f-strings enabled: f"...{name}..." (and rf / fr).
        const r = readString(j, lower.includes('r'), start);
        tokens.push({ kind: lower.includes('f') ? 'fstring' : 'string', value: r.value, pos: start });
        i = r.end;
        continue;
      }
      tokens.push({ kind: 'name', value: word, pos: start });
      i = j;
      continue;
    }

    if (c === '"' || c === "'") {
      const r = readString(i, false, start);
      tokens.push({ kind: 'string', value: r.value, pos: start });
      i = r.end;
      continue;
    }

    if (isDigit(code)) {
      let j = i + 1;
      while (j < source.length && (isIdentPart(source.charCodeAt(j)) || source[j] === '.')) j++;
      tokens.push({ kind: 'int', value: source.slice(i, j), pos: start });
      i = j;
      continue;
    }

    let op: string | undefined;
    for (const [k, set] of OPS_BY_LENGTH.entries()) {
      const cand = source.substr(i, 3 - k);
      if (set.has(cand)) {
        op = cand;
        break;
      }
    }
    if (op !== undefined) {
      if (op === '(' || op === '[' || op === '{') {
        depth++;
        openers.push({ op, pos: start });
      }
      if (op === ')' || op === ']' || op === '}') {
        const top = openers.pop();
        if (top === undefined) throw new RulesLoadError(file, start, `unmatched '${op}': nothing to close`);
        const want = top.op === '(' ? ')' : top.op === '[' ? ']' : '}';
        if (want !== op) {
          fail(start, `expected '${want}' to close the '${top.op}' opened at ${top.pos.line}:${top.pos.column}, found '${op}'`);
        }
        depth--;
      }
      tokens.push({ kind: 'op', value: op, pos: start });
      i += op.length;
      continue;
    }

    const cp = source.codePointAt(i) ?? 0;
    fail(start, `unexpected character ${JSON.stringify(String.fromCodePoint(cp))}`);
  }

  const open = openers[openers.length - 1];
  if (open !== undefined) {
    const close = open.op === '(' ? ')' : open.op === '[' ? ']' : '}';
    fail(open.pos, `unclosed '${open.op}': expected '${close}' before the end of the file`);
  }
  const last = tokens[tokens.length - 1];
  if (last !== undefined && last.kind !== 'newline' && last.kind !== 'dedent') tokens.push({ kind: 'newline', value: '\n', pos: pos(i) });
  while (indents.length > 1) {
    indents.pop();
    tokens.push({ kind: 'dedent', value: '', pos: pos(i) });
  }
  tokens.push({ kind: 'eof', value: '', pos: pos(i) });
  return tokens;

  /** Reads a string literal whose opening quote is at `at`; returns the decoded value and the index after it. */
  function readString(at: number, raw: boolean, start: SourcePos): { value: string; end: number } {
    const quote = source[at] as string;
    const triple = source.startsWith(quote.repeat(3), at);
    let j = at + (triple ? 3 : 1);
    let out = '';
    for (;;) {
      if (j >= source.length) fail(start, 'unterminated string literal: expected a closing ' + (triple ? quote.repeat(3) : quote));
      const ch = source[j] as string;
      if (triple ? source.startsWith(quote.repeat(3), j) : ch === quote) {
        return { value: out, end: j + (triple ? 3 : 1) };
      }
      if (ch === '\n' || ch === '\r') {
        if (!triple) fail(start, `unterminated string literal: expected a closing ${quote} before the end of the line`);
        if (ch === '\r' && source[j + 1] === '\n') {
          j++;
        }
        out += '\n';
        newline(j);
        j++;
        continue;
      }
      if (ch !== '\\') {
        out += ch;
        j++;
        continue;
      }
      // Backslash.
      const e = source[j + 1];
      if (e === undefined) fail(start, 'unterminated string literal: expected a closing ' + quote);
      if (e === '\n' || (e === '\r' && source[j + 2] === '\n')) {
        // Line continuation inside a string: both dropped (raw strings keep them).
        const skip = e === '\n' ? 2 : 3;
        if (raw) out += source.slice(j, j + skip).replace('\r\n', '\n');
        newline(j + skip - 1);
        j += skip;
        continue;
      }
      if (raw) {
        // In raw strings a backslash only stops the next quote from closing the literal.
        out += '\\' + (e as string);
        j += 2;
        continue;
      }
      const simple = SIMPLE_ESCAPES[e as string];
      if (simple !== undefined) {
        out += simple;
        j += 2;
        continue;
      }
      const escPos = pos(j);
      if (/[0-7]/.test(e as string)) {
        let k = j + 1;
        while (k < j + 4 && /[0-7]/.test(source[k] ?? '')) k++;
        const code = parseInt(source.slice(j + 1, k), 8);
        if (code > 255) fail(escPos, `invalid escape sequence \\${source.slice(j + 1, k)}: octal escapes must be at most \\377`);
        out += String.fromCharCode(code);
        j = k;
        continue;
      }
      const hexLen = e === 'x' ? 2 : e === 'u' ? 4 : e === 'U' ? 8 : 0;
      if (hexLen > 0) {
        const hex = source.slice(j + 2, j + 2 + hexLen);
        if (hex.length !== hexLen || !/^[0-9a-fA-F]+$/.test(hex)) {
          const got = /^[0-9a-fA-F]*/.exec(hex)?.[0] ?? '';
          fail(escPos, `invalid escape sequence \\${e}${got}: expected ${hexLen} hexadecimal digits`);
        }
        const code = parseInt(hex, 16);
        if (code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
          fail(escPos, `invalid escape sequence \\${e}${hex}: not a valid Unicode code point`);
        }
        out += String.fromCodePoint(code);
        j += 2 + hexLen;
        continue;
      }
      fail(
        escPos,
        `invalid escape sequence \\${e as string}: expected one of \\n \\t \\r \\\\ \\' \\" \\a \\b \\f \\v \\ooo \\xhh \\uXXXX \\UXXXXXXXX`,
      );
    }
  }
}
