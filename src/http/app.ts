import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyError, type FastifyReply } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Redis } from 'ioredis';
import type { Logger } from '../logging.js';
import type { Sql } from '../db/pool.js';
import { databaseUnavailable } from '../db/tx.js';
import { DomainError, type ErrorCode } from '../domain/errors.js';
import { Ajv } from 'ajv';
import addFormatsPlugin from 'ajv-formats';
import swagger from '@fastify/swagger';
import { metricsPlugin } from './metrics.js';
import { metrics, type StatsCollector } from '../ops/monitoring/metrics.js';
import swaggerUi from '@fastify/swagger-ui';
import { healthRoutes } from './routes/health/routes.js';
import { authPlugin } from './plugins/auth.js';
import { registerRateLimit, type RateLimits } from './plugins/rate-limit.js';
import { authRoutes } from './routes/auth/routes.js';
import { tenantRoutes } from './routes/tenants/routes.js';
import { organizationRoutes } from './routes/organizations/routes.js';
import { userRoutes } from './routes/users/routes.js';
import { auditRoutes } from './routes/audit/routes.js';
import { companyRoutes } from './routes/companies/routes.js';
import { defaultEventRoutes } from './routes/defaults/routes.js';
import { DefaultEventService } from '../services/defaults.js';
import { predictionRoutes } from './routes/predictions/routes.js';
import { analyticsRoutes } from './routes/analytics/routes.js';
import type { AuthService } from '../services/auth.js';
import type { AdminService } from '../services/admin.js';
import type { VerificationService } from '../services/verification.js';
import { verifyRoutes } from './routes/verify/routes.js';
import type { CompanyService } from '../services/companies.js';
import type { PredictionService } from '../services/predictions.js';
import type { AnalyticsService } from '../services/analytics.js';
import type { CacheAside } from '../cache/cache-aside.js';
import type { Cursors } from '../repositories/keyset.js';
import { csrfPlugin, secureCookiesFor } from './plugins/session-cookie.js';
import { defaultWebRoot, registerWebApp, spaFallback } from './static.js';
import { portfolioRoutes } from './routes/portfolio/routes.js';
import { opsRoutes, type OpsRoutesDeps } from './routes/ops/routes.js';
import { PortfolioService } from '../services/portfolio.js';
import { exportRoutes } from './routes/exports/routes.js';
import { ExportService } from '../services/exports.js';
import { alertRoutes } from './routes/alerts/routes.js';
import { jobRoutes, type JobRoutesDeps } from './routes/jobs/routes.js';

export interface ApiServices {
  auth: AuthService;
  admin: AdminService;
  verification: VerificationService;
  companies: CompanyService;
  predictions: PredictionService;
  analytics: AnalyticsService;
  cache: CacheAside;
  /** Signs and checks list cursors (every list route). */
  cursors: Cursors;
}

interface AppDeps {
  log: Logger;
  sql: Sql;
  redis: Redis;
  /** Whether the risk models are loaded (reported by /health/ready). */
  modelsReady?: () => boolean;
  trustProxy?: string[] | false;
  /** The URL browsers reach the app at (PUBLIC_URL); https makes the session cookie Secure. */
  publicUrl?: string;
  bodyLimit?: number;
  services?: ApiServices;
  rateLimits?: RateLimits;
  /** Alert webhooks may point at private and loopback addresses (WEBHOOK_ALLOW_PRIVATE_TARGETS). */
  webhookAllowPrivateTargets?: boolean;
  /** An export nobody reads from for this long is ended (default EXPORT_STALL_MS, a minute). */
  exportStallMs?: number;
  /** Further /api/v1 route plugins (tests' extra routes), registered after the others. */
  apiPlugins?: Array<(api: FastifyInstance) => Promise<void>>;
  /** Database/Redis figures for /metrics (read at most every 15 s). */
  statsCollector?: StatsCollector;
  /** Bearer token /metrics requires (METRICS_TOKEN); absent or null: /metrics is refused. */
  metricsToken?: string | null;
  /** The built web app served at / (SPA). Default: web/dist when it was built; false: none. */
  webRoot?: string | false;
  /** Operations routes (/api/v1/ops/*) and their monitoring connection; absent: not registered. */
  ops?: OpsRoutesDeps;
  /** Bulk uploads and their jobs (/predictions/bulk, /jobs…); absent: not registered (no queue here). */
  bulk?: JobRoutesDeps;
}

const addFormats = addFormatsPlugin as unknown as (ajv: Ajv) => Ajv;

