import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/index.js';
import type { Logger } from '../logging.js';
import { buildApp } from '../http/app.js';
import type { Sql } from '../db/pool.js';
import type { Redis } from 'ioredis';
import type { Shutdown } from './shutdown.js';

export async function startApi(
  config: Config,
  log: Logger,
  shutdown: Shutdown,
  deps: { sql: Sql; redis: Redis; modelsReady?: () => boolean },
): Promise<{ app: FastifyInstance; url: string }> {
  const app = await buildApp({
    log,
    sql: deps.sql,
    redis: deps.redis,
    trustProxy: config.TRUST_PROXY,
    ...(deps.modelsReady ? { modelsReady: deps.modelsReady } : {}),
  });
  // Registered before the pools' closers run (closers run in reverse), so in-flight requests
  // finish before their connections go away.
  shutdown.add('http server', () => app.close());
  const address = await app.listen({ port: config.PORT, host: config.HOST });
  return { app, url: address };
}
