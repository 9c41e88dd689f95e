import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyError } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Redis } from 'ioredis';
import type { Logger } from '../logging.js';
import type { Sql } from '../db/pool.js';
import { DomainError, type ErrorCode } from '../domain/errors.js';
import { healthRoutes } from './routes/health/routes.js';

export interface AppDeps {
  log: Logger;
  sql: Sql;
  redis: Redis;
  /** Whether the risk models are loaded (reported by /health/ready). */
  modelsReady?: () => boolean;
  trustProxy?: string[] | false;
  bodyLimit?: number;
}

const STATUS: Record<ErrorCode, number> = {
  validation_failed: 422,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  rate_limited: 429,
  unavailable: 503,
  internal: 500,
};

export function errorBody(code: string, message: string, details?: unknown) {
  return { error: { code, message, ...(details === undefined ? {} : { details }) } };
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    trustProxy: deps.trustProxy && deps.trustProxy.length > 0 ? deps.trustProxy : false,
    bodyLimit: deps.bodyLimit ?? 1024 * 1024,
    // Unknown fields are errors, not silently dropped: see the schemas' additionalProperties.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setErrorHandler((err: FastifyError | DomainError | Error, req, reply) => {
    if (err instanceof DomainError) {
      return reply.status(STATUS[err.code]).send(errorBody(err.code, err.message, err.details));
    }
    const fe = err as FastifyError;
    if (fe.validation) {
      const first = fe.validation[0];
      const field =
        (first?.params as { missingProperty?: string; additionalProperty?: string } | undefined)?.missingProperty ??
        (first?.params as { additionalProperty?: string } | undefined)?.additionalProperty ??
        first?.instancePath?.replace(/^\//, '').replace(/\//g, '.') ??
        '';
      return reply.status(400).send(
        errorBody('validation_failed', `${fe.validationContext ?? 'request'}${field ? `.${field}` : ''}: ${first?.message ?? 'invalid'}`, 
          fe.validation.map((v) => ({ field: v.instancePath || field, message: v.message }))),
      );
    }
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
      const code = fe.statusCode === 413 ? 'payload_too_large' : fe.statusCode === 429 ? 'rate_limited' : 'bad_request';
      return reply.status(fe.statusCode).send(errorBody(code, fe.message));
    }
    req.log.error({ err }, 'unhandled error');
    // Never leak internals (SQL, stack traces) to a client.
    return reply.status(500).send(errorBody('internal', 'internal error'));
  });

  app.setNotFoundHandler((req, reply) => reply.status(404).send(errorBody('not_found', `route ${req.method} ${req.url.split('?')[0]} not found`)));

  await app.register(healthRoutes, { deps });
  return app;
}
