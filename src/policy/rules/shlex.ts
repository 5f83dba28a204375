/**
 * POSIX-shell-style word splitting for `match` / `not_match` example strings,
 * following the rules of the `shlex` crate upstream uses: no expansion, no
 * operators, just quoting. Returns undefined on invalid syntax (unclosed quote,
 * trailing backslash).
 */
export function shlexSplit(input: string): string[] | undefined {
  const words: string[] = [];
  let i = 0;
  const n = input.length;
  while (i < n) {
    const c = input[i] as string;
    if (c === ' ' || c === '\t' || c === '\n') {
      i++;
      continue;
    }
    if (c === '#') {
      // A comment only starts at the beginning of a word.
      while (i < n && input[i] !== '\n') i++;
      continue;
    }
    let word = '';
    while (i < n) {
      const ch = input[i] as string;
      if (ch === ' ' || ch === '\t' || ch === '\n') break;
      if (ch === "'") {
        const end = input.indexOf("'", i + 1);
        if (end < 0) return undefined;
        word += input.slice(i + 1, end);
        i = end + 1;
        continue;
      }
      if (ch === '"') {
        i++;
        for (;;) {
          if (i >= n) return undefined;
          const d = input[i] as string;
          if (d === '"') {
            i++;
            break;
          }
          if (d === '\\') {
            const e = input[i + 1];
            if (e === undefined) return undefined;
            if (e === '\n') {
              i += 2;
              continue;
            }
            if (e === '$' || e === '`' || e === '"' || e === '\\') {
              word += e;
              i += 2;
              continue;
            }
            word += '\\';
            i++;
            continue;
          }
          word += d;
          i++;
        }
        continue;
      }
      if (ch === '\\') {
        const e = input[i + 1];
        if (e === undefined) return undefined;
        if (e !== '\n') word += e;
        i += 2;
        continue;
      }
      word += ch;
      i++;
    }
    words.push(word);
  }
  return words;
}

/** Renders argv as a shell command line that shlexSplit turns back into the same words. */
export function shlexJoin(words: readonly string[]): string {
  return words.map(shlexQuote).join(' ');
}

export function shlexQuote(word: string): string {
  if (word === '') return "''";
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'"'"'`)}'`;
}
