import { requiresApprovalReason, type ApprovalRequest, type ApprovalResult, type Approver } from './types.js';

export type ApprovalCallback = (
  req: ApprovalRequest,
  signal: AbortSignal,
) => ApprovalResult | boolean | Promise<ApprovalResult | boolean>;

/** Library API: the embedding program decides. `true`/`false` mean allow once / deny; a throw is a deny. */
export function createCallbackApprover(fn: ApprovalCallback): Approver {
  return {
    async approve(req, signal) {
      try {
        const r = await fn(req, signal);
        if (signal.aborted) return { decision: 'deny', reason: requiresApprovalReason(req, 'request cancelled') };
        if (r === true) return { decision: 'allow', scope: 'once' };
        if (r === false) return { decision: 'deny', reason: requiresApprovalReason(req, 'denied by approval callback') };
        if (r !== null && typeof r === 'object' && (r.decision === 'allow' || r.decision === 'deny')) {
          if (r.decision === 'deny' && (typeof r.reason !== 'string' || r.reason === '')) {
            return { decision: 'deny', reason: requiresApprovalReason(req, 'denied by approval callback') };
          }
          return r;
        }
        return { decision: 'deny', reason: requiresApprovalReason(req, 'approval callback returned an invalid result') };
      } catch (err) {
        return { decision: 'deny', reason: requiresApprovalReason(req, `approval callback failed: ${(err as Error)?.message ?? String(err)}`) };
      }
    },
  };
}
