// Wiring shared by the entrypoints: which database and Redis, roles, pools.
import type { Redis } from 'ioredis';
import { connectRedis, isDistributed, placeholderUrl, topologyOf, useRedisTopology } from '../redis/topology.js';
import type { Config } from '../config/index.js';
import type { Logger } from '../logging.js';
import { createPool, type Sql } from '../db/pool.js';
import { migrate } from '../db/migrate.js';
import { AppPools } from '../db/app-pools.js';
import { APP_ROLES, ROLE_PASSWORD_VARIABLE, applyRolePasswords, resolveRolePassword, type AppRole } from '../db/roles.js';
import { resolveDatabase, resolveRedis, withCredentials, type ResolvedDatabase, type ResolvedRedis } from '../ops/local/services.js';
import type { Shutdown } from './shutdown.js';

export function rolePasswords(config: Config): Record<AppRole, string> {
  const out = {} as Record<AppRole, string>;
  for (const role of APP_ROLES) {
    const configured = config[ROLE_PASSWORD_VARIABLE[role] as keyof Config] as string | undefined;
    out[role] = resolveRolePassword(role, configured, config.dataDir);
  }
  return out;
}

export interface Databases {
  resolved: ResolvedDatabase;
  /** The owner pool (adminPools.sql): follows a failover once Root has it follow the announcements. */
  adminSql: Sql;
  adminPools: AppPools;
  appUrl: string;
}

/** The owner connection, migrated and with role passwords set when asked. */
export async function prepareDatabase(
  config: Config,
  log: Logger,
  shutdown: Shutdown | null,
  opts: { migrate: boolean; roles: boolean },
): Promise<Databases> {
  const resolved = await resolveDatabase(
    {
      databaseUrl: config.DATABASE_URL,
      adminUrl: config.DATABASE_ADMIN_URL,
      dataDir: config.dataDir,
      embeddedPort: config.LOCAL_PG_PORT,
    },
    log,
  );
  if (resolved.stop) shutdown?.add('embedded postgres', resolved.stop);
  const adminPools = new AppPools(resolved.adminUrl, (u) => createPool(u, { max: 2, applicationName: 'accunode-admin', prepare: config.DATABASE_PREPARE }), log);
  const adminSql = adminPools.sql;
  shutdown?.add('admin pool', () => adminPools.end({ timeout: 5 }));
  if (opts.migrate) {
    const res = await migrate(adminSql, { log: (m) => log.info(m) });
    log.info({ applied: res.applied.length, already: res.alreadyApplied }, 'migrations up to date');
  }
  const passwords = config.DATABASE_URL && !opts.roles ? null : rolePasswords(config);
  if (opts.roles && passwords) await applyRolePasswords(adminSql, passwords);
  const appUrl = resolved.appUrl ?? withCredentials(resolved.adminUrl, 'app_user', passwords?.app_user);
  return { resolved, adminSql, adminPools, appUrl };
}

export function createAppPool(config: Config, url: string, name: string): Sql {
  return createPool(url, { max: config.DATABASE_POOL_SIZE, prepare: config.DATABASE_PREPARE, applicationName: name });
}

/**
 * A client of `url`: the queue/session Redis (REDIS_URL) follows the configured topology
 * (Sentinel or Cluster, see src/redis/topology.ts); TLS CA from REDIS_TLS_CA_FILE.
 */
export function createRedis(url: string, name: string, opts: { forQueue?: boolean } = {}): Redis {
  return connectRedis(url, {
    connectionName: name,
    // BullMQ needs null; for request-path clients a bounded retry turns an outage into errors
    // the caller can handle instead of requests hanging forever.
    maxRetriesPerRequest: opts.forQueue ? null : 2,
    // Commands issued in the same tick share one round trip: under load a request's session
    // look-up and rate-limit count cost well under one round trip each.
    enableAutoPipelining: !opts.forQueue,
    // An unresponsive (not closed) Redis must fail a request-path command quickly, so the cache
    // can fall back to PostgreSQL; queue clients wait (BullMQ manages its own blocking calls).
    ...(opts.forQueue ? {} : { commandTimeout: 1000 }),
    lazyConnect: false,
  }, { requestPath: !opts.forQueue });
}

export async function prepareRedis(config: Config, log: Logger, shutdown: Shutdown | null): Promise<ResolvedRedis> {
  const topology = topologyOf(config);
  if (isDistributed(topology)) {
    // Sentinel or Cluster: nothing local to find or start; REDIS_URL (optional) carries the
    // credentials and rediss:// for TLS.
    const url = config.REDIS_URL ?? placeholderUrl(topology);
    useRedisTopology(url, topology);
    log.info({ sentinels: topology.sentinels.length, clusterNodes: topology.clusterNodes.length, name: topology.sentinels.length ? topology.sentinelName : undefined }, 'redis: distributed topology');
    return { url, source: 'configured' };
  }
  const r = await resolveRedis({ url: config.REDIS_URL, dataDir: config.dataDir, port: config.LOCAL_REDIS_PORT }, log);
  if (r.stop) shutdown?.add('redis-server', r.stop);
  useRedisTopology(r.url, topology);
  return r;
}

/** monitoring_user's URL: DATABASE_MONITOR_URL, else the owner's URL with monitoring_user and its password. */
export function monitorUrl(config: Config, adminUrl: string | undefined): string | undefined {
  if (config.DATABASE_MONITOR_URL) return config.DATABASE_MONITOR_URL;
  const admin = adminUrl ?? config.DATABASE_ADMIN_URL;
  return admin ? withCredentials(admin, 'monitoring_user', rolePasswords(config).monitoring_user) : undefined;
}
