import type { FastifyPluginAsync } from 'fastify';
import type { Redis } from 'ioredis';
import type { Sql } from '../../../db/pool.js';
import { pingPostgres } from '../../../ops/monitoring/pg.js';

/** What readiness checks; the app passes its own deps (a structural subset, so no import of app.ts). */
interface HealthDeps {
  sql: Sql;
  redis: Pick<Redis, 'ping'>;
  modelsReady?: () => boolean;
}

interface Check {
  ok: boolean;
  latency_ms?: number;
  error?: string;
}

async function timed(fn: () => Promise<unknown>, timeoutMs = 2000): Promise<Check> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { ok: true, latency_ms: Math.round((performance.now() - started) * 10) / 10 };
  } catch (err) {
    // The message is an operator hint ("connect ECONNREFUSED"), never a credential.
    return { ok: false, error: (err as Error).message.replace(/\/\/[^@/]*@/g, '//***@') };
  } finally {
    clearTimeout(timer);
  }
}

export const healthRoutes: FastifyPluginAsync<{ deps: HealthDeps }> = async (app, { deps }) => {
  // Liveness: the process answers. Dependencies are readiness, not liveness, so a database
  // outage does not make an orchestrator restart every api process.
  app.get('/health', { config: { rateLimitClass: 'health' } }, async () => ({ status: 'ok' }));

  app.get('/health/ready', { config: { rateLimitClass: 'health' } }, async (_req, reply) => {
    const [postgresCheck, redisCheck] = await Promise.all([
      timed(() => pingPostgres(deps.sql)),
      timed(() => deps.redis.ping()),
    ]);
    const modelsCheck: Check = deps.modelsReady ? { ok: deps.modelsReady() } : { ok: true };
    const checks = { postgres: postgresCheck, redis: redisCheck, models: modelsCheck };
    const ready = Object.values(checks).every((c) => c.ok);
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', checks });
  });
};
