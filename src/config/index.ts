// The one place that reads process.env. Everything else receives a frozen, typed Config.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REFERENCE_RATING_SCALE, validateRatingScale, type RatingGrade } from '../risk/implied-rating.js';

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`Configuration error: ${variable} ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

interface VarSpec<T> {
  /** Secrets may come from NAME_FILE and are never printed. */
  secret?: boolean;
  description: string;
  parse: (raw: string | undefined, name: string) => T;
  /** Shown in the README/`accunode config` table. */
  defaultText?: string;
}

function fail(name: string, message: string): never {
  throw new ConfigError(name, message);
}

const str =
  (def?: string) =>
  (raw: string | undefined): string | undefined =>
    raw === undefined || raw === '' ? def : raw;

const reqStr =
  (def: string) =>
  (raw: string | undefined): string =>
    raw === undefined || raw === '' ? def : raw;

const int =
  (def: number, min: number, max: number) =>
  (raw: string | undefined, name: string): number => {
    if (raw === undefined || raw === '') return def;
    if (!/^-?\d+$/.test(raw.trim())) fail(name, `must be an integer, got "${raw}"`);
    const n = Number(raw);
    if (n < min || n > max) fail(name, `must be between ${min} and ${max}, got ${n}`);
    return n;
  };

const bool =
  (def: boolean) =>
  (raw: string | undefined, name: string): boolean => {
    if (raw === undefined || raw === '') return def;
    const v = raw.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    return fail(name, `must be true or false, got "${raw}"`);
  };

const oneOf =
  <T extends string>(def: T, values: readonly T[]) =>
  (raw: string | undefined, name: string): T => {
    if (raw === undefined || raw === '') return def;
    if (!(values as readonly string[]).includes(raw)) fail(name, `must be one of ${values.join(', ')}, got "${raw}"`);
    return raw as T;
  };

function checkUrl(raw: string, name: string, protocols: string[]): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    // Never echo the value: a URL usually carries a password.
    return fail(name, 'is not a valid URL');
  }
  if (!protocols.includes(u.protocol)) fail(name, `must use ${protocols.join(' or ')} (got ${u.protocol})`);
  return raw;
}

const url =
  (protocols: string[]) =>
  (raw: string | undefined, name: string): string | undefined =>
    raw === undefined || raw === '' ? undefined : checkUrl(raw, name, protocols);

const urlList =
  (protocols: string[]) =>
  (raw: string | undefined, name: string): string[] =>
    raw === undefined || raw.trim() === ''
      ? []
      : raw
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
          .map((s) => checkUrl(s, name, protocols));

export interface HostPort {
  host: string;
  port: number;
}

function parseHostPorts(raw: string): HostPort[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(s);
      if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new Error(`"${s}" is not host:port`);
      return { host: m[1]!, port: Number(m[2]) };
    });
}

const hostPorts = (raw: string | undefined, name: string): HostPort[] => {
  if (raw === undefined || raw.trim() === '') return [];
  try {
    return parseHostPorts(raw);
  } catch (err) {
    return fail(name, `must be a comma list of host:port (${(err as Error).message})`);
  }
};

const PG = ['postgres:', 'postgresql:'];
const REDIS = ['redis:', 'rediss:'];
const HTTP = ['http:', 'https:'];
const SMTP = ['smtp:', 'smtps:'];

const thresholds = (raw: string | undefined, name: string): [number, number, number] => {
  if (raw === undefined || raw === '') return [0.02, 0.05, 0.15];
  const parts = raw.split(',').map((s) => Number(s.trim()));
  if (parts.length !== 3 || parts.some((p) => !Number.isFinite(p) || p <= 0 || p >= 1))
    fail(name, 'must be three probabilities between 0 and 1, e.g. "0.02,0.05,0.15"');
  const [a, b, c] = parts as [number, number, number];
  if (!(a < b && b < c)) fail(name, 'must be increasing (MEDIUM < HIGH < CRITICAL boundaries)');
  return [a, b, c];
};

/** "majority" (more than half of a model's ratios) or a whole number of ratios, 0 to turn the check off. */
const minRatios = (raw: string | undefined, name: string): 'majority' | number => {
  if (raw === undefined || raw.trim() === '' || raw.trim() === 'majority') return 'majority';
  if (!/^\d+$/.test(raw.trim())) fail(name, `must be "majority" or a whole number of ratios (0 turns the check off), got "${raw}"`);
  return Number(raw.trim());
};

/** "AAA:0.0001,AA:0.0003,…,CCC": grades best first, each with the highest PD it covers; the last has none. */
const ratingScale = (raw: string | undefined, name: string): readonly RatingGrade[] => {
  if (raw === undefined || raw.trim() === '') return REFERENCE_RATING_SCALE;
  const parts = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const scale = parts.map((p, i) => {
    const [grade, bound] = p.split(':').map((s) => s.trim());
    if (i === parts.length - 1) {
      if (bound !== undefined) fail(name, `the last grade (${grade}) takes no bound: it covers every PD above the one before it`);
      return { grade: grade!, maxPd: Infinity };
    }
    const maxPd = Number(bound);
    if (bound === undefined || bound === '' || !Number.isFinite(maxPd)) fail(name, `grade "${grade}" needs its highest PD, e.g. "${grade}:0.001"`);
    return { grade: grade!, maxPd };
  });
  const problem = validateRatingScale(scale);
  if (problem) fail(name, problem);
  return Object.freeze(scale);
};

const trustProxy = (raw: string | undefined, name: string): string[] | false => {
  if (raw === undefined || raw.trim() === '' || raw === 'false') return false;
  const list = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const entry of list) {
    if (!/^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(entry) && entry !== 'loopback')
      fail(name, `must list proxy addresses or CIDR ranges (got "${entry}")`);
  }
  return list;
};

const CONFIG_SPEC = {
  NODE_ENV: { description: 'production | development | test', parse: oneOf('development', ['production', 'development', 'test'] as const), defaultText: 'development' },
  PORT: { description: 'HTTP port of the api', parse: int(8000, 0, 65535), defaultText: '8000' },
  HOST: { description: 'HTTP bind address', parse: reqStr('127.0.0.1'), defaultText: '127.0.0.1' },
  LOG_LEVEL: { description: 'pino log level', parse: oneOf('info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const), defaultText: 'info' },
  ACCUNODE_DATA_DIR: { description: 'embedded database, backups, generated secrets', parse: reqStr('./.accunode'), defaultText: './.accunode' },
  DATABASE_URL: { secret: true, description: 'app_user connection (row-level security applies)', parse: url(PG) },
  DATABASE_ADMIN_URL: { secret: true, description: 'owner connection: migrations, maintenance, diagnostics, backups', parse: url(PG) },
  DATABASE_READ_URLS: { secret: true, description: 'comma list of read replicas (analytics, reports)', parse: urlList(PG), defaultText: '(none)' },
  DATABASE_MONITOR_URL: { secret: true, description: 'monitoring_user connection for operations commands', parse: url(PG), defaultText: 'derived from the admin URL' },
  DATABASE_POOL_SIZE: { description: 'connections per pool', parse: int(10, 1, 500), defaultText: '10' },
  DATABASE_PREPARE: { description: 'named prepared statements (false behind PgBouncer transaction mode)', parse: bool(true), defaultText: 'true' },
  REDIS_URL: { secret: true, description: 'sessions, rate limits, queues (noeviction, AOF)', parse: url(REDIS) },
  CACHE_REDIS_URL: { secret: true, description: 'evictable cache (allkeys-lru); defaults to REDIS_URL', parse: url(REDIS), defaultText: 'REDIS_URL' },
  APP_USER_PASSWORD: { secret: true, description: 'password of app_user (generated when absent)', parse: str() },
  READONLY_USER_PASSWORD: { secret: true, description: 'password of readonly_user (generated when absent)', parse: str() },
  ANALYTICS_USER_PASSWORD: { secret: true, description: 'password of analytics_user (generated when absent)', parse: str() },
  MONITORING_USER_PASSWORD: { secret: true, description: 'password of monitoring_user (generated when absent)', parse: str() },
  MAINTENANCE_USER_PASSWORD: { secret: true, description: 'password of maintenance_user (generated when absent)', parse: str() },
  SESSION_TTL_SECONDS: { description: 'sliding session lifetime (Redis TTL)', parse: int(86_400, 60, 30 * 86_400), defaultText: '86400' },
  SESSION_ABSOLUTE_TTL_SECONDS: { description: 'absolute cap on a session', parse: int(30 * 86_400, 60, 365 * 86_400), defaultText: '2592000' },
  PUBLIC_URL: { description: 'the URL users reach the web app at (e.g. https://risk.example.com): links in e-mails point here (never taken from a request\'s Host header), and https makes the session cookie Secure even when the proxy in front is not in TRUST_PROXY', parse: url(HTTP), defaultText: 'http://HOST:PORT for links; Secure cookies only on requests that arrived over https' },
  TRUST_PROXY: { description: 'proxies whose X-Forwarded-For is trusted (comma list of addresses/CIDRs)', parse: trustProxy, defaultText: '(none)' },
  RATE_LIMIT_DEFAULT: { description: 'requests per hour per user and endpoint', parse: int(1000, 1, 10_000_000), defaultText: '1000' },
  RATE_LIMIT_PREDICTIONS: { description: 'prediction requests per hour per user and endpoint', parse: int(5000, 1, 10_000_000), defaultText: '5000' },
  RATE_LIMIT_BULK: { description: 'bulk uploads per hour per user', parse: int(20, 1, 100_000), defaultText: '20' },
  RATE_LIMIT_ADMIN: { description: 'admin requests per hour per user and endpoint', parse: int(500, 1, 10_000_000), defaultText: '500' },
  RATE_LIMIT_ANONYMOUS: { description: 'unauthenticated requests per hour per IP and endpoint', parse: int(300, 1, 10_000_000), defaultText: '300' },
  RATE_LIMIT_LOGIN: { description: 'failed logins per hour per account before addresses it never signed in from must wait (and, times 3, login/register requests per hour per IP)', parse: int(10, 1, 100_000), defaultText: '10' },
  LOGIN_KNOWN_IP_DAYS: { description: 'an address an account signed in from stays known for this many days: it may still try while the account is over RATE_LIMIT_LOGIN', parse: int(30, 1, 3650), defaultText: '30' },
  BULK_MAX_UPLOAD_BYTES: { description: 'largest accepted bulk file', parse: int(100 * 1024 * 1024, 1024, 10 * 1024 * 1024 * 1024), defaultText: '104857600' },
  BACKUP_DIR: { description: 'where backups go', parse: str(), defaultText: '$ACCUNODE_DATA_DIR/backups' },
  BACKUP_ENCRYPTION_KEY: { secret: true, description: 'encrypts backups at rest when set', parse: str() },
  WEBHOOK_ALLOW_PRIVATE_TARGETS: { description: 'let alert webhooks point at private, loopback and link-local addresses (a receiver inside your own network); off by default, so a user cannot make the worker call internal services', parse: bool(false), defaultText: 'false' },
  ALARM_WEBHOOK_URL: { secret: true, description: 'alarm and failover notifications', parse: url(HTTP) },
  RISK_THRESHOLDS: { description: 'where MEDIUM, HIGH and CRITICAL begin, as probabilities (LOW < 0.02 <= MEDIUM < 0.05 <= HIGH <= 0.15 < CRITICAL)', parse: thresholds, defaultText: '0.02,0.05,0.15' },
  PREDICTION_MIN_RATIOS: { description: 'ratios a prediction needs (the others may be not reported): "majority" is more than half of the model\'s ratios (3 of 5 annual, 4 of 6 quarterly); a number N asks for N (capped at the model\'s count); 0 accepts any', parse: minRatios, defaultText: 'majority' },
  IMPLIED_RATING_SCALE: { description: 'implied ratings shown beside PDs: grades best first with the highest PD each covers, the last open-ended ("AAA:0.0001,AA:0.0003,…,CCC"); the default is the rating-agency scale the reference models are calibrated to', parse: ratingScale, defaultText: 'reference calibration (AAA…CCC)' },
  MODELS_DIR: { description: 'model artifacts directory', parse: str(), defaultText: '<package>/models' },
  LOCAL_PG_PORT: { description: 'with no database URL: a PostgreSQL listening on this local port is used, else an embedded one is started on it', parse: int(5432, 1, 65535), defaultText: '5432' },
  LOCAL_REDIS_PORT: { description: 'with no REDIS_URL: a Redis listening on this local port is used, else redis-server is started on it', parse: int(6379, 1, 65535), defaultText: '6379' },
  SEED_DEMO: { description: 'seed a demo tenant on an empty database at `up`', parse: bool(true), defaultText: 'true' },
  // Operations (issue 7): alarm thresholds (the spec's CloudWatch alarms), maintenance, metrics.
  ALARM_PERIOD_SECONDS: { description: 'alarm evaluation period (the spec\'s CloudWatch Period)', parse: int(300, 1, 86_400), defaultText: '300' },
  ALARM_DB_CPU_PERCENT: { description: 'database CPU alarm threshold, percent, over ALARM_DB_CPU_PERIODS periods', parse: int(80, 1, 100), defaultText: '80' },
  ALARM_DB_CPU_PERIODS: { description: 'consecutive periods over the database CPU threshold before it fires', parse: int(2, 1, 100), defaultText: '2' },
  ALARM_DB_CONNECTIONS_PERCENT: { description: 'database connections alarm, percent of the live max_connections', parse: int(80, 1, 100), defaultText: '80' },
  ALARM_SLOW_QUERY_COUNT: { description: 'slow-query alarm: more than this many slow calls in a period', parse: int(10, 0, 1_000_000), defaultText: '10' },
  ALARM_SLOW_QUERY_MS: { description: 'a call is slow when its statement averaged more than this in the period', parse: int(1000, 1, 3_600_000), defaultText: '1000' },
  ALARM_REDIS_CPU_PERCENT: { description: 'Redis CPU alarm threshold, percent of one core', parse: int(75, 1, 100), defaultText: '75' },
  ALARM_REDIS_MEMORY_PERCENT: { description: 'Redis memory alarm threshold, percent of maxmemory (of system memory when maxmemory is 0)', parse: int(85, 1, 100), defaultText: '85' },
  ALARM_REDIS_EVICTIONS: { description: 'Redis evictions alarm: more than this many in a period', parse: int(100, 0, 100_000_000), defaultText: '100' },
  REPLICA_LAG_LIMIT_SECONDS: { description: 'replica lag alarm threshold', parse: int(60, 1, 86_400), defaultText: '60' },
  BACKUP_MAX_AGE_HOURS: { description: 'alarm when the last good backup is older than this (daily schedule + its window)', parse: int(25, 1, 24 * 90), defaultText: '25' },
  DB_CPU_PROMETHEUS_URL: { description: 'database CPU source when the database is not local: a Prometheus server (its /api/v1/query is queried)', parse: url(HTTP), defaultText: '(none)' },
  DB_CPU_PROMETHEUS_QUERY: { description: 'PromQL giving the database host CPU percent', parse: reqStr('100 - avg(rate(node_cpu_seconds_total{mode="idle"}[5m])) * 100'), defaultText: 'node_exporter idle-based' },
  MAINTENANCE_REINDEX_BLOAT_PERCENT: { description: 'monthly maintenance rebuilds (REINDEX CONCURRENTLY) btree indexes whose measured bloat passes this', parse: int(30, 1, 100), defaultText: '30' },
  MAINTENANCE_BATCH_SIZE: { description: 'rows per clean-up/archive statement (short locks)', parse: int(5000, 1, 1_000_000), defaultText: '5000' },
  OPS_BLOAT_SCAN_MAX_MB: { description: 'relations larger than this are not scanned for bloat (shown as unavailable)', parse: int(2048, 1, 10_000_000), defaultText: '2048' },
  OPS_REDIS_SCAN_MAX_KEYS: { description: 'diagnose: keys visited by SCAN at most (memory by key family)', parse: int(100_000, 10, 100_000_000), defaultText: '100000' },
  // Worker, scheduler and bulk uploads (issue 6).
  QUEUE_PREFIX: { description: 'BullMQ key prefix; must start with a {hash tag} (Redis Cluster)', parse: (raw: string | undefined, name: string) => { const v = raw === undefined || raw === '' ? '{accunode}' : raw; if (!/^\{[^{}]+\}/.test(v)) fail(name, 'must start with a {hash tag}, e.g. "{accunode}"'); return v; }, defaultText: '{accunode}' },
  WORKER_QUEUES: { description: 'queues an `accunode worker` consumes (comma list of bulk, analytics, maintenance, backups)', parse: (raw: string | undefined, name: string) => { const all = ['bulk', 'analytics', 'maintenance', 'backups']; const list = raw === undefined || raw.trim() === '' ? all : raw.split(',').map((s) => s.trim()).filter(Boolean); for (const q of list) if (!all.includes(q)) fail(name, `unknown queue "${q}" (one of ${all.join(', ')})`); return list as Array<'bulk' | 'analytics' | 'maintenance' | 'backups'>; }, defaultText: 'bulk,analytics,maintenance,backups' },
  WORKER_BULK_CONCURRENCY: { description: 'bulk uploads one worker process runs at once', parse: int(1, 1, 64), defaultText: '1' },
  QUEUE_LOCK_DURATION_MS: { description: 'BullMQ job lock; a worker that dies is noticed (stalled) after about this long', parse: int(30_000, 1000, 3_600_000), defaultText: '30000' },
  QUEUE_STALLED_INTERVAL_MS: { description: 'how often workers look for stalled jobs (of dead workers) to run again', parse: int(30_000, 500, 3_600_000), defaultText: '30000' },
  BULK_CHUNK_ROWS: { description: 'rows per bulk-upload chunk (one COPY + upsert transaction)', parse: int(5000, 10, 1_000_000), defaultText: '5000' },
  BULK_MAX_LINE_BYTES: { description: 'longest accepted line (row) of a bulk CSV', parse: int(1024 * 1024, 1024, 100 * 1024 * 1024), defaultText: '1048576' },
  BULK_XLSX_MAX_PART_BYTES: { description: 'most bytes one XLSX part held in memory (shared strings, styles, workbook) may inflate to, counted while inflating', parse: int(200 * 1024 * 1024, 1024 * 1024, 4 * 1024 * 1024 * 1024), defaultText: '209715200' },
  BULK_XLSX_MAX_INFLATE_RATIO: { description: 'most bytes a whole XLSX may inflate to per byte of the file (counted; workbooks under 16 MB inflated are exempt)', parse: int(100, 2, 10_000), defaultText: '100' },
  BULK_UPLOAD_DIR: { description: 'where uploaded bulk files wait for a worker (shared by api and workers)', parse: str(), defaultText: '$ACCUNODE_DATA_DIR/uploads' },
  // Backups, PITR and failover (issue 8).
  BACKUP_RETENTION_DAYS: { description: 'untagged logical backups are pruned after this many days (tagged ones are kept until deleted)', parse: int(30, 1, 3650), defaultText: '30' },
  BACKUP_JOBS: { description: 'pg_restore --jobs for backup verify/restore', parse: int(2, 1, 64), defaultText: '2' },
  BACKUP_REDIS_KEEP: { description: 'Redis RDB snapshots kept in BACKUP_DIR/redis', parse: int(5, 1, 1000), defaultText: '5' },
  PITR_STANZA: { description: 'pgBackRest stanza name', parse: reqStr('accunode'), defaultText: 'accunode' },
  PITR_PG_DATA_DIR: { description: 'data directory of the PostgreSQL that pgBackRest backs up (pgBackRest runs on the database host)', parse: str(), defaultText: '(none: PITR not set up)' },
  PITR_PG_SOCKET_DIR: { description: 'its unix socket directory', parse: str(), defaultText: '/var/run/postgresql' },
  PITR_REPO2_PATH: { description: 'second pgBackRest repository (the cross-region copy)', parse: str(), defaultText: '$BACKUP_DIR/pitr/repo2' },
  REPLICA_CHECK_INTERVAL_SECONDS: { description: 'how often read replicas are checked for health and lag', parse: int(5, 1, 3600), defaultText: '5' },
  DR_CHECK_INTERVAL_SECONDS: { description: '`dr watch`/`dr failover`: seconds between primary health checks', parse: int(5, 1, 3600), defaultText: '5' },
  DR_FAILURE_CHECKS: { description: 'consecutive failed health checks before a failover', parse: int(3, 1, 100), defaultText: '3' },
  DR_MAX_UNAVAILABLE_SECONDS: { description: '`dr watch` fails over after the primary has been unavailable this long', parse: int(300, 1, 86_400), defaultText: '300' },
  // Scale-out (issue 10): LISTEN behind a pooler, Redis Sentinel / Cluster, TLS.
  DATABASE_LISTEN_URL: { secret: true, description: 'direct app_user connection for LISTEN/NOTIFY (session revocations) when DATABASE_URL goes through PgBouncer in transaction mode', parse: url(PG), defaultText: 'the app pool (DATABASE_URL)' },
  REDIS_SENTINELS: { description: 'Sentinels of the queue/session Redis replication group (comma list of host:port); the client follows failovers', parse: hostPorts, defaultText: '(none: REDIS_URL is the server)' },
  REDIS_SENTINEL_NAME: { description: 'the primary\'s name in Sentinel (sentinel monitor NAME …)', parse: reqStr('accunode'), defaultText: 'accunode' },
  REDIS_SENTINEL_PASSWORD: { secret: true, description: 'password of the Sentinels (requirepass of sentinel.conf), when they have one', parse: str() },
  REDIS_CLUSTER_NODES: { description: 'seed nodes of a Redis Cluster for the queue/session Redis (comma list of host:port); REDIS_URL then only carries credentials and TLS', parse: hostPorts, defaultText: '(none)' },
  REDIS_TLS_CA_FILE: { description: 'PEM CA trusted for rediss:// connections (self-signed or private CA)', parse: str(), defaultText: '(system CAs)' },
  // Security review (issue 13): e-mail verification and metrics access.
  SMTP_URL: { secret: true, description: 'SMTP server for e-mail (smtp:// or smtps://user:pass@host:port); without it e-mails go to the log and, outside production, to $ACCUNODE_DATA_DIR/outbox/', parse: url(SMTP), defaultText: '(none)' },
  MAIL_FROM: { description: 'From: address of the e-mails', parse: reqStr('AccuNode <no-reply@accunode.local>'), defaultText: 'AccuNode <no-reply@accunode.local>' },
  EMAIL_VERIFY_TTL_SECONDS: { description: 'how long an e-mail verification link works', parse: int(86_400, 300, 30 * 86_400), defaultText: '86400' },
  RATE_LIMIT_VERIFY_RESEND: { description: 'verification e-mails a user may ask for per hour', parse: int(5, 1, 1000), defaultText: '5' },
  METRICS_TOKEN: { secret: true, description: 'bearer token Prometheus sends for /metrics (generated into $ACCUNODE_DATA_DIR/secrets/metrics.token by `up` when absent; without one `accunode api` refuses /metrics)', parse: str(), defaultText: '(none)' },
} satisfies Record<string, VarSpec<unknown>>;

type Spec = typeof CONFIG_SPEC;
export type Config = Readonly<{ [K in keyof Spec]: ReturnType<Spec[K]['parse']> }> & {
  readonly backupDir: string;
  readonly dataDir: string;
};

export const SECRET_VARIABLES: readonly string[] = Object.entries(CONFIG_SPEC)
  .filter(([, s]) => (s as VarSpec<unknown>).secret)
  .map(([k]) => k);

/** Reads NAME, or the file named by NAME_FILE (secrets mounted by an orchestrator). */
function readRaw(env: Env, name: string): string | undefined {
  const direct = env[name];
  const file = env[`${name}_FILE`];
  if (direct !== undefined && direct !== '' && file) fail(name, `and ${name}_FILE are both set; set only one`);
  if (file) {
    try {
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      return fail(`${name}_FILE`, `names a file that cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  return direct;
}

export function loadConfig(env: Env = process.env): Config {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(CONFIG_SPEC)) {
    out[name] = (spec as VarSpec<unknown>).parse(readRaw(env, name), name);
  }
  const dataDir = path.resolve(out.ACCUNODE_DATA_DIR as string);
  out.dataDir = dataDir;
  out.backupDir = path.resolve((out.BACKUP_DIR as string | undefined) ?? path.join(dataDir, 'backups'));
  if ((out.SESSION_ABSOLUTE_TTL_SECONDS as number) < (out.SESSION_TTL_SECONDS as number))
    fail('SESSION_ABSOLUTE_TTL_SECONDS', 'must be at least SESSION_TTL_SECONDS');
  return Object.freeze(out) as Config;
}

/** Variables in the README table, with defaults. */
export function describeConfig(): Array<{ name: string; secret: boolean; default: string; description: string }> {
  return Object.entries(CONFIG_SPEC).map(([name, s]) => {
    const spec = s as VarSpec<unknown>;
    return { name, secret: !!spec.secret, default: spec.defaultText ?? '', description: spec.description };
  });
}
