// Operators' commands of issue 7: monitor, diagnose, maintenance, alarms, check-config, scaling.
// Thin wrappers: they take OpsDeps from the CLI's root (CliContext) and render what the services return.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { Config } from '../config/index.js';
import { redactUrl, type Logger } from '../logging.js';
import type { CliContext, CliOps } from './context.js';
import { collectMonitor, formatBytes, type MonitorReport } from '../ops/monitoring/monitor.js';
import { describeBackend, diagnose, signalBackend, type Diagnosis } from '../ops/monitoring/diagnose.js';
import { MAINTENANCE_KINDS, maintenanceHistory, runMaintenance, type MaintenanceKind, type MaintenanceResult } from '../ops/maintenance.js';
import { evaluateAlarms } from '../ops/monitoring/alarms/evaluate.js';
import type { AlarmEvaluation } from '../ops/monitoring/alarms/definitions.js';
import { alarmHistory } from '../repositories/monitoring.js';
import {
  SPEC_RAM_BYTES,
  SPEC_REDIS_RAM_BYTES,
  checkPostgresConfig,
  checkRedisConfig,
  parseConf,
  postgresProfile,
  redisProfile,
  type ConfigDifference,
  type ProfileParam,
  type RedisProfileKind,
} from '../ops/local/profiles.js';
import { scalingRecommendation } from '../ops/monitoring/scaling.js';
import { formatTable, printResult } from './output.js';

const OPS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../ops');

interface OpsContext extends CliOps {
  config: Config;
  log: Logger;
}

/**
 * Connections for an operations command, from the CLI's root: monitoring_user for statistics
 * (the owner when it cannot log in), the owner for maintenance and signalling backends, REDIS_URL
 * and CACHE_REDIS_URL in their configured topology; the same OpsDeps the jobs get.
 */
async function withOps<T>(ctx: CliContext, fn: (ops: OpsContext) => Promise<T>): Promise<T> {
  const ops = await ctx.ops();
  try {
    return await fn({ ...ops, config: ctx.config, log: ctx.log });
  } finally {
    await ops.close();
  }
}

function section(title: string, body: string): string {
  return `\n== ${title} ==\n${body}`;
}

function renderMonitor(r: MonitorReport): string {
  return [
    `AccuNode monitor at ${r.taken_at.toISOString()}: overall ${r.status}`,
    formatTable(r.figures.map((f) => ({ group: f.group, figure: f.name, value: f.value, unit: f.unit, status: f.status, threshold: f.threshold, note: f.note }))),
    section('connections by state', formatTable(r.connections_by_state)),
    section('queries running > 30 s', formatTable(r.long_running.map((q) => ({ pid: q.pid, database: q.database, user: q.user, seconds: q.duration_s, state: q.state, query: q.query.slice(0, 80) })))),
    section('largest tables', formatTable(r.largest_tables.map((t) => ({ table: t.table, total: formatBytes(t.total_bytes), table_size: formatBytes(t.table_bytes), indexes: formatBytes(t.indexes_bytes) })))),
  ].join('\n');
}

