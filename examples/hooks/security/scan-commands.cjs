#!/usr/bin/env node
'use strict';
/*
 * Command security scanner: a PreToolUse hook (Codex / Claude Code format).
 *
 * Spawned mode (default): reads one JSON event on stdin, prints one decision.
 * Persistent mode (`--persistent`, or CODEX_HOOK_PERSISTENT=1): reads one JSON
 * event per line, answers one line per event, echoing its "id".
 *
 * Risk: any dangerous pattern = high (blocked: permissionDecision "deny"),
 * only warnings = medium (no opinion, or "ask" with CODEX_SECURITY_MEDIUM=ask),
 * nothing = low. Every scan appends one JSON line to the security log
 * ($CODEX_SECURITY_LOG, default ~/.codex/security.log).
 *
 * Written as CommonJS with no dependencies: it is the fastest to start of the
 * runtimes on the machine, which is what a hook spawned per exec pays for.
 */
const fs = require('fs');
const os = require('os');
const path = require('path');

const DANGEROUS = [
  [/\brm\s+(?:-[^\s]*\s+|--[a-z-]+\s+)*(?:\/|\/\*|~\/?|\*)(?=\s|$|;|&|\|)/, 'rm on /, ~ or *'],
  [/\brm\s+(?:[^;|&]*\s)?-[a-zA-Z]*[rR][^;|&]*\s\/(?:bin|boot|dev|etc|home|lib|lib64|opt|proc|root|sbin|srv|sys|usr|var)\/?(?=\s|$)/, 'recursive rm of a system directory'],
  [/\bchmod\s+(?:-[^\s]+\s+)*0?777\b/, 'chmod 777'],
  // Through other stages (`| tee f |`) and `2>&1` (bash prints `a |& b` as `a 2>&1 | b`); `sudo -E`, `/bin/sh`.
  [/\b(?:curl|wget)\b(?:[^;&\n]|>&)*\|&?\s*(?:sudo\s+(?:-\S+\s+)*)?(?:\S*\/)?(?:ba|z|da|k)?sh\b/, 'download piped to a shell (curl | sh)'],
  [/\bmkfs(?:\.\w+)?\b/, 'mkfs (formats a filesystem)'],
  [/\bdd\b[^;|&]*\bof=\/dev\//, 'dd onto a device (dd of=/dev/...)'],
  [/\bkill\s+-(?:9|KILL|SIGKILL)\s+(?:-1|1)(?=\s|$)/, 'kill -9 of init / every process'],
  [/\bkillall\s+-(?:9|KILL|SIGKILL)\b/, 'killall -9'],
  [/\bsudo\s+rm\b/, 'sudo rm'],
  [/:\(\)\s*\{\s*:\s*\|\s*:\s*&\s*\}\s*;\s*:/, 'fork bomb'],
  [/>\s*\/dev\/(?:sd[a-z]|nvme\d|hd[a-z]|vd[a-z])/, 'write to a raw disk device'],
];

const WARNINGS = [
  [/\bsudo\b/, 'uses sudo'],
  [/(?:^|\s)--force(?:\s|=|$)/, 'forced operation (--force)'],
  [/\bfind\b.*\s-(?:exec|execdir|delete)\b/, 'find with -exec / -delete'],
  [/\bchmod\s+(?:-[^\s]+\s+)*(?:[0-7]?[0-7][0-7][4-7]\b|[ugoa]*[ao][ugoa]*[+=][rwxXst]*r)/, 'world-readable permissions'],
];

/*
 * Patterns only the line shows: each exec alone looks innocent (`curl x | sh`
 * is a curl and a sh). Checked on the once-per-run PreToolUse (tool_input.scope
 * = "run", tool_input.command = the script) and, per exec, on
 * tool_input.pipeline (the pipeline the exec is a stage of, as bash printed
 * it), so a harness that installs only the per-exec hook still denies every
 * stage of `curl x | sh`. The pipeline is a hint the script can forge: it can
 * only add a deny here, never take one away. The other patterns stay per exec,
 * where bash has expanded globs and variables.
 */
const LINE_LEVEL = new Set(['download piped to a shell (curl | sh)', 'fork bomb', 'write to a raw disk device']);

function scan(command, level) {
  const issues = [];
  const warnings = [];
  for (const [re, what] of DANGEROUS) if ((level !== 'run' || LINE_LEVEL.has(what)) && re.test(command)) issues.push(what);
  if (level !== 'run') for (const [re, what] of WARNINGS) if (re.test(command)) warnings.push(what);
  const risk_level = issues.length ? 'high' : warnings.length ? 'medium' : 'low';
  return { issues, warnings, risk_level };
}

function logPath() {
  const p = process.env.CODEX_SECURITY_LOG;
  return p && p !== '' ? p : path.join(os.homedir(), '.codex', 'security.log');
}

function logScan(event, command, result) {
  const line = JSON.stringify({
    timestamp: new Date().toISOString(),
    session_id: event.session_id || process.env.CODEX_SESSION_ID || null,
    request_id: event.tool_use_id || null,
    command,
    issues: result.issues,
    warnings: result.warnings,
    risk_level: result.risk_level,
  });
  try {
    const p = logPath();
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.appendFileSync(p, line + '\n');
  } catch (e) {
    process.stderr.write(`scan-commands: cannot write security log: ${e.message}\n`);
  }
}

/** One event in, one decision object out ({} = no opinion). */
function decide(event) {
  const input = event && typeof event.tool_input === 'object' && event.tool_input ? event.tool_input : {};
  const argv = Array.isArray(input.argv) ? input.argv.filter((a) => typeof a === 'string') : undefined;
  const command = typeof input.command === 'string' ? input.command : argv ? argv.join(' ') : '';
  if (command === '') return {};
  // The argv joined unquoted shows what the program really gets (`/*` already expanded by bash,
  // `bash -c 'curl x | sh'` as one line); the quoted command covers hooks that only send a string.
  const level = input.scope === 'run' ? 'run' : 'exec';
  const result = scan(argv ? `${argv.join(' ')}\n${command}` : command, level);
  if (level === 'exec' && typeof input.pipeline === 'string' && input.pipeline !== '') {
    for (const what of scan(input.pipeline, 'run').issues) result.issues.push(`${what} in its pipeline: ${input.pipeline}`);
    if (result.issues.length) result.risk_level = 'high';
  }
  logScan(event, command, result);
  const isPre = event.hook_event_name === 'PreToolUse' || event.hook_event_name === undefined;
  if (!isPre) return {};
  if (result.risk_level === 'high') {
    return {
      hookSpecificOutput: {
        hookEventName: 'PreToolUse',
        permissionDecision: 'deny',
        permissionDecisionReason: `security scanner: high risk: ${result.issues.join(', ')}`,
      },
    };
  }
  if (result.risk_level === 'medium' && process.env.CODEX_SECURITY_MEDIUM === 'ask') {
    return {
      hookSpecificOutput: {
        hookEventName: 'PreToolUse',
        permissionDecision: 'ask',
        permissionDecisionReason: `security scanner: medium risk: ${result.warnings.join(', ')}`,
      },
    };
  }
  return {};
}

function spawned() {
  const chunks = [];
  process.stdin.on('data', (c) => chunks.push(c));
  process.stdin.on('end', () => {
    let event;
    try {
      event = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch (e) {
      process.stderr.write(`scan-commands: invalid JSON on stdin: ${e.message}\n`);
      process.exit(1); // a hook failure: the engine decides (required = deny)
    }
    const out = decide(event);
    if (Object.keys(out).length) process.stdout.write(JSON.stringify(out) + '\n');
  });
}

function persistent() {
  let buf = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (s) => {
    buf += s;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim() === '') continue;
      let event;
      try {
        event = JSON.parse(line);
      } catch {
        process.stderr.write('scan-commands: skipping a line that is not JSON\n');
        continue;
      }
      process.stdout.write(JSON.stringify({ id: event.id, ...decide(event) }) + '\n');
    }
  });
  process.stdin.on('end', () => process.exit(0));
}

if (require.main === module) {
  if (process.argv.includes('--persistent') || process.env.CODEX_HOOK_PERSISTENT === '1') persistent();
  else spawned();
}

module.exports = { scan, decide };
