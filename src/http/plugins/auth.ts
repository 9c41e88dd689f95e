import type { FastifyReply, FastifyRequest, preHandlerHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { isRoleAtLeast, type Role } from '../../domain/access.js';
import { DomainError } from '../../domain/errors.js';
import type { Principal } from '../../domain/principal.js';
import type { AuthService } from '../../services/auth.js';

export type RateLimitClass = 'default' | 'predictions' | 'bulk' | 'admin' | 'anonymous' | 'login' | 'health';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig {
    rateLimitClass?: RateLimitClass;
  }
}

export const SESSION_COOKIE = 'accunode_session';

function tokenOf(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (h) {
    const m = /^Bearer\s+(\S+)$/i.exec(h);
    return m?.[1] ?? null;
  }
  // The web app may keep the token in an httpOnly cookie instead of script-visible memory.
  const cookie = req.headers.cookie;
  if (cookie) {
    for (const part of cookie.split(';')) {
      const [k, v] = part.trim().split('=');
      if (k === SESSION_COOKIE && v) return decodeURIComponent(v);
    }
  }
  return null;
}

/**
 * Resolves the caller on every request (before rate limiting, so limits key on the user). An
 * invalid token does not fail here: the request continues as anonymous and is counted by IP;
 * routes that need a user reject it in requireAuth.
 */
export const authPlugin = fp<{ auth: AuthService }>(async (app, { auth }) => {
  app.decorateRequest('principal', undefined);
  app.addHook('onRequest', async (req) => {
    const token = tokenOf(req);
    if (!token) return;
    const p = await auth.authenticate(token);
    if (p) req.principal = p;
  });
});

export const requireAuth: preHandlerHookHandler = async (req: FastifyRequest, _reply: FastifyReply) => {
  if (!req.principal) throw new DomainError('unauthorized', 'sign in first (Authorization: Bearer <token>)');
};

export function requireRole(min: Role): preHandlerHookHandler {
  return async (req) => {
    if (!req.principal) throw new DomainError('unauthorized', 'sign in first (Authorization: Bearer <token>)');
    if (!isRoleAtLeast(req.principal.role, min)) throw new DomainError('forbidden', `requires role ${min} or above`);
  };
}

export function principal(req: FastifyRequest): Principal {
  if (!req.principal) throw new DomainError('unauthorized', 'sign in first');
  return req.principal;
}