function renderDiagnosis(d: Diagnosis): string {
  const out: string[] = [];
  out.push(
    section(
      'most expensive statements (pg_stat_statements)',
      d.pg_stat_statements.available
        ? formatTable((d.expensive_statements ?? []).map((s) => ({ calls: s.calls, total_ms: s.total_ms, mean_ms: s.mean_ms, rows: s.rows, hit_percent: s.hit_percent, database: s.database, query: s.query.replace(/\s+/g, ' ').slice(0, 80) })))
        : `UNAVAILABLE: ${d.pg_stat_statements.reason}\nTo enable: ${d.pg_stat_statements.howToEnable}`,
    ),
  );
  out.push(section('sequential scans (missing-index candidates)', formatTable(d.seq_scan_tables)));
  out.push(section('connections by state', formatTable(d.connections_by_state)));
  out.push(section('connections active > 5 minutes', formatTable(d.active_over_5_minutes.map((q) => ({ pid: q.pid, database: q.database, user: q.user, seconds: q.duration_s, state: q.state, query: q.query.slice(0, 80) })))));
  out.push(
    section(
      'blocked / blocking',
      formatTable(d.blocked.map((b) => ({ blocked_pid: b.blocked_pid, blocked_for_s: b.blocked_for_s, blocked_statement: b.blocked_statement.slice(0, 60), blocking_pid: b.blocking_pid, blocking_state: b.blocking_state, blocking_statement: b.blocking_statement.slice(0, 60) }))) +
        (d.blocked.length ? '\n(act on a blocker: accunode diagnose --pid N --cancel|--terminate)' : ''),
    ),
  );
  out.push(section('table bloat', formatTable(d.table_bloat.filter((t) => t.size_bytes > 0 || t.dead_rows > 0).map((t) => ({ table: t.table, size: formatBytes(t.size_bytes), live_rows: t.live_rows, dead_rows: t.dead_rows, bloat_percent: t.bloat_percent, source: t.source })))));
  out.push(section('index bloat', formatTable(d.index_bloat.filter((i) => i.size_bytes > 8192).map((i) => ({ index: i.index, size: formatBytes(i.size_bytes), bloat_percent: i.bloat_percent, source: i.source })))));
  out.push(section('unused indexes (idx_scan = 0; constraint indexes left out)', formatTable(d.unused_indexes.map((u) => ({ index: u.index, table: u.table, size: formatBytes(u.size_bytes), stats_since: u.stats_since })))));
  for (const r of d.redis) {
    out.push(section(`${r.target}: memory by key family (${r.key_families.method})`, formatTable(r.key_families.families.map((f) => ({ family: f.family, keys: f.keys, sampled: f.sampled, avg: formatBytes(f.avg_bytes), estimated: formatBytes(f.estimated_bytes), with_ttl_percent: f.with_ttl_percent })))));
    out.push(section(`${r.target}: slowlog`, formatTable(r.slowlog)));
    out.push(
      section(
        `${r.target}: clients, evictions, memory`,
        formatTable([
          { figure: 'clients', value: `${r.clients.connected} of ${r.clients.maxclients ?? '?'} (${r.clients.percent ?? '?'} %)`, warning: r.clients.warning },
          { figure: 'evicted keys', value: `${r.evictions.evicted_keys} (policy ${r.evictions.policy})`, warning: r.evictions.warning },
          { figure: 'memory', value: `${formatBytes(r.memory.used)} of ${r.memory.maxmemory ? formatBytes(r.memory.maxmemory) : 'no limit'}`, warning: r.memory.warning },
        ]),
      ),
    );
  }
  return out.join('\n').trimStart();
}

function renderMaintenance(r: MaintenanceResult): string {
  return [
    `maintenance ${r.kind}${r.dry_run ? ' (dry run: nothing changed)' : ''}: ${r.outcome}, run #${r.id}, ${r.rows_affected} rows affected${r.error ? `\n${r.error}` : ''}`,
    formatTable(r.steps.map((s) => ({ step: s.step, outcome: s.outcome, rows: s.rows, ms: s.duration_ms, detail: typeof s.detail === 'string' ? s.detail : JSON.stringify(s.detail).slice(0, 160) }))),
  ].join('\n');
}

function renderAlarms(e: AlarmEvaluation): string {
  return [
    `alarms at ${e.evaluated_at.toISOString()} (period ${e.period_s === null ? 'n/a: first evaluation' : `${e.period_s} s${e.period_closed ? '' : ', not yet a full period'}`}): ${e.firing.length ? `FIRING: ${e.firing.join(', ')}` : 'none firing'}`,
    formatTable(e.alarms.map((a) => ({ alarm: a.name, state: a.state, was: a.previous_state, value: a.value, threshold: a.threshold, unit: a.unit, condition: a.condition, reason: a.reason }))),
    e.notifications.length ? section('webhook', formatTable(e.notifications)) : '',
  ].join('\n');
}

function renderDiffs(title: string, diffs: ConfigDifference[]): string {
  const bad = diffs.filter((d) => d.status !== 'ok');
  return `${title}: ${bad.length === 0 ? `matches the profile (${diffs.length} parameters)` : `${bad.length} of ${diffs.length} parameters differ`}\n${formatTable(bad.length ? bad : diffs)}`;
}

async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

function pgProfileFrom(opts: { profile?: string; ramGb?: string }): { params: ProfileParam[]; label: string } {
  if (opts.ramGb) {
    const gb = Number(opts.ramGb);
    if (!(gb > 0)) throw new Error('--ram-gb must be a positive number');
    return { params: postgresProfile(Math.round(gb * 1024 ** 3)), label: `profile sized for ${gb} GB of RAM` };
  }
  const file = opts.profile ?? path.join(OPS_DIR, 'postgres/postgresql.conf');
  const parsed = parseConf(readFileSync(file, 'utf8'), 'pg');
  const reasons = new Map(postgresProfile(SPEC_RAM_BYTES).map((p) => [p.name, p.reason]));
  return { params: [...parsed].map(([name, value]) => ({ name, value, reason: reasons.get(name) ?? `set in ${path.basename(file)}` })), label: file };
}

