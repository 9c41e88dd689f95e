/**
 * `accunode worker`, `accunode scheduler` and `accunode scheduler list [--json]`. The role
 * entrypoints are imported when the command runs, so listing the schedule needs no Redis and a
 * worker process never loads the HTTP stack through these commands.
 */
import type { Command } from 'commander';
import { describeSchedule } from '../jobs/schedule.js';
import { formatTable, printResult } from './output.js';

export function registerWorkerCommands(program: Command): void {
  program
    .command('worker')
    .description('run BullMQ workers: bulk uploads, analytics, maintenance, backups (WORKER_QUEUES)')
    .action(async () => {
      const { runWorker } = await import('../entrypoints/worker.js');
      await runWorker();
    });
}

export function registerSchedulerCommands(program: Command): void {
  const scheduler = program
    .command('scheduler')
    .description('run the job schedulers (the "beat"): maintenance, backups, alarms; UTC')
    .action(async () => {
      const { runScheduler } = await import('../entrypoints/scheduler.js');
      await runScheduler();
    });
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
