import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import { interpretDecisionObject, type HookOutcome } from '../decision.js';
import type { McpServerConfig, McpToolHook } from '../types.js';

/**
 * mcp_tool hooks: one stdio MCP server process per configured server, started
 * on first use and reused by every hook naming it; if it dies, the next call
 * starts it again.
 *
 * Result contract (documented in examples/hooks/README.md):
 *  - `isError: true` → deny, reason = the tool's text;
 *  - `structuredContent` that is a decision object (same forms as a command
 *    hook's stdout) → that decision;
 *  - first text block that parses as a JSON object → read as a command hook's stdout;
 *  - first text block starting with "deny" or "block" (any case) → deny, reason = the text;
 *  - anything else (including no content) → no opinion.
 */
export class McpPool {
  private clients = new Map<string, Promise<{ client: Client; transport: StdioClientTransport }>>();
  private closed = false;

  constructor(
    private readonly servers: Readonly<Record<string, McpServerConfig>>,
    private readonly logger: Logger,
  ) {}

  private connect(name: string): Promise<{ client: Client; transport: StdioClientTransport }> {
    const existing = this.clients.get(name);
    if (existing) return existing;
    const cfg = this.servers[name];
    if (!cfg) return Promise.reject(new Error(`no MCP server named "${name}"`));
    const p = (async () => {
      const transport = new StdioClientTransport({
        command: cfg.command,
        args: [...cfg.args],
        env: { ...getDefaultEnvironment(), ...cfg.env },
        ...(cfg.cwd !== undefined ? { cwd: cfg.cwd } : {}),
        stderr: 'pipe',
      });
      let stderrTail = '';
      transport.stderr?.on('data', (b: Buffer) => {
        stderrTail = (stderrTail + b.toString('utf8')).slice(-2000);
      });
      const client = new Client({ name: 'codex-shell-escalation-hooks', version: '0.1.0' });
      client.onclose = () => {
        // Forget a dead server so the next call starts a fresh one.
        if (this.clients.get(name) === p) this.clients.delete(name);
        if (!this.closed) this.logger.warn({ server: name, stderr: stderrTail.slice(-500) }, 'MCP hook server closed');
      };
      try {
        await client.connect(transport);
      } catch (e) {
        this.clients.delete(name);
        await transport.close().catch(() => undefined);
        throw new Error(`could not start MCP server "${name}": ${(e as Error).message}${stderrTail ? ` (${stderrTail.trim().slice(-300)})` : ''}`, { cause: e });
      }
      return { client, transport };
    })();
    this.clients.set(name, p);
    return p;
  }

  /** Pid of a running server process (tests and diagnostics). */
  async pid(name: string): Promise<number | null> {
    const c = this.clients.get(name);
    if (!c) return null;
    return (await c).transport.pid;
  }

  async call(hook: McpToolHook, args: Record<string, unknown>, signal?: AbortSignal): Promise<HookOutcome & { output?: string }> {
    if (this.closed) return { kind: 'failure', status: 'failed', error: 'hook engine is closed' };
    const started = Date.now();
    let client: Client;
    try {
      client = (await withTimeout(this.connect(hook.server), hook.timeoutMs)).client;
    } catch (e) {
      if (e instanceof TimeoutError) return { kind: 'failure', status: 'timed_out', error: `MCP server "${hook.server}" did not start within ${hook.timeoutMs} ms` };
      return { kind: 'failure', status: 'failed', error: (e as Error).message };
    }
    const remaining = Math.max(1, hook.timeoutMs - (Date.now() - started));
    let result: Awaited<ReturnType<Client['callTool']>>;
    try {
      result = await client.callTool({ name: hook.tool, arguments: args }, undefined, {
        timeout: remaining,
        ...(signal ? { signal } : {}),
      });
    } catch (e) {
      if (e instanceof McpError && e.code === (ErrorCode.RequestTimeout as number)) {
        return { kind: 'failure', status: 'timed_out', error: `MCP tool ${hook.server}/${hook.tool} did not answer within ${hook.timeoutMs} ms` };
      }
      return { kind: 'failure', status: 'failed', error: `MCP tool ${hook.server}/${hook.tool} failed: ${(e as Error).message}` };
    }
    return interpretToolResult(result);
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(
      all.map(async (p) => {
        try {
          const { client } = await p;
          await client.close();
        } catch {
          // a server that never started has nothing to close
        }
      }),
    );
  }
}

class TimeoutError extends Error {}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new TimeoutError('timeout')), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** Pure: an MCP CallTool result → a hook outcome (contract above). */
export function interpretToolResult(result: unknown): HookOutcome & { output?: string } {
  const r = (result ?? {}) as { isError?: unknown; content?: unknown; structuredContent?: unknown };
  const texts: string[] = Array.isArray(r.content)
    ? r.content.flatMap((c: unknown) => {
        const b = c as { type?: unknown; text?: unknown };
        return b.type === 'text' && typeof b.text === 'string' ? [b.text] : [];
      })
    : [];
  const text = texts.join('\n').trim();
  const output = text.slice(0, 500);
  if (r.isError === true) return { kind: 'opinion', decision: 'deny', reason: text || 'MCP tool reported an error', output };
  if (r.structuredContent !== undefined && r.structuredContent !== null && typeof r.structuredContent === 'object') {
    const sc = r.structuredContent as Record<string, unknown>;
    if ('decision' in sc || 'hookSpecificOutput' in sc || 'continue' in sc) return { ...interpretDecisionObject(sc), output };
  }
  const first = (texts[0] ?? '').trim();
  if (first.startsWith('{')) {
    try {
      return { ...interpretDecisionObject(JSON.parse(first)), output };
    } catch {
      // not JSON after all: fall through to the prefix rule
    }
  }
  if (/^(deny|block)/i.test(first)) return { kind: 'opinion', decision: 'deny', reason: first, output };
  return { kind: 'opinion', output };
}
