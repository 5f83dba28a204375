import type { Logger } from 'pino';
import type { ServerObserver } from '../server/escalation-server.js';
import type { HookEngine } from './engine.js';

/**
 * Feeds the server's lifecycle into the hooks engine: SessionStart (awaited,
 * so e.g. a backup finishes before the shell starts), PostToolUse after each
 * escalated exit, Deny and Run hand-off, Stop at session end, and
 * error.occurred for protocol errors. PreToolUse is part of the decision
 * pipeline, not of this observer. Post-decision hooks never delay a decision.
 */
export function hooksObserver(engine: HookEngine, logger: Logger): ServerObserver {
  const background = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    const q = p.catch((err: unknown) => logger.error({ event: 'hook_error', error: String(err) }, 'hook event failed'));
    background.add(q);
    void q.finally(() => background.delete(q));
  };
  return {
    async sessionStarted(session) {
      await engine.sessionStart({ sessionId: session.id, cwd: session.cwd });
    },
    decided({ request, action, decision }) {
      const info = { sessionId: request.sessionId, requestId: request.requestId, program: decision.rewrite?.program ?? request.program, argv: decision.rewrite?.argv ?? request.argv, workdir: request.workdir, cwd: request.workdir };
      if (action.kind === 'deny') track(engine.postToolUse({ ...info, outcome: 'denied', reason: action.reason ?? 'denied' }));
      else if (action.kind === 'run') track(engine.postToolUse({ ...info, outcome: 'run-handed-off' }));
    },
    escalatedExited({ request, exitCode, durationMs }) {
      track(engine.postToolUse({ sessionId: request.sessionId, requestId: request.requestId, program: request.program, argv: request.argv, workdir: request.workdir, cwd: request.workdir, outcome: 'exited', exitCode, durationMs }));
    },
    protocolError({ sessionId, error }) {
      track(engine.errorOccurred({ sessionId, error, kind: 'protocol' }));
    },
    async sessionEnded(session) {
      await Promise.all([...background]);
      await engine.sessionEnd({ sessionId: session.id, cwd: session.cwd, exitCode: session.exitCode ?? -1, durationMs: Date.now() - session.startedAt });
    },
  };
}
