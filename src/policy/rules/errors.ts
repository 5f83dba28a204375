/** A position in a rules file: 1-based line and column (columns count UTF-16 code units). */
export interface SourcePos {
  readonly line: number;
  readonly column: number;
}

/**
 * Any failure to load a rules file. The message always starts with
 * `file:line:column:` so editors and terminals can jump to it; `detail` is the
 * bare explanation (what was found and what was expected).
 */
export class RulesLoadError extends Error {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly detail: string;

  constructor(file: string, pos: SourcePos, detail: string, options?: ErrorOptions) {
    super(`${file}:${pos.line}:${pos.column}: ${detail}`, options);
    this.name = 'RulesLoadError';
    this.file = file;
    this.line = pos.line;
    this.column = pos.column;
    this.detail = detail;
  }
}
