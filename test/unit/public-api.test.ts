import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// dist/ is compiled by the global setup with tsconfig.build.json, exactly as published.
const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist');

function declarations(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.d.ts'))
    .map((e) => path.join(e.parentPath, e.name));
}

describe('published declarations', () => {
  it('carry no @internal member', () => {
    const files = declarations(dist);
    expect(files.length).toBeGreaterThan(10);
    expect(files.filter((f) => readFileSync(f, 'utf8').includes('@internal')).map((f) => path.relative(dist, f))).toEqual([]);
  });

  it('EscalationServer and EscalationSession show no server plumbing (it is #private)', () => {
    const text = readFileSync(path.join(dist, 'server/escalation-server.d.ts'), 'utf8');
    for (const cls of ['EscalationServer', 'EscalationSession']) {
      const body = new RegExp(`export declare class ${cls} \\{\\n([\\s\\S]*?)\\n\\}`).exec(text)?.[1];
      expect(body, cls).toBeDefined();
      expect(body).toContain('#private;');
      for (const name of ['nextRequestId', 'logRejected', 'forget', 'notify', 'safeObserve', 'escalationChecks', 'drainHandshakes', 'escalate(', 'serverFd', 'poller', 'host']) {
        expect(body, `${cls} declares ${name}`).not.toMatch(new RegExp(`^\\s+(?:(?:private|protected|readonly|static) )*${name.replace('(', '\\(')}`, 'm'));
      }
    }
  });
});
