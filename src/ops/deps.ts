// The operations services' dependencies (OpsDeps), built one way for `accunode alarms` and the
// other operations commands, the scheduled jobs and the web's Operations page: so the alarms job
// and the CLI read the same database CPU source and the same backups, and answer alike.
import type { Redis } from 'ioredis';
import type { Config } from '../config/index.js';
import type { Sql } from '../db/pool.js';
import type { Logger } from '../logging.js';
import { backupDirSource } from './backup/source.js';
import { defaultCpuSource } from './monitoring/host.js';
import type { OpsDeps, ReplicaConn } from './types.js';

interface OpsConnections {
  /** monitoring_user (pg_monitor), or the owner when monitoring_user cannot log in. */
  sql: Sql;
  /** The owner: maintenance, alarm history, signalling backends. */
  adminSql?: Sql;
  /** The owner's URL: tells whether the database is on this host (its /proc CPU figures). */
  adminUrl: string;
  /** REDIS_URL (sessions, rate limits, queues). */
  redis: Redis;
  /** CACHE_REDIS_URL's client; left out when it is the same instance as `redis`. */
  cacheRedis?: Redis | undefined;
  replicas?: ReplicaConn[];
  config: Config;
  log?: Logger;
}

export function opsDepsOf(c: OpsConnections): OpsDeps {
  return {
    sql: c.sql,
    ...(c.adminSql ? { adminSql: c.adminSql } : {}),
    redis: c.redis,
    ...(c.cacheRedis && c.cacheRedis !== c.redis ? { cacheRedis: c.cacheRedis } : {}),
    replicas: c.replicas ?? [],
    config: c.config,
    ...(c.log ? { log: c.log } : {}),
    dbCpu: defaultCpuSource(c.sql, c.adminUrl, c.config.DB_CPU_PROMETHEUS_URL, c.config.DB_CPU_PROMETHEUS_QUERY),
    backups: backupDirSource(c.config.backupDir),
  };
}
