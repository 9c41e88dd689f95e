// Builds the API's services from its connections; shared by `up`, `api` and the tests.
import type { Redis } from 'ioredis';
import type { Logger } from '../logging.js';
import type { Sql } from '../db/pool.js';
import type { Config } from '../config/index.js';
import { AuthService } from '../services/auth.js';
import { AdminService } from '../services/admin.js';
import { UserCache } from '../services/user-cache.js';
import type { ApiServices } from '../http/app.js';
import type { RateLimits } from '../http/plugins/rate-limit.js';

export interface ServiceConnections {
  sql: Sql;
  redis: Redis;
  cacheRedis?: Redis;
  log: Logger;
}

export function buildServices(c: ServiceConnections, config: Pick<Config, 'SESSION_TTL_SECONDS' | 'SESSION_ABSOLUTE_TTL_SECONDS' | 'RATE_LIMIT_LOGIN'>): ApiServices {
  const userCache = new UserCache(c.cacheRedis ?? c.redis, c.log);
  const auth = new AuthService({
    sql: c.sql,
    redis: c.redis,
    log: c.log,
    userCache,
    sessionTtlSeconds: config.SESSION_TTL_SECONDS,
    sessionAbsoluteTtlSeconds: config.SESSION_ABSOLUTE_TTL_SECONDS,
    loginLimitPerHour: config.RATE_LIMIT_LOGIN,
  });
  const admin = new AdminService({ sql: c.sql, auth, userCache });
  return { auth, admin };
}

export function rateLimitsOf(config: Config): RateLimits {
  return {
    default: config.RATE_LIMIT_DEFAULT,
    predictions: config.RATE_LIMIT_PREDICTIONS,
    bulk: config.RATE_LIMIT_BULK,
    admin: config.RATE_LIMIT_ADMIN,
    anonymous: config.RATE_LIMIT_ANONYMOUS,
    login: config.RATE_LIMIT_LOGIN,
  };
}
