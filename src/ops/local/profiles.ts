// Configuration profiles (ops/postgres/postgresql.conf, ops/redis/{cache,queue}.conf) rendered
// from the spec's parameter groups, memory sized from RAM, and the checks that compare a live
// server with a profile (`accunode db check-config`, `accunode redis check-config`).
import type { Redis } from 'ioredis';
import type { Sql } from '../../db/pool.js';
import { configAll } from '../monitoring/redis.js';

const KB = 1024;
const MB = 1024 * KB;
const GB = 1024 * MB;

/** Memory as PostgreSQL/Redis write it: the largest unit that divides it exactly. */
function formatMemory(bytes: number, style: 'pg' | 'redis' = 'pg'): string {
  const units: Array<[number, string, string]> = [
    [GB, 'GB', 'gb'],
    [MB, 'MB', 'mb'],
    [KB, 'kB', 'kb'],
  ];
  for (const [size, pg, redis] of units) if (bytes % size === 0 && bytes >= size) return `${bytes / size}${style === 'pg' ? pg : redis}`;
  return String(bytes);
}

/** For comments: 16.88 GB. */
function humanGb(bytes: number): string {
  return `${Math.round((bytes / GB) * 100) / 100} GB`;
}

function floorTo(bytes: number, unit: number): number {
  return Math.max(unit, Math.floor(bytes / unit) * unit);
}

interface PostgresSizing {
  shared_buffers: string;
  effective_cache_size: string;
  maintenance_work_mem: string;
  work_mem: string;
  wal_buffers: string;
}

/**
 * The spec's sizing for db.r6g.xlarge (32 GB): shared_buffers 25 % of RAM (8GB),
 * effective_cache_size 75 % (24GB), maintenance_work_mem RAM/16 capped at 2GB, work_mem RAM/512
 * (64MB: 200 connections each sorting at once stay well inside RAM), wal_buffers 16MB (the
 * maximum that helps; less below 512 MB of shared_buffers, as PostgreSQL's own -1 rule).
 */
export function sizePostgres(ramBytes: number): PostgresSizing {
  if (!(ramBytes >= 256 * MB)) throw new RangeError('RAM must be at least 256 MB');
  const shared = floorTo(ramBytes / 4, MB);
  return {
    shared_buffers: formatMemory(shared),
    effective_cache_size: formatMemory(floorTo((ramBytes * 3) / 4, MB)),
    maintenance_work_mem: formatMemory(Math.min(2 * GB, floorTo(ramBytes / 16, MB))),
    work_mem: formatMemory(Math.max(4 * MB, floorTo(ramBytes / 512, MB))),
    wal_buffers: formatMemory(Math.min(16 * MB, Math.max(64 * KB, floorTo(shared / 32, 64 * KB)))),
  };
}

export interface ProfileParam {
  name: string;
  value: string;
  /** Why this value (printed with a difference). */
  reason: string;
}

export const SPEC_RAM_BYTES = 32 * GB;

