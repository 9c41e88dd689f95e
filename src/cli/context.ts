/**
 * What a CLI command is given: the process's composition (src/entrypoints/cli-context.ts builds
 * it once and hands it to every register*Commands function). Commands never read the
 * environment, open Redis or pick a database themselves, so they use the same configuration,
 * Redis topology (Sentinel, Cluster, TLS) and owner connection as the long-running processes.
 *
 * A new command: `export function registerXCommands(program: Command, ctx: CliContext)`, call
 * it in src/entrypoints/cli.ts, and take connections from `ctx` inside the action (each handle
 * has a close() the command calls in a finally).
 */
import type { Redis } from 'ioredis';
import type { Config } from '../config/index.js';
import type { Sql } from '../db/pool.js';
import type { AppRole } from '../db/roles.js';
import type { Logger } from '../logging.js';
import type { OpsDeps } from '../ops/types.js';
import type { RiskEngine } from '../risk/index.js';

export interface CliDatabase {
  /** The owner connection. */
  adminSql: Sql;
  adminUrl: string;
  /** app_user's URL (configured DATABASE_URL, or the owner's server with app_user's password). */
  appUrl: string;
  close(): Promise<void>;
}

export interface CliRedis {
  url: string;
  client: Redis;
  close(): Promise<void>;
}

export interface CliOps {
  deps: OpsDeps;
  adminSql: Sql;
  /** Who the statistics are read as (monitoring_user, or the owner when it cannot log in). */
  identity: string;
  close(): Promise<void>;
}

export interface CliContext {
  /** The configuration, validated on first use (so `accunode config` works with a bad setting). */
  readonly config: Config;
  /** Logs to stderr; stdout is the command's result. */
  readonly log: Logger;
  /** The owner connection (configured, or the local/embedded server `up` uses). */
  database(): Promise<CliDatabase>;
  /** REDIS_URL (sessions, queues) in its configured topology; a local redis-server is started as `up` would when none is configured. */
  redis(name: string): Promise<CliRedis>;
  /** The Redis the running processes follow, or null when it does not answer (never started here). */
  redisIfUp(name: string): Promise<CliRedis | null>;
  /** A pool on `url` with the configured size and prepare mode. */
  appPool(url: string, name: string): Sql;
  /** The operations services' dependencies, as the jobs get them (src/ops/deps.ts). */
  ops(): Promise<CliOps>;
  rolePasswords(): Record<AppRole, string>;
  /**
   * The risk engine, as the api and worker serve it: with `sql`, each kind's registry champion
   * (read from that pool), else the shipped file; without, the shipped files.
   */
  engine(sql?: Sql): Promise<RiskEngine>;
  /** BULK_UPLOAD_DIR. */
  uploadDir(): string;
  /** Runs a long-running role in this process (`accunode worker`, `accunode scheduler`). */
  runRole(role: 'worker' | 'scheduler'): Promise<void>;
}
