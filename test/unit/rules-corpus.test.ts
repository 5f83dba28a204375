/**
 * Every real public `.rules` file in test/fixtures/rules-corpus/ (sources in
 * its README) loads, its match / not_match examples pass (they are checked at
 * load), and a few decisions come out as the file's authors wrote them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadRulesFiles, parseRulesSource, readRulesFile } from '../../src/policy/rules/index.js';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'rules-corpus');
const files = readdirSync(dir).filter((f) => f.endsWith('.rules')).sort();

describe('real-world rules corpus', () => {
  it('has at least 8 files, each named in the README with its source', async () => {
    expect(files.length).toBeGreaterThanOrEqual(8);
    const readme = readFileSync(path.join(dir, 'README.md'), 'utf8');
    for (const f of files) expect(readme).toContain(`\`${f}\``);
  });

  it.each(files)('%s loads, with its examples passing', async (f) => {
    const src = await readRulesFile(path.join(dir, f));
    const parsed = parseRulesSource(src.source, src.file);
    expect(parsed.statements.length).toBeGreaterThan(0);
    // loadRulesFiles validates every match / not_match example; it throws if one fails.
    const rules = await loadRulesFiles([path.join(dir, f)]);
    expect(rules.size + rules.networkRules().length).toBeGreaterThan(0);
  });

  it('the examples in the corpus are many and all checked', async () => {
    let examples = 0;
    for (const f of files) {
      const src = await readRulesFile(path.join(dir, f));
      for (const st of parseRulesSource(src.source, src.file).statements) {
        if (st.kind === 'prefix_rule') examples += st.decl.match.length + st.decl.notMatch.length;
      }
    }
    expect(examples).toBeGreaterThanOrEqual(50);
  });

  it.each<[string, string[], string | undefined]>([
    ['openai-codex-development.rules', ['just', 'bazel-lock-check'], 'allow'],
    ['openai-codex-development.rules', ['cargo', 'publish'], undefined],
    ['openai-codex-execpolicy-tests.rules', ['sh', '-l', 'echo'], 'allow'],
    ['openai-codex-execpolicy-tests.rules', ['rm', '-rf', '/x'], 'forbidden'],
    ['hubspot-hubspot-cli-default.rules', ['gh', 'pr', 'merge', '1'], 'prompt'],
    ['altinn-altinn-studio-default.rules', ['tree', '-L', '2'], 'allow'],
    ['1panel-dev-cordyscrm-default.rules', ['git', 'reset', '--hard'], 'forbidden'],
    ['1panel-dev-cordyscrm-default.rules', ['.\\mvnw.cmd', 'deploy'], 'prompt'],
    ['yxhpy-codex-project-governor-project.rules', ['rm', '-rf', 'x'], 'prompt'],
    ['dbochman-dotfiles-default.rules', ['/bin/zsh', '-lc', 'rg "<Header" src -g"*.test.tsx"'], 'allow'],
    ['fanahova-dot-files-default.rules', ['git', 'checkout', '-b', 'x'], 'allow'],
    ['bastidood-drap-default.rules', ['npx', 'x'], 'forbidden'],
    ['flip451-sotohe-core-default.rules', ['git', 'push'], 'forbidden'],
  ])('%s: %j -> %s', async (f, argv, decision) => {
    const rules = await loadRulesFiles([path.join(dir, f)]);
    expect(rules.evaluate(argv).decision).toBe(decision);
  });

  it('network_rule declarations in upstream tests are kept, normalized, and decide nothing', async () => {
    const rules = await loadRulesFiles([path.join(dir, 'openai-codex-execpolicy-tests.rules')]);
    expect(rules.networkRules().map((r) => `${r.host} ${r.protocol} ${r.decision}`)).toEqual([
      'google.com http allow',
      'api.github.com https allow',
      'blocked.example.com https forbidden',
      'prompt-only.example.com https prompt',
    ]);
    expect(rules.evaluate(['blocked.example.com']).matchedRules).toEqual([]);
  });

  it('all files load together, in sorted order, as a --rules directory does', async () => {
    const rules = await loadRulesFiles(files.map((f) => path.join(dir, f)));
    // Later files add rules: drap forbids npm, CordysCRM prompts for it; the strictest wins.
    expect(rules.evaluate(['npm', 'publish']).decision).toBe('forbidden');
  });
});