export function postgresProfile(ramBytes: number, opts: { preload?: string[] } = {}): ProfileParam[] {
  const s = sizePostgres(ramBytes);
  const ram = humanGb(ramBytes);
  const preload = (opts.preload ?? ['pg_stat_statements', 'pg_cron']).join(',');
  return [
    { name: 'shared_preload_libraries', value: preload, reason: 'pg_stat_statements feeds diagnose and the slow-query alarm; pg_cron as in the spec (in-database jobs)' },
    { name: 'max_connections', value: '200', reason: 'the spec; the connections alarm fires at 80 % (160)' },
    { name: 'shared_buffers', value: s.shared_buffers, reason: `25 % of RAM (${ram})` },
    { name: 'effective_cache_size', value: s.effective_cache_size, reason: `75 % of RAM (${ram})` },
    { name: 'maintenance_work_mem', value: s.maintenance_work_mem, reason: 'RAM/16, at most 2GB (VACUUM, CREATE INDEX)' },
    { name: 'work_mem', value: s.work_mem, reason: 'RAM/512: 200 connections sorting at once stay inside RAM' },
    { name: 'random_page_cost', value: '1.1', reason: 'SSD storage' },
    { name: 'effective_io_concurrency', value: '200', reason: 'SSD storage' },
    { name: 'max_worker_processes', value: '8', reason: 'the spec' },
    { name: 'max_parallel_workers_per_gather', value: '4', reason: 'the spec' },
    { name: 'max_parallel_workers', value: '8', reason: 'the spec' },
    { name: 'wal_buffers', value: s.wal_buffers, reason: 'the spec (16MB); smaller with small shared_buffers' },
    { name: 'checkpoint_completion_target', value: '0.9', reason: 'spread checkpoint I/O' },
    { name: 'checkpoint_timeout', value: '10min', reason: 'the spec' },
    { name: 'max_wal_size', value: '4GB', reason: 'the spec' },
    { name: 'min_wal_size', value: '1GB', reason: 'the spec' },
    { name: 'log_statement', value: 'mod', reason: 'log all DDL/DML (role passwords are sent as SCRAM verifiers, never in clear)' },
    { name: 'log_min_duration_statement', value: '1000', reason: 'log statements slower than 1 s' },
    { name: 'log_checkpoints', value: 'on', reason: 'the spec' },
    { name: 'log_connections', value: 'on', reason: 'the spec' },
    { name: 'log_disconnections', value: 'on', reason: 'the spec' },
    { name: 'log_lock_waits', value: 'on', reason: 'the spec: lock waits longer than deadlock_timeout' },
    { name: 'ssl', value: 'on', reason: 'encrypted connections (the spec); needs server.crt/server.key' },
    { name: 'password_encryption', value: 'scram-sha-256', reason: 'no MD5 verifiers' },
  ];
}

export function renderPostgresConf(ramBytes: number, opts: { preload?: string[] } = {}): string {
  const lines = [
    '# AccuNode PostgreSQL profile: the infrastructure spec\'s parameter group (accunode-postgres-params-prod).',
    `# Generated by renderPostgresConf() for ${humanGb(ramBytes)} of RAM: memory settings scale with RAM`,
    '# (accunode db check-config --ram-gb N compares a server of another size).',
    '# Include it from postgresql.conf (include = \'/path/to/this/file\') or copy the lines; ssl = on needs',
    '# server.crt and server.key in the data directory (or ssl_cert_file/ssl_key_file).',
    '',
  ];
  for (const p of postgresProfile(ramBytes, opts)) {
    const v = /^[0-9.]+$/.test(p.value) ? p.value : `'${p.value}'`;
    lines.push(`${p.name} = ${v}`.padEnd(47) + ` # ${p.reason}`);
  }
  return lines.join('\n') + '\n';
}

/** name = value lines (quotes removed, comments dropped). */
export function parseConf(text: string, style: 'pg' | 'redis'): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    if (style === 'pg') {
      const m = /^([a-zA-Z_.]+)\s*=?\s*('(?:[^']|'')*'|[^#\s]+)/.exec(line);
      if (m) out.set(m[1]!, m[2]!.startsWith("'") ? m[2]!.slice(1, -1).replace(/''/g, "'") : m[2]!);
    } else {
      const m = /^([a-z0-9-]+)\s+(.*)$/.exec(line);
      if (m) out.set(m[1]!, m[2]!.replace(/^"(.*)"$/, '$1'));
    }
  }
  return out;
}

export interface ConfigDifference {
  parameter: string;
  expected: string;
  actual: string;
  status: 'ok' | 'differs' | 'pending_restart' | 'unknown';
  reason: string;
}

const MEM_UNITS: Record<string, number> = { B: 1, kB: KB, MB, GB, TB: 1024 * GB, '8kB': 8 * KB, '16MB': 16 * MB };
const TIME_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/** A profile value in the parameter's base unit (bytes or ms), or null when not a quantity. */
export function toBase(value: string, unit: string | null): number | null {
  const m = /^(-?\d+(?:\.\d+)?)\s*([a-zA-Z]+)?$/.exec(value.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const u = m[2];
  if (unit && unit in MEM_UNITS) return n * (u ? (MEM_UNITS[u] ?? NaN) : MEM_UNITS[unit]!);
  if (unit && unit in TIME_UNITS) return n * (u ? (TIME_UNITS[u] ?? NaN) : TIME_UNITS[unit]!);
  return u ? null : n;
}

function normBool(v: string): string | null {
  const x = v.trim().toLowerCase();
  if (['on', 'true', 'yes', '1'].includes(x)) return 'on';
  if (['off', 'false', 'no', '0'].includes(x)) return 'off';
  return null;
}

function libs(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim().replace(/^"|"$/g, ''))
    .filter(Boolean);
}

