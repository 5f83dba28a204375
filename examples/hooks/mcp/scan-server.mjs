#!/usr/bin/env node
// A stdio MCP server exposing the security scanner as the tool `scan_command`,
// for `type = "mcp_tool"` hooks. It answers "deny: ..." for high-risk commands
// (the engine's mcp_tool contract: text starting with deny/block denies) and
// "ok: ..." otherwise.
import { createRequire } from 'node:module';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

const require = createRequire(import.meta.url);
const { scan } = require('../security/scan-commands.cjs');

const server = new McpServer({ name: 'codex-security-scanner', version: '0.1.0' });
server.registerTool(
  'scan_command',
  {
    description: 'Scan a shell command for dangerous patterns',
    inputSchema: { command: z.string(), argv: z.array(z.string()).optional(), workdir: z.string().optional() },
  },
  async ({ command, argv }) => {
    const r = scan(argv ? `${argv.join(' ')}\n${command}` : command);
    const text = r.risk_level === 'high' ? `deny: high risk: ${r.issues.join(', ')}` : `ok: risk ${r.risk_level}${r.warnings.length ? ` (${r.warnings.join(', ')})` : ''}`;
    return { content: [{ type: 'text', text }] };
  },
);
await server.connect(new StdioServerTransport());
