import { requiresApprovalReason, type ApprovalRequest, type ApprovalResult, type Approver } from './types.js';

/** Headless default: nobody to ask, so every prompt is a deny. */
export function createDenyApprover(): Approver {
  return {
    approve(req: ApprovalRequest): Promise<ApprovalResult> {
      return Promise.resolve({ decision: 'deny', reason: requiresApprovalReason(req) });
    },
  };
}
