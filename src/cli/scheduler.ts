/**
 * `accunode worker`, `accunode scheduler` and `accunode scheduler list [--json]`. The roles
 * are loaded by the CLI's root when the command runs (ctx.runRole), so listing the schedule needs no Redis and a
 * worker process never loads the HTTP stack through these commands.
 */
import type { Command } from 'commander';
import { describeSchedule } from '../jobs/schedule.js';
import type { CliContext } from './context.js';
import { formatTable, printResult } from './output.js';

export function registerWorkerCommands(program: Command, ctx: CliContext): void {
  program
    .command('worker')
    .description('run BullMQ workers: bulk uploads, analytics, maintenance, backups (WORKER_QUEUES)')
    .action(() => ctx.runRole('worker'));
}

export function registerSchedulerCommands(program: Command, ctx: CliContext): void {
  const scheduler = program
    .command('scheduler')
    .description('run the job schedulers (the "beat"): maintenance, backups, alarms; UTC')
    .action(() => ctx.runRole('scheduler'));
  scheduler
    .command('list')
    .description('print the schedule (UTC) with each job\'s next run')
    .option('--json', 'print JSON')
    .option('--at <iso>', 'compute next runs from this instant instead of now')
    .action((opts: { json?: boolean; at?: string }) => {
      const now = opts.at ? new Date(opts.at) : new Date();
      if (Number.isNaN(now.getTime())) throw new Error(`--at must be an ISO date, got "${opts.at}"`);
      const rows = describeSchedule(now);
      printResult(opts.json, rows, () => formatTable(rows, ['id', 'job', 'queue', 'pattern', 'when', 'next_run', 'what']));
    });
}