/**
 * Compares the live server (pg_settings, readable by pg_monitor) with a profile. A value changed
 * with ALTER SYSTEM or in a file and awaiting a restart shows as pending_restart.
 */
export async function checkPostgresConfig(sql: Sql, profile: ProfileParam[]): Promise<ConfigDifference[]> {
  const rows = await sql<{ name: string; setting: string; unit: string | null; vartype: string; pending_restart: boolean }[]>`
    select name, setting, unit, vartype, pending_restart from pg_settings where name = any(${profile.map((p) => p.name)})`;
  const live = new Map(rows.map((r) => [r.name, r]));
  return profile.map((p) => {
    const r = live.get(p.name);
    if (!r) return { parameter: p.name, expected: p.value, actual: '(not a setting of this server)', status: 'unknown', reason: p.reason };
    let same: boolean;
    let actual = r.setting;
    if (p.name === 'shared_preload_libraries') {
      const have = libs(r.setting);
      const missing = libs(p.value).filter((l) => !have.includes(l));
      same = missing.length === 0;
      actual = r.setting || "''";
      if (!same) return withPending({ parameter: p.name, expected: p.value, actual, status: 'differs', reason: `${missing.join(', ')} not preloaded (a restart is needed after changing it): ${p.reason}` }, r.pending_restart);
    } else if (r.vartype === 'bool') {
      same = normBool(p.value) === normBool(r.setting);
    } else if (r.vartype === 'integer' || r.vartype === 'real') {
      const want = toBase(p.value, r.unit);
      const have = toBase(r.setting, r.unit);
      same = want !== null && have !== null && Math.abs(want - have) <= Math.abs(want) * 1e-9;
      if (r.unit && have !== null) actual = r.unit in MEM_UNITS ? formatMemory(have) : `${have}ms`;
    } else {
      same = p.value.toLowerCase() === r.setting.toLowerCase();
    }
    return withPending({ parameter: p.name, expected: p.value, actual, status: same ? 'ok' : 'differs', reason: p.reason }, r.pending_restart);
  });
}

function withPending(d: ConfigDifference, pending: boolean): ConfigDifference {
  if (!pending) return d;
  return { ...d, status: 'pending_restart', reason: `changed in a configuration file or by ALTER SYSTEM, waiting for a restart; ${d.reason}` };
}

// ---------------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------------

export type RedisProfileKind = 'cache' | 'queue';

/** The spec's node (cache.r6g.large): 16.88 GB. */
export const SPEC_REDIS_RAM_BYTES = Math.round(16.88 * GB);

/**
 * maxmemory: 75 % of the node's RAM, the rest left for fork (AOF rewrite, replication), buffers
 * and fragmentation (ElastiCache's reserved-memory-percent default is 25 %).
 */
function redisMaxmemory(ramBytes: number): number {
  return floorTo(ramBytes * 0.75, MB);
}

