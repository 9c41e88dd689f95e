#!/usr/bin/env node
import { Command } from 'commander';
import { ConfigError, describeConfig } from '../config/index.js';
import { MissingServiceError } from '../ops/local/services.js';
import { registerDbCommands } from '../cli/db.js';
import { registerModelCommands } from '../cli/model.js';
import { registerOpsCommands } from '../cli/ops.js';
import { registerIdentityCommands, UsageError } from '../cli/identity.js';
import { registerPredictCommands } from '../cli/predict.js';
import { registerSchedulerCommands, registerWorkerCommands } from '../cli/scheduler.js';
import { formatTable, printResult } from '../cli/output.js';
import { registerBackupCommands } from '../cli/backup.js';
import { registerDrCommands } from '../cli/dr.js';
import { createCliContext } from './cli-context.js';

// The CLI's composition root: every command takes its configuration and connections from here.
const ctx = createCliContext();
const program = new Command();
program
  .name('accunode')
  .description('AccuNode: corporate default-risk predictions on PostgreSQL + Redis')
  .version('0.1.0')
  .showHelpAfterError();

program
  .command('up')
  .description('migrate, set up roles, seed a demo tenant on an empty database, and run the api (+ worker + scheduler)')
  .action(async () => {
    await (await import('./up.js')).runUp();
  });

program
  .command('api')
  .description('run the HTTP API only (expects a migrated database)')
  .action(async () => {
    await (await import('./up.js')).runUp({ prepare: false });
  });

program
  .command('config')
  .description('list the configuration variables')
  .option('--json', 'print JSON')
  .action((opts: { json?: boolean }) => {
    const rows = describeConfig();
    printResult(opts.json, rows, () => formatTable(rows));
  });

registerDbCommands(program, ctx);
registerModelCommands(program, ctx);
registerOpsCommands(program, ctx);
registerIdentityCommands(program, ctx);
registerPredictCommands(program, ctx);
registerWorkerCommands(program, ctx);
registerSchedulerCommands(program, ctx);
registerBackupCommands(program, ctx);
registerDrCommands(program, ctx);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof ConfigError || err instanceof MissingServiceError || err instanceof UsageError) {
    process.stderr.write(err.message + '\n');
    process.exit(2);
  }
  process.stderr.write(`accunode: ${(err as Error).message}\n`);
  process.exit(1);
}
