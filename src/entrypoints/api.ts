import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Config } from '../config/index.js';
import type { Logger } from '../logging.js';
import { buildApp } from '../http/app.js';
import type { Sql } from '../db/pool.js';
import type { Shutdown } from './shutdown.js';
import { buildServices, rateLimitsOf } from './services.js';

export async function startApi(
  config: Config,
  log: Logger,
  shutdown: Shutdown,
  deps: { sql: Sql; redis: Redis; cacheRedis?: Redis; modelsReady?: () => boolean },
): Promise<{ app: FastifyInstance; url: string }> {
  const services = buildServices({ sql: deps.sql, redis: deps.redis, ...(deps.cacheRedis ? { cacheRedis: deps.cacheRedis } : {}), log }, config);
  const revocations = await services.auth.listenForRevocations(deps.sql);
  shutdown.add('session revocation listener', () => revocations.unlisten());
  const app = await buildApp({
    log,
    sql: deps.sql,
    redis: deps.redis,
    trustProxy: config.TRUST_PROXY,
    services,
    rateLimits: rateLimitsOf(config),
    ...(deps.modelsReady ? { modelsReady: deps.modelsReady } : {}),
  });
  // Registered after the pools' closers (closers run in reverse), so in-flight requests finish
  // before their connections go away.
  shutdown.add('http server', () => app.close());
  const address = await app.listen({ port: config.PORT, host: config.HOST });
  return { app, url: address };
}