function makeAjv(coerce: boolean): Ajv {
  const ajv = new Ajv({ removeAdditional: false, useDefaults: true, coerceTypes: coerce ? 'array' : false, allErrors: false, strict: false });
  addFormats(ajv);
  return ajv;
}
const strictAjv = makeAjv(false);
const coercingAjv = makeAjv(true);

const DEFAULT_RATE_LIMITS: RateLimits = { default: 1000, predictions: 5000, bulk: 20, admin: 500, anonymous: 300, login: 10 };

const STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
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

function errorBody(code: string, message: string, details?: unknown) {
  return { error: { code, message, ...(details === undefined ? {} : { details }) } };
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The first string (or object key) in a parsed request part that holds NUL or is not
 * well-formed UTF-16, with its path; walked iteratively so a deeply nested body cannot exhaust
 * the stack.
 */
function badText(root: unknown): { field: string; message: string } | null {
  // Paths are built only for the value that fails: a request walks its body on every call.
  interface At {
    v: unknown;
    key: string;
    up: At | null;
  }
  const pathOf = (a: At | null): string => {
    const parts: string[] = [];
    for (let x = a; x && x.up; x = x.up) parts.push(x.key);
    return parts.reverse().join('.');
  };
  const fault = (s: string): string | null => {
    if (s.includes('\u0000')) return 'must not contain NUL characters';
    if (LONE_SURROGATE.test(s)) return 'must be valid Unicode text (lone surrogate)';
    return null;
  };
  const stack: At[] = [{ v: root, key: '', up: null }];
  while (stack.length > 0) {
    const at = stack.pop()!;
    const v = at.v;
    if (typeof v === 'string') {
      const bad = fault(v);
      if (bad) return { field: pathOf(at), message: bad };
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) if ((v[i] !== null && typeof v[i] === 'object') || typeof v[i] === 'string') stack.push({ v: v[i], key: String(i), up: at });
    } else if (v !== null && typeof v === 'object' && !Buffer.isBuffer(v)) {
      for (const k in v) {
        if (!Object.prototype.hasOwnProperty.call(v, k)) continue;
        const bad = fault(k);
        if (bad) return { field: pathOf(at), message: bad };
        const x = (v as Record<string, unknown>)[k];
        if ((x !== null && typeof x === 'object') || typeof x === 'string') stack.push({ v: x, key: k, up: at });
      }
    }
  }
  return null;
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    trustProxy: deps.trustProxy && deps.trustProxy.length > 0 ? deps.trustProxy : false,
    bodyLimit: deps.bodyLimit ?? 1024 * 1024,
    // A URL the router cannot decode (bad percent-encoding) or a path parameter past its length
    // limit: refused in the API's error format rather than Fastify's default one.
    frameworkErrors: (err, _req, reply) => {
      const status = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 414 : 400;
      return (reply as FastifyReply).status(status).send(errorBody('bad_request', err.message));
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Bodies are validated strictly: "25" is not a number and an unknown field is an error, never
  // silently dropped (removeAdditional off). Query strings and path parameters are text on the
  // wire, so there types are coerced ("?limit=10").
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strictAjv : coercingAjv).compile(schema));

  // Text PostgreSQL cannot store (NUL) or that is not well-formed Unicode (a lone surrogate,
  // which would be silently replaced) is refused with the field named, before any handler runs:
  // otherwise the database refuses it mid-request (a 500) or stores something else.
  app.addHook('preValidation', async (req, reply) => {
    for (const [part, value] of [['body', req.body], ['querystring', req.query], ['params', req.params]] as const) {
      const bad = badText(value);
      if (bad) {
        const status = part === 'body' ? 422 : 400;
        return (reply as FastifyReply).status(status).send(errorBody('validation_failed', `${bad.field || part}: ${bad.message}`, [{ field: bad.field, message: bad.message }]));
      }
    }
    return undefined;
  });

  app.setErrorHandler((err: FastifyError | DomainError | Error, req, reply) => {
    if (err instanceof DomainError) {
      const retry = (err.details as { retry_after?: number } | undefined)?.retry_after;
      if (err.code === 'rate_limited' && retry) reply.header('retry-after', String(retry));
      // An outage (the job queue's Redis, a dependency down) is worth retrying shortly.
      if (err.code === 'unavailable') reply.header('retry-after', String(retry ?? 2));
      return reply.status(STATUS[err.code]).send(errorBody(err.code, err.message, err.details));
    }
    const fe = err as FastifyError;
    if (fe.validation) {
      const fieldOf = (v: (typeof fe.validation)[number]) => {
        const params = v.params as { missingProperty?: string; additionalProperty?: string } | undefined;
        const base = (v.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
        const leaf = params?.missingProperty ?? params?.additionalProperty;
        return [base, leaf].filter(Boolean).join('.');
      };
      const first = fe.validation[0]!;
      const field = fieldOf(first);
      const what = first.keyword === 'additionalProperties' ? 'unknown field' : (first.message ?? 'invalid');
      // A well-formed request whose body fails its schema is unprocessable (422); a bad query
      // string or path parameter is a bad request (400).
      const status = fe.validationContext === 'body' ? 422 : 400;
      return reply.status(status).send(
        errorBody('validation_failed', `${field || fe.validationContext || 'request'}: ${what}`,
          fe.validation.map((v) => ({ field: fieldOf(v), message: v.keyword === 'additionalProperties' ? 'unknown field' : v.message }))),
      );
    }
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
      const code = fe.statusCode === 413 ? 'payload_too_large' : fe.statusCode === 429 ? 'rate_limited' : 'bad_request';
      return reply.status(fe.statusCode).send(errorBody(code, fe.message));
    }
    // Two requests creating the same thing at once: the loser learns it exists (409), not a 500.
    if ((err as { code?: string }).code === '23505') return reply.status(409).send(errorBody('conflict', 'it already exists (created by a concurrent request); retry to use it'));
    // The database going away mid-request (restart, failover, network) is an outage the client
    // may retry (503), not a bug (500).
    if (databaseUnavailable(err)) {
      req.log.warn({ err: err.message }, 'database unavailable');
      return reply.status(503).header('retry-after', '2').send(errorBody('unavailable', 'the database is unavailable; try again shortly'));
    }
    req.log.error({ err }, 'unhandled error');
    // Never leak internals (SQL, stack traces) to a client.
    return reply.status(500).send(errorBody('internal', 'internal error'));
  });

  app.setNotFoundHandler((req, reply) => spaFallback(req, reply) ? reply : reply.status(404).send(errorBody('not_found', `route ${req.method} ${req.url.split('?')[0]} not found`)));

  await app.register(swagger, {
    openapi: {
      info: { title: 'AccuNode API', version: '1', description: 'Corporate default-risk predictions. Probabilities are fractions in [0, 1].' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  // First, so its latency histogram sees every route, the refused ones included.
  await app.register(metricsPlugin, { metrics, token: deps.metricsToken ?? null, ...(deps.statsCollector ? { collector: deps.statsCollector } : {}) });
  if (deps.services) await app.register(authPlugin, { auth: deps.services.auth });
  await app.register(csrfPlugin);
  await registerRateLimit(app, deps.redis, deps.rateLimits ?? DEFAULT_RATE_LIMITS, (policy) => metrics.rateLimitRejections.inc({ policy }));
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(healthRoutes, { deps });
  const services = deps.services;
  if (services) {
    await app.register(
      async (api) => {
        await api.register(authRoutes, { auth: services.auth, admin: services.admin, secureCookies: secureCookiesFor(deps.publicUrl), verification: services.verification });
        await api.register(verifyRoutes, { verification: services.verification });
        await api.register(tenantRoutes, { admin: services.admin });
        await api.register(organizationRoutes, { admin: services.admin });
        await api.register(userRoutes, { admin: services.admin });
        await api.register(auditRoutes, { admin: services.admin });
        await api.register(companyRoutes, { companies: services.companies, ratingScale: services.analytics.ratingScale });
        await api.register(defaultEventRoutes, { defaults: new DefaultEventService({ sql: deps.sql }) });
        await api.register(predictionRoutes, { predictions: services.predictions });
        if (deps.bulk) await api.register(jobRoutes, { deps: deps.bulk });
        await api.register(analyticsRoutes, { analytics: services.analytics });
        await api.register(portfolioRoutes, { portfolio: new PortfolioService({ sql: deps.sql, cursors: services.cursors }) });
        await api.register(exportRoutes, { exports: new ExportService({ sql: deps.sql, explain: (kind, values) => services.predictions.explain(kind, values), ratingScale: services.analytics.ratingScale, ...(deps.exportStallMs ? { stallMs: deps.exportStallMs } : {}) }) });
        await api.register(alertRoutes, { sql: deps.sql, allowPrivateTargets: deps.webhookAllowPrivateTargets ?? false });
        if (deps.ops) await api.register(opsRoutes, { deps: deps.ops });
        for (const plugin of deps.apiPlugins ?? []) await plugin(api);
      },
      { prefix: '/api/v1' },
    );
  }
  const webRoot = deps.webRoot === undefined ? defaultWebRoot() : deps.webRoot;
  if (webRoot) await registerWebApp(app, webRoot);
  return app;
}
