import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonSyntaxErrorOffset, lineColumn } from '../../src/hooks/json-position.js';

describe('jsonSyntaxErrorOffset', () => {
  it('agrees with JSON.parse: valid texts have no error offset, invalid ones have one', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom(undefined, 2), (v, indent) => {
        expect(jsonSyntaxErrorOffset(JSON.stringify(v, null, indent))).toBeUndefined();
      }),
    );
    fc.assert(
      fc.property(fc.string(), (s) => {
        let valid = true;
        try {
          JSON.parse(s);
        } catch {
          valid = false;
        }
        expect(jsonSyntaxErrorOffset(s) === undefined).toBe(valid);
      }),
    );
  });

  it('points at the first offending character', () => {
    expect(jsonSyntaxErrorOffset('{"a": [1, 2,]}')).toBe(12);
    expect(jsonSyntaxErrorOffset('{"a": tru}')).toBe(9);
    expect(jsonSyntaxErrorOffset('{"a": 1} x')).toBe(9);
    expect(jsonSyntaxErrorOffset('{"a": "\\q"}')).toBe(8);
    expect(jsonSyntaxErrorOffset('{"a": 1')).toBe(7);
    expect(lineColumn('{\n  "a": ,\n}', 9)).toEqual({ line: 2, column: 8 });
  });
});
