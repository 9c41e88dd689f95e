import type { Command } from 'commander';
import { migrate, migrationStatus } from '../db/migrate.js';
import { applyRolePasswords } from '../db/roles.js';
import type { CliContext, CliDatabase } from './context.js';
import { formatTable, printResult } from './output.js';

export function registerDbCommands(program: Command, ctx: CliContext): void {
  const withAdmin = async <T>(fn: (db: CliDatabase) => Promise<T>): Promise<T> => {
    const db = await ctx.database();
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  };
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
      await withAdmin(async ({ adminSql }) => {
        const done = await applyRolePasswords(adminSql, ctx.rolePasswords());
        const rows = done.map((role) => ({ role, login: true, password: 'set (scram-sha-256 verifier)' }));
        printResult(opts.json, rows, () => formatTable(rows));
      });
    });
}
