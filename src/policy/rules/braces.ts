/** A piece of a `{}` template: literal text, or what stood between a `{` and its `}`. */
export type BracePart = { readonly lit: string } | { readonly field: string };

/**
 * The pieces of a str.format or f-string template, in order (lazily, so the
 * caller's own errors about a field come before a later brace error, as a
 * left-to-right scan reports them); `{{` and `}}` are literal braces.
 * `fail` gets the problem (a lone `}`, a `{` never closed) and must throw.
 */
export function* braceTemplate(s: string, fail: (problem: string) => never): Generator<BracePart, void, undefined> {
  let lit = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if ((c === '{' || c === '}') && s[i + 1] === c) {
      lit += c;
      i++;
      continue;
    }
    if (c === '}') fail('a single `}` must be written `}}`');
    if (c !== '{') {
      lit += c;
      continue;
    }
    const end = s.indexOf('}', i + 1);
    if (end < 0) fail('`{` without a closing `}`');
    if (lit !== '') yield { lit };
    lit = '';
    yield { field: s.slice(i + 1, end) };
    i = end;
  }
  if (lit !== '') yield { lit };
}
