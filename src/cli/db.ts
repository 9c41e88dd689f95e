import type { Command } from 'commander';
import { loadConfig } from '../config/index.js';
import { createLogger } from '../logging.js';
import { migrate, migrationStatus } from '../db/migrate.js';
import { applyRolePasswords } from '../db/roles.js';
import { prepareDatabase, rolePasswords } from '../entrypoints/context.js';
import { formatTable, printResult } from './output.js';

async function withAdmin<T>(fn: (ctx: Awaited<ReturnType<typeof prepareDatabase>>) => Promise<T>): Promise<T> {
  const config = loadConfig();
  // Operators' commands keep stdout for their result; logs go to stderr.
  const log = createLogger(config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL);
  const ctx = await prepareDatabase(config, log, null, { migrate: false, roles: false });
  try {
    return await fn(ctx);
  } finally {
    await ctx.adminSql.end({ timeout: 5 });
    await ctx.resolved.stop?.();
  }
}

export function registerDbCommands(program: Command): void {
  const db = program.command('db').description('database schema, roles and status');

  db.command('migrate')
    .description('apply pending migrations (safe to run from several processes at once)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withAdmin(async ({ adminSql }) => {
        const res = await migrate(adminSql, { log: (m) => !opts.json && process.stderr.write(m + '\n') });
        printResult(opts.json, res, () =>
          res.applied.length === 0
            ? `schema up to date (${res.alreadyApplied} migrations applied)`
            : formatTable(res.applied) + `\n${res.applied.length} applied, ${res.alreadyApplied} already applied`,
        );
      });
    });

  db.command('status')
    .description('list applied and pending migrations')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withAdmin(async ({ adminSql }) => {
        const status = await migrationStatus(adminSql);
        printResult(opts.json, status, () => formatTable(status));
        if (status.some((s) => s.state === 'changed')) process.exitCode = 1;
      });
    });

  db.command('roles')
    .description('give the application roles LOGIN and their passwords (sent as SCRAM verifiers)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const config = loadConfig();
      await withAdmin(async ({ adminSql }) => {
        const done = await applyRolePasswords(adminSql, rolePasswords(config));
        const rows = done.map((role) => ({ role, login: true, password: 'set (scram-sha-256 verifier)' }));
        printResult(opts.json, rows, () => formatTable(rows));
      });
    });
}
