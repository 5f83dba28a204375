import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/paths.js';

/** Value imports (not `import type`) between modules of src/, as a graph of absolute paths. */
function importGraph(root: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const file = path.join(entry.parentPath, entry.name);
    const deps: string[] = [];
    for (const m of readFileSync(file, 'utf8').matchAll(/^(?:import|export)\s+(?!type\b)[^'";]*?from\s+'(\.[^']+)'/gm)) {
      deps.push(path.resolve(path.dirname(file), (m[1] as string).replace(/\.js$/, '.ts')));
    }
    graph.set(file, deps);
  }
  return graph;
}

function cycles(graph: Map<string, string[]>, root: string): string[] {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const found: string[] = [];
  const visit = (n: string): void => {
    state.set(n, 'open');
    stack.push(n);
    for (const d of graph.get(n) ?? []) {
      if (!graph.has(d)) continue;
      if (state.get(d) === 'open') found.push([...stack.slice(stack.indexOf(d)), d].map((f) => path.relative(root, f)).join(' -> '));
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of graph.keys()) if (!state.has(n)) visit(n);
  return found;
}

describe('module structure', () => {
  const root = path.join(packageRoot, 'src');

  it('src/ has no value-import cycle (decision-pipeline <-> static-policy was one)', () => {
    expect(cycles(importGraph(root), root)).toEqual([]);
  });

  it('the cycle finder finds a cycle', () => {
    const g = new Map([['/a.ts', ['/b.ts']], ['/b.ts', ['/a.ts']], ['/c.ts', []]]);
    expect(cycles(g, '/')).toEqual(['a.ts -> b.ts -> a.ts']);
  });

  it('prefix parsing lives in policy/prefix.ts, not behind static-policy', () => {
    const deps = importGraph(root).get(path.join(root, 'policy', 'decision-pipeline.ts')) ?? [];
    expect(deps).toContain(path.join(root, 'policy', 'prefix.ts'));
    expect(deps).not.toContain(path.join(root, 'policy', 'static-policy.ts'));
  });
});
