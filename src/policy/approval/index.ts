/** Approvers: who answers when a `prompt` rule matches. */
import { createCommandApprover, type CommandApproverOptions } from './command.js';
import { createDenyApprover } from './deny.js';
import { createTtyApprover, type TtyApproverOptions } from './tty.js';
import type { Approver } from './types.js';

export { createDenyApprover } from './deny.js';
export { createTtyApprover, terminalSafe, SETTLE_MS, TERMINAL_RESET, type TtyApproverOptions } from './tty.js';
export { createCommandApprover, approvalPayload, type CommandApproverOptions } from './command.js';
export { createCallbackApprover, type ApprovalCallback } from './callback.js';
export { requiresApprovalReason, type ApprovalRequest, type ApprovalResult, type ApprovalScope, type Approver, type ApprovalContext, type SandboxFreezer } from './types.js';

export interface ApproverSpecOptions {
  readonly tty?: TtyApproverOptions;
  readonly command?: CommandApproverOptions;
}

/** Builds an approver from a CLI spec: `deny` | `tty` | `command:CMD`. Throws a clear Error on anything else. */
export function createApprover(spec: string, opts: ApproverSpecOptions = {}): Approver {
  if (spec === 'deny') return createDenyApprover();
  if (spec === 'tty') return createTtyApprover(opts.tty);
  if (spec.startsWith('command:')) return createCommandApprover(spec.slice('command:'.length), opts.command);
  throw new Error(`invalid approval mode ${JSON.stringify(spec)}: expected deny, tty or command:CMD`);
}
