import type { FastifyInstance, FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import type { Redis } from 'ioredis';
import { keys } from '../../cache/keys.js';
import { ReservingRateLimitStore } from '../../cache/rate-limit-store.js';
import type { RateLimitClass } from './auth.js';

export interface RateLimits {
  default: number;
  predictions: number;
  bulk: number;
  admin: number;
  anonymous: number;
  login: number;
}

/** The spec's endpoint: method and route pattern, so /users/1 and /users/2 share a counter. */
function endpointOf(req: FastifyRequest): string {
  return `${req.method} ${req.routeOptions.url ?? req.url.split('?')[0]}`;
}

/**
 * Every route is limited, per hour, in Redis: `rate_limit:{user_id}:{endpoint}` for signed-in
 * callers, `rate_limit:ip:{address}:{endpoint}` otherwise and on the anonymous auth routes. The
 * address is req.ip: the client as TRUST_PROXY lets Fastify resolve it. The counting is atomic Lua
 * in Redis; a signed-in caller's requests are reserved a share at a time, so most requests need
 * no round trip and the limit can only come out tighter, never looser (cache/rate-limit-store.ts).
 * Limits come from the route's class. The hook runs on onRequest, after the auth hook, before the
 * body is parsed.
 */
export async function registerRateLimit(app: FastifyInstance, redis: Redis, limits: RateLimits, onExceeded?: (cls: string) => void) {
  const classOf = (req: FastifyRequest): RateLimitClass => {
    const cls = req.routeOptions.config?.rateLimitClass;
    if (cls === 'login') return 'login';
    if (cls === 'health') return 'health';
    if (!req.principal) return 'anonymous';
    return cls ?? 'default';
  };
  const store = new ReservingRateLimitStore(redis, keys.rateLimitPrefix);
  await app.register(rateLimit, {
    global: true,
    hook: 'onRequest',
    // The plugin constructs its store from a class; this one hands it the store built above.
    store: class {
      constructor() {
        return store;
      }
    } as never,
    timeWindow: 3_600_000,
    enableDraftSpec: true,
    // A Redis outage must not take the API down with it.
    skipOnError: true,
    // Anonymous routes (login, register: the 'login' class) count by IP whatever Authorization
    // header comes with them: keyed by the token's user, one address could rotate
    // self-registered tokens into a fresh budget of password guesses each.
    keyGenerator: (req) => {
      const subject = req.principal && classOf(req) !== 'login' ? req.principal.userId : `ip:${req.ip}`;
      return `${subject}:${endpointOf(req)}`;
    },
    max: (req) => {
      const cls = classOf(req);
      switch (cls) {
        case 'login':
          return limits.login * 3; // per IP; the per-account limit is the tight one
        case 'health':
          return Math.max(limits.anonymous * 20, 6000);
        case 'anonymous':
          return limits.anonymous;
        default:
          return limits[cls];
      }
    },
    onExceeded: (req) => onExceeded?.(classOf(req)),
    errorResponseBuilder: (_req, ctx) => {
      const err = new Error(`rate limit exceeded: ${ctx.max} requests per hour; retry in ${Math.ceil(ctx.ttl / 1000)} s`) as Error & { statusCode: number };
      err.statusCode = 429;
      return err;
    },
  });
}
