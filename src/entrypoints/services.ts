// Builds the API's services from its connections; shared by `up`, `api` and the tests.
import type { Redis } from 'ioredis';
import type { Logger } from '../logging.js';
import type { Sql } from '../db/pool.js';
import type { Config } from '../config/index.js';
import type { RiskEngine } from '../risk/index.js';
import { CacheAside } from '../cache/cache-aside.js';
import { Cursors } from '../repositories/keyset.js';
import { AuthService } from '../services/auth.js';
import { AdminService } from '../services/admin.js';
import { UserCache } from '../services/user-cache.js';
import { VerificationService } from '../services/verification.js';
import { LogMailer, type Mailer } from '../services/mailer.js';
import { CompanyService } from '../services/companies.js';
import { PredictionService } from '../services/predictions.js';
import { AnalyticsService } from '../services/analytics.js';
import type { ApiServices } from '../http/app.js';
import type { RateLimits } from '../http/plugins/rate-limit.js';

export interface ServiceConnections {
  sql: Sql;
  redis: Redis;
  /** The evictable cache (CACHE_REDIS_URL); defaults to redis. */
  cacheRedis?: Redis;
  /** A pool on a healthy read replica, when DATABASE_READ_URLS has one. */
  readSql?: () => Sql | null;
  /** Or the replica router (DATABASE_READ_URLS, src/db/replicas.ts): a healthy replica under the lag limit, else the primary. */
  replicas?: { get(): Sql | null } | null;
  log: Logger;
  engine: RiskEngine;
  /** Where e-mails go (createMailer); default: the log only. */
  mailer?: Mailer;
}

export function buildServices(
  c: ServiceConnections,
  config: Pick<Config, 'SESSION_TTL_SECONDS' | 'SESSION_ABSOLUTE_TTL_SECONDS' | 'RATE_LIMIT_LOGIN'> &
    Partial<Pick<Config, 'IMPLIED_RATING_SCALE' | 'PREDICTION_MIN_RATIOS' | 'LOGIN_KNOWN_IP_DAYS' | 'PUBLIC_URL' | 'HOST' | 'PORT' | 'EMAIL_VERIFY_TTL_SECONDS' | 'RATE_LIMIT_VERIFY_RESEND'>>,
): ApiServices {
  const cacheRedis = c.cacheRedis ?? c.redis;
  const cache = new CacheAside(cacheRedis, c.log);
  const cursors = Cursors.fromDatabase(c.sql);
  const userCache = new UserCache(cache);
  const auth = new AuthService({
    sql: c.sql,
    redis: c.redis,
    log: c.log,
    userCache,
    sessionTtlSeconds: config.SESSION_TTL_SECONDS,
    sessionAbsoluteTtlSeconds: config.SESSION_ABSOLUTE_TTL_SECONDS,
    loginLimitPerHour: config.RATE_LIMIT_LOGIN,
    ...(config.LOGIN_KNOWN_IP_DAYS ? { loginKnownIpDays: config.LOGIN_KNOWN_IP_DAYS } : {}),
  });
  const admin = new AdminService({ sql: c.sql, cursors, auth, userCache });
  const verification = new VerificationService({
    sql: c.sql,
    redis: c.redis,
    log: c.log,
    mailer: c.mailer ?? new LogMailer(c.log),
    userCache,
    publicUrl: config.PUBLIC_URL ?? `http://${config.HOST ?? '127.0.0.1'}:${config.PORT ?? 8000}`,
    ttlSeconds: config.EMAIL_VERIFY_TTL_SECONDS ?? 86_400,
    resendPerHour: config.RATE_LIMIT_VERIFY_RESEND ?? 5,
  });
  const replicas = c.replicas;
  const readSql = c.readSql ?? (replicas ? () => replicas.get() : undefined);
  const analytics = new AnalyticsService({ sql: c.sql, cache, redis: cacheRedis, log: c.log, ...(readSql ? { readSql } : {}), ...(config.IMPLIED_RATING_SCALE ? { ratingScale: config.IMPLIED_RATING_SCALE } : {}) });
  const companies = new CompanyService({ sql: c.sql, cursors, cache, analytics });
  const predictions = new PredictionService({ sql: c.sql, cursors, cache, engine: c.engine, companies, analytics, ...(config.PREDICTION_MIN_RATIOS !== undefined ? { minRatios: config.PREDICTION_MIN_RATIOS } : {}) });
  return { auth, admin, verification, companies, predictions, analytics, cache, cursors };
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