export function redisProfile(kind: RedisProfileKind, ramBytes: number): ProfileParam[] {
  const common: ProfileParam[] = [
    { name: 'maxmemory', value: formatMemory(redisMaxmemory(ramBytes), 'redis'), reason: `75 % of RAM (${humanGb(ramBytes)}); the rest for forks, buffers and fragmentation` },
    { name: 'tcp-keepalive', value: '300', reason: 'the spec' },
    // Redis 7 names of the spec's *-ziplist-* parameters (the old names are aliases).
    { name: 'hash-max-listpack-entries', value: '512', reason: 'the spec (hash-max-ziplist-entries)' },
    { name: 'hash-max-listpack-value', value: '64', reason: 'the spec (hash-max-ziplist-value)' },
    { name: 'list-max-listpack-size', value: '-2', reason: 'the spec (list-max-ziplist-size)' },
    { name: 'set-max-intset-entries', value: '512', reason: 'the spec' },
    { name: 'zset-max-listpack-entries', value: '128', reason: 'the spec (zset-max-ziplist-entries)' },
    { name: 'zset-max-listpack-value', value: '64', reason: 'the spec (zset-max-ziplist-value)' },
    { name: 'loglevel', value: 'notice', reason: 'the spec' },
    { name: 'syslog-enabled', value: 'yes', reason: 'the spec (to the host syslog where one runs)' },
    { name: 'slowlog-log-slower-than', value: '10000', reason: 'the spec: commands slower than 10 ms' },
    { name: 'slowlog-max-len', value: '128', reason: 'the spec' },
  ];
  if (kind === 'cache') {
    return [
      { name: 'maxmemory-policy', value: 'allkeys-lru', reason: 'the cache evicts least recently used keys (the spec)' },
      { name: 'timeout', value: '300', reason: 'the spec: idle clients closed after 5 minutes' },
      ...common,
      { name: 'save', value: '', reason: 'the spec: no RDB snapshots for a cache' },
      { name: 'appendonly', value: 'no', reason: 'a cache is rebuilt from PostgreSQL' },
    ];
  }
  return [
    { name: 'maxmemory-policy', value: 'noeviction', reason: 'sessions and queues must never be evicted (BullMQ requires noeviction)' },
    { name: 'timeout', value: '0', reason: 'queue workers hold blocking connections; an idle timeout would drop them' },
    ...common,
    { name: 'appendonly', value: 'yes', reason: 'a restart loses no job or session (AOF)' },
    { name: 'appendfsync', value: 'everysec', reason: 'at most one second of writes at risk' },
  ];
}

export function renderRedisConf(kind: RedisProfileKind, ramBytes: number): string {
  const head =
    kind === 'cache'
      ? ['# AccuNode cache Redis (CACHE_REDIS_URL): the spec\'s parameter group accunode-redis-params-prod.']
      : ['# AccuNode sessions/rate-limit/queue Redis (REDIS_URL): noeviction (BullMQ) and AOF persistence.'];
  const lines = [...head, `# Generated by renderRedisConf('${kind}') for ${humanGb(ramBytes)} of RAM; check with accunode redis check-config.`, ''];
  for (const p of redisProfile(kind, ramBytes)) {
    lines.push(`# ${p.reason}`);
    lines.push(`${p.name} ${p.value === '' ? '""' : p.value}`);
  }
  return lines.join('\n') + '\n';
}

function redisBytes(v: string): number | null {
  const m = /^(\d+)(b|kb|mb|gb|k|m|g)?$/i.exec(v.trim());
  if (!m) return null;
  const mult: Record<string, number> = { b: 1, k: 1000, kb: KB, m: 1_000_000, mb: MB, g: 1_000_000_000, gb: GB };
  return Number(m[1]) * (m[2] ? (mult[m[2].toLowerCase()] ?? NaN) : 1);
}

/** Compares a live Redis (CONFIG GET *) with a profile. */
export async function checkRedisConfig(redis: Redis, profile: ProfileParam[]): Promise<ConfigDifference[]> {
  const live = await configAll(redis);
  return profile.map((p) => {
    const actual = live[p.name];
    if (actual === undefined) return { parameter: p.name, expected: p.value, actual: '(unknown to this server)', status: 'unknown', reason: p.reason };
    let same: boolean;
    if (p.name === 'maxmemory') same = redisBytes(p.value) === redisBytes(actual);
    else if (p.name === 'save') same = p.value.trim() === actual.trim();
    else same = p.value.toLowerCase() === actual.toLowerCase();
    const shown = p.name === 'maxmemory' && redisBytes(actual) !== null ? formatMemory(redisBytes(actual) ?? 0, 'redis') || actual : actual;
    return { parameter: p.name, expected: p.value === '' ? '""' : p.value, actual: actual === '' ? '""' : shown, status: same ? 'ok' : 'differs', reason: p.reason };
  });
}
