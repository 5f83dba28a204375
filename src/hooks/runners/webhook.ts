import { setTimeout as sleep } from 'node:timers/promises';
import { interpretStdout, type HookOutcome } from '../decision.js';
import type { WebhookHook } from '../types.js';

const BODY_CAP = 1024 * 1024;
const BACKOFF_BASE_MS = 100;

/**
 * POST the seed payload. The hook's `timeout` bounds the whole call, retries
 * included, because a decision must be time-boxed. 5xx and network errors are
 * retried (exponential backoff from 100 ms); a 4xx is final. A 2xx body is
 * read like a command hook's stdout when it is JSON (content-type json or
 * starting with `{`); any other 2xx body is "no opinion".
 */
export async function runWebhook(
  hook: WebhookHook,
  payload: unknown,
  signal?: AbortSignal,
): Promise<HookOutcome & { output?: string; attempts: number }> {
  const deadline = Date.now() + hook.timeoutMs;
  const body = JSON.stringify(payload);
  let lastError = 'no attempt made';
  let attempts = 0;
  for (let attempt = 0; attempt <= hook.retryCount; attempt++) {
    if (attempt > 0) {
      const wait = Math.min(BACKOFF_BASE_MS * 2 ** (attempt - 1), deadline - Date.now());
      if (wait > 0) await sleep(wait, undefined, { signal }).catch(() => undefined);
    }
    if (signal?.aborted) return { kind: 'failure', status: 'failed', error: 'aborted', attempts };
    const remaining = deadline - Date.now();
    if (remaining <= 0) return { kind: 'failure', status: 'timed_out', error: `webhook timed out (${lastError})`, attempts };
    attempts++;
    const timeout = AbortSignal.timeout(remaining);
    const sig = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let res: Response;
    try {
      res = await fetch(hook.url, {
        method: hook.method,
        headers: { 'content-type': 'application/json', 'user-agent': 'codex-shell-escalation-hooks', ...hook.headers },
        body,
        signal: sig,
        redirect: 'error',
      });
    } catch (e) {
      if (timeout.aborted) return { kind: 'failure', status: 'timed_out', error: `webhook did not answer within ${hook.timeoutMs} ms`, attempts };
      if (signal?.aborted) return { kind: 'failure', status: 'failed', error: 'aborted', attempts };
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      lastError = `network error: ${cause?.code ?? cause?.message ?? (e as Error).message}`;
      continue;
    }
    let text: string;
    try {
      text = await readCapped(res);
    } catch (e) {
      if (timeout.aborted) return { kind: 'failure', status: 'timed_out', error: `webhook body not received within ${hook.timeoutMs} ms`, attempts };
      if (e instanceof BodyTooLarge) return { kind: 'opinion', decision: 'deny', reason: 'webhook response exceeded the 1 MiB cap (truncated output blocks)', attempts };
      lastError = `network error reading body: ${(e as Error).message}`;
      continue;
    }
    const excerpt = text.slice(0, 500);
    if (res.status >= 500) {
      lastError = `HTTP ${res.status}`;
      continue;
    }
    if (res.status < 200 || res.status >= 300) {
      return { kind: 'failure', status: 'failed', error: `webhook answered HTTP ${res.status}${excerpt ? `: ${excerpt}` : ''}`, output: excerpt, attempts };
    }
    const isJson = (res.headers.get('content-type') ?? '').includes('json') || text.trimStart().startsWith('{');
    if (!isJson) return { kind: 'opinion', output: excerpt, attempts };
    return { ...interpretStdout(text), output: excerpt, attempts };
  }
  return { kind: 'failure', status: 'failed', error: `webhook failed after ${attempts} attempt(s): ${lastError}`, attempts };
}

class BodyTooLarge extends Error {}

async function readCapped(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > BODY_CAP) {
      await reader.cancel().catch(() => undefined);
      throw new BodyTooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
