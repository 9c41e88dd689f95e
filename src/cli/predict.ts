/**
 * `accunode predict bulk FILE --type annual|quarterly --as USER`: the bulk pipeline in-process
 * (the same code the worker runs), with a progress bar on stderr.
 */
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import type { Sql } from '../db/pool.js';
import { ACCESS_LEVELS, type AccessLevel, type Role } from '../domain/access.js';
import type { Principal } from '../domain/principal.js';
import { DomainError } from '../domain/errors.js';
import { runBulkJob, type BulkProgress } from '../services/bulk/pipeline.js';
import { BulkUploadService } from '../services/bulk/service.js';
import { userForCommand } from '../repositories/users.js';
import { configuredLimits } from '../services/bulk/readers.js';
import type { CliContext } from './context.js';
import { formatTable, printResult } from './output.js';

/** A user by id or e-mail, looked up on the owner connection (the CLI is an operator tool). */
async function principalFor(adminSql: Sql, who: string): Promise<Principal> {
  const u = await userForCommand(adminSql, who);
  if (!u) throw new Error(`--as: no user with id or e-mail "${who}"`);
  if (!u.is_active) throw new Error(`--as: user "${who}" is not active`);
  return { userId: u.id, role: u.role as Role, tenantId: u.tenant_id, organizationId: u.organization_id };
}

export function registerPredictCommands(program: Command, ctx: CliContext): void {
  const predict = program.command('predict').description('predictions from the command line');
  predict
    .command('bulk <file>')
    .description('run a CSV/XLSX bulk upload in-process, as a user (row-level security applies)')
    .requiredOption('--type <type>', 'annual or quarterly')
    .requiredOption('--as <user>', 'the uploader: user id or e-mail')
    .option('--access-level <level>', `scope of new companies and predictions (${ACCESS_LEVELS.join(', ')}); default by role`)
    .option('--errors-out <file>', 'write the row errors as CSV to this file')
    .option('--chunk-rows <n>', 'rows per chunk (default BULK_CHUNK_ROWS)')
    .option('--no-progress', 'no progress bar')
    .option('--json', 'print the final job as JSON')
    .action(async (file: string, opts: { type: string; as: string; accessLevel?: string; errorsOut?: string; chunkRows?: string; progress: boolean; json?: boolean }) => {
      if (opts.type !== 'annual' && opts.type !== 'quarterly') throw new Error(`--type must be annual or quarterly, got "${opts.type}"`);
      if (opts.accessLevel && !(ACCESS_LEVELS as readonly string[]).includes(opts.accessLevel))
        throw new Error(`--access-level must be one of ${ACCESS_LEVELS.join(', ')}`);
      const chunkRows = opts.chunkRows ? Number(opts.chunkRows) : undefined;
      if (chunkRows !== undefined && !(Number.isInteger(chunkRows) && chunkRows >= 10)) throw new Error('--chunk-rows must be an integer >= 10');
      const config = ctx.config;
      const log = ctx.log;
      const closers: Array<() => Promise<unknown>> = [];
      try {
        const db = await ctx.database();
        closers.unshift(() => db.close());
        const sql = ctx.appPool(db.appUrl, 'accunode-cli');
        closers.unshift(() => sql.end({ timeout: 5 }));
        // What the api and the worker serve: the registry's champion, or the shipped file.
        const engine = await ctx.engine(sql);
        const principal = await principalFor(db.adminSql, opts.as);
        // The job runs here (no queue): the service records it, and reads it back and its errors.
        const uploads = new BulkUploadService({ sql, uploadDir: ctx.uploadDir(), log });
        let job;
        try {
          job = await uploads.record(principal, { kind: opts.type, filePath: file, accessLevel: (opts.accessLevel as AccessLevel | undefined) ?? null });
        } catch (err) {
          if (err instanceof DomainError) throw new Error(err.message);
          throw err;
        }
        const showBar = opts.progress && !opts.json && process.stderr.isTTY !== false;
        const bar = showBar
          ? new cliProgress.SingleBar(
              { format: 'bulk {bar} {percentage}% | {value}/{total} rows | {rate} rows/s | failed {failed}', stream: process.stderr, hideCursor: true },
              cliProgress.Presets.shades_classic,
            )
          : null;
        const started = Date.now();
        bar?.start(1, 0, { rate: 0, failed: 0 });
        const onProgress = (p: BulkProgress) => {
          if (!bar) return;
          const total = Math.max(p.rows_total ?? p.rows_processed, p.rows_processed, 1);
          bar.setTotal(total);
          bar.update(p.rows_processed, { rate: Math.round(p.rows_processed / Math.max(0.001, (Date.now() - started) / 1000)), failed: p.rows_failed });
        };
        const outcome = await runBulkJob({ sql, engine, log }, principal.userId, job.id, {
          onProgress,
          limits: configuredLimits(config),
          chunkRows: chunkRows ?? config.BULK_CHUNK_ROWS,
          minRatios: config.PREDICTION_MIN_RATIOS,
        });
        bar?.stop();
        const final = await uploads.get(principal, job.id);
        if (opts.errorsOut) {
          // pipeline: a file that cannot be written (full disk, read-only) fails the command
          // with its error instead of an unhandled 'error' event.
          const { lines } = await uploads.errorsCsv(principal, job.id);
          await pipeline(Readable.from(lines), createWriteStream(opts.errorsOut));
        }
        printResult(opts.json, final, () =>
          formatTable([final], ['id', 'status', 'rows_processed', 'rows_succeeded', 'rows_failed', 'rows_superseded', 'throughput_rows_per_second']) +
          (final.error_message ? `\nerror: ${final.error_message}` : '') +
          (final.rows_failed > 0 && !opts.errorsOut ? `\n${final.rows_failed} rows were rejected; --errors-out FILE writes them as CSV` : ''),
        );
        if (outcome.status !== 'completed') process.exitCode = 1;
      } finally {
        for (const close of closers) await close().catch(() => {});
      }
    });
}