function redisProfileFrom(kind: RedisProfileKind, opts: { profile?: string; ramGb?: string }): { params: ProfileParam[]; label: string } {
  if (opts.ramGb) return { params: redisProfile(kind, Math.round(Number(opts.ramGb) * 1024 ** 3)), label: `${kind} profile sized for ${opts.ramGb} GB` };
  const file = opts.profile ?? path.join(OPS_DIR, `redis/${kind}.conf`);
  const parsed = parseConf(readFileSync(file, 'utf8'), 'redis');
  const reasons = new Map(redisProfile(kind, SPEC_REDIS_RAM_BYTES).map((p) => [p.name, p.reason]));
  return { params: [...parsed].map(([name, value]) => ({ name, value, reason: reasons.get(name) ?? `set in ${path.basename(file)}` })), label: file };
}

export function registerOpsCommands(program: Command, ctx: CliContext): void {
  program
    .command('monitor')
    .description('PostgreSQL and Redis health figures against their thresholds (OK / WARN / ALARM)')
    .option('--watch [seconds]', 'refresh every N seconds (default 5) until Ctrl-C')
    .option('--json', 'print JSON')
    .action(async (opts: { watch?: string | boolean; json?: boolean }) => {
      await withOps(ctx, async ({ deps, identity }) => {
        const every = opts.watch === undefined || opts.watch === false ? 0 : opts.watch === true ? 5 : Number(opts.watch);
        for (;;) {
          const r = await collectMonitor(deps);
          if (every > 0 && !opts.json) process.stdout.write('\x1b[2J\x1b[H');
          printResult(opts.json, { ...r, read_as: identity }, () => renderMonitor(r) + `\n(statistics read as ${identity})`);
          if (!every) {
            if (r.status === 'ALARM') process.exitCode = 2;
            return;
          }
          await new Promise((res) => setTimeout(res, Math.max(0, every * 1000 - 1000)));
        }
      });
    });

  program
    .command('diagnose')
    .description('the troubleshooting report: expensive statements, scans, locks, bloat, unused indexes, Redis memory by key family')
    .option('--pid <pid>', 'a backend to act on (see "blocked / blocking")')
    .option('--cancel', 'cancel its running statement (pg_cancel_backend)')
    .option('--terminate', 'end its connection (pg_terminate_backend)')
    .option('--yes', 'do not ask for confirmation')
    .option('--json', 'print JSON')
    .action(async (opts: { pid?: string; cancel?: boolean; terminate?: boolean; yes?: boolean; json?: boolean }) => {
      await withOps(ctx, async ({ deps, adminSql, identity }) => {
        if (opts.pid !== undefined) {
          const pid = Number(opts.pid);
          if (!Number.isInteger(pid) || pid <= 0) throw new Error('--pid needs a process id');
          if (!!opts.cancel === !!opts.terminate) throw new Error('--pid needs exactly one of --cancel or --terminate');
          const action = opts.cancel ? 'cancel' : 'terminate';
          const target = await describeBackend(deps.sql, pid);
          if (!target) throw new Error(`no client backend with pid ${pid}`);
          process.stderr.write(formatTable([{ ...target, query: target.query.slice(0, 100) }]) + '\n');
          if (!opts.yes && !(await confirm(`${action} backend ${pid}${target.blocking.length ? ` (it blocks ${target.blocking.join(', ')})` : ''}? [y/N] `))) {
            process.stderr.write('not confirmed (use --yes when not on a terminal); nothing done\n');
            process.exitCode = 1;
            return;
          }
          const res = await signalBackend(adminSql, pid, action);
          printResult(opts.json, res, () => `${action} sent to backend ${pid}`);
          return;
        }
        const d = await diagnose(deps);
        printResult(opts.json, { ...d, read_as: identity }, () => renderDiagnosis(d) + `\n\n(statistics read as ${identity})`);
      });
    });

  const maint = program.command('maintenance').description('routine database maintenance (the scheduler runs the same jobs)');
  maint
    .command('run <kind>')
    .description(`run the ${MAINTENANCE_KINDS.join(' | ')} tasks (as the owner; one run at a time)`)
    .option('--dry-run', 'show what would change; change nothing')
    .option('--json', 'print JSON')
    .action(async (kind: string, opts: { dryRun?: boolean; json?: boolean }) => {
      if (!(MAINTENANCE_KINDS as readonly string[]).includes(kind)) throw new Error(`kind must be one of ${MAINTENANCE_KINDS.join(', ')}`);
      await withOps(ctx, async ({ deps, adminSql, config, log }) => {
        const r = await runMaintenance({ adminSql, redis: deps.redis, ...(deps.cacheRedis ? { cacheRedis: deps.cacheRedis } : {}), config, log, uploadDir: ctx.uploadDir() }, kind as MaintenanceKind, { dryRun: opts.dryRun });
        printResult(opts.json, r, () => renderMaintenance(r));
        if (r.outcome !== 'succeeded') process.exitCode = 1;
      });
    });
  maint
    .command('history')
    .description('past maintenance runs')
    .option('--limit <n>', 'how many', '20')
    .option('--json', 'print JSON')
    .action(async (opts: { limit: string; json?: boolean }) => {
      await withOps(ctx, async ({ deps }) => {
        const rows = await maintenanceHistory(deps.sql, { limit: Number(opts.limit) || 20 });
        printResult(opts.json, rows, () => formatTable(rows.map(({ steps, ...r }) => ({ ...r, steps: steps.map((s) => `${s.step}:${s.outcome}`).join(' ') }))));
      });
    });

  program
    .command('alarms')
    .description('evaluate the alarms now (exit code 2 while any fires); --history lists transitions')
    .option('--history', 'list stored transitions instead of evaluating')
    .option('--json', 'print JSON')
    .action(async (opts: { history?: boolean; json?: boolean }) => {
      await withOps(ctx, async ({ deps }) => {
        if (opts.history) {
          const rows = await alarmHistory(deps.sql);
          printResult(opts.json, rows, () => formatTable(rows));
          return;
        }
        const e = await evaluateAlarms(deps);
        printResult(opts.json, e, () => renderAlarms(e));
        if (e.firing.length > 0) process.exitCode = 2;
      });
    });

  const db = program.commands.find((c) => c.name() === 'db') ?? program.command('db');
  db.command('check-config')
    .description('compare the live PostgreSQL settings with ops/postgres/postgresql.conf')
    .option('--profile <file>', 'another profile file')
    .option('--ram-gb <n>', 'compare with the profile sized for this much RAM')
    .option('--json', 'print JSON')
    .action(async (opts: { profile?: string; ramGb?: string; json?: boolean }) => {
      await withOps(ctx, async ({ deps, config }) => {
        const p = pgProfileFrom(opts);
        const diffs = await checkPostgresConfig(deps.sql, p.params);
        const url = config.DATABASE_MONITOR_URL ?? config.DATABASE_ADMIN_URL;
        printResult(opts.json, { profile: p.label, differences: diffs.filter((d) => d.status !== 'ok'), checked: diffs.length }, () =>
          renderDiffs(`PostgreSQL${url ? ` ${redactUrl(url)}` : ''} vs ${p.label}`, diffs),
        );
        if (diffs.some((d) => d.status !== 'ok')) process.exitCode = 1;
      });
    });

  const redisCmd = program.command('redis').description('Redis operations');
  redisCmd
    .command('check-config')
    .description('compare the live Redis settings with ops/redis/queue.conf (REDIS_URL) and cache.conf (CACHE_REDIS_URL)')
    .option('--profile <kind>', 'cache or queue: compare REDIS_URL with this profile')
    .option('--ram-gb <n>', 'compare with the profile sized for this much RAM')
    .option('--json', 'print JSON')
    .action(async (opts: { profile?: string; ramGb?: string; json?: boolean }) => {
      await withOps(ctx, async ({ deps }) => {
        const checks: Array<{ target: string; profile: string; differences: ConfigDifference[]; all: ConfigDifference[] }> = [];
        const kind: RedisProfileKind = opts.profile === 'cache' ? 'cache' : 'queue';
        const main = redisProfileFrom(kind, opts);
        const all = await checkRedisConfig(deps.redis, main.params);
        checks.push({ target: 'REDIS_URL', profile: main.label, differences: all.filter((d) => d.status !== 'ok'), all });
        if (deps.cacheRedis && !opts.profile) {
          const c = redisProfileFrom('cache', opts);
          const callAll = await checkRedisConfig(deps.cacheRedis, c.params);
          checks.push({ target: 'CACHE_REDIS_URL', profile: c.label, differences: callAll.filter((d) => d.status !== 'ok'), all: callAll });
        }
        printResult(
          opts.json,
          checks.map(({ all, ...c }) => ({ ...c, checked: all.length })),
          () =>
            checks.map((c) => renderDiffs(`${c.target} vs ${c.profile}`, c.all)).join('\n\n') +
            (deps.cacheRedis ? '' : '\n(one shared Redis: it keeps the queue profile, noeviction; cache writes refused for memory are skipped)'),
        );
        if (checks.some((c) => c.differences.length > 0)) process.exitCode = 1;
      });
    });

  program
    .command('scaling')
    .description('scaling recommendations')
    .command('recommend')
    .description("the spec's scale-up / scale-down / read-replica triggers on the samples of the alarms job")
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withOps(ctx, async ({ deps }) => {
        const r = await scalingRecommendation(deps.sql);
        printResult(opts.json, r, () => `${r.summary}\n${formatTable(r.figures)}`);
      });
    });
}
