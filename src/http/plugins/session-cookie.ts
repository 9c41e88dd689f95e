// The web app's session cookie and its CSRF guard.
//
// `POST /auth/login?cookie=true` puts the session token in an httpOnly cookie (script never sees
// it) with SameSite=Strict, Path=/ and Secure when the request came over https or the configured
// public URL (PUBLIC_URL) is https: behind a TLS-terminating proxy that is not in TRUST_PROXY the
// request looks like plain http, yet the browser is on https and the cookie must never travel
// over plain http. Browsers send a
// cookie on their own, so a cookie-authenticated request that changes something must also prove
// it came from our own page: it must carry `X-Requested-With` (a custom header a cross-site form
// cannot set, and a cross-site fetch cannot send without a CORS preflight this API never grants)
// and, when the browser sends an Origin, that Origin must be this host. Bearer-token requests are
// not affected: a token is never sent automatically.
import type { FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { DomainError } from '../../domain/errors.js';
import { SESSION_COOKIE } from './auth.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const CSRF_HEADER = 'x-requested-with';

function isHttps(req: FastifyRequest): boolean {
  return req.protocol === 'https';
}

/** Whether a public URL (PUBLIC_URL) makes every session cookie Secure. */
export function secureCookiesFor(publicUrl: string | undefined): boolean {
  if (!publicUrl) return false;
  try {
    return new URL(publicUrl).protocol === 'https:';
  } catch {
    return false;
  }
}

function cookieAttributes(req: FastifyRequest, alwaysSecure: boolean): string {
  return `Path=/; HttpOnly; SameSite=Strict${alwaysSecure || isHttps(req) ? '; Secure' : ''}`;
}

export function setSessionCookie(reply: FastifyReply, req: FastifyRequest, token: string, expiresAt: Date, alwaysSecure = false): void {
  const maxAge = Math.max(0, Math.floor((expiresAt.getTime() - Date.now()) / 1000));
  reply.header('set-cookie', `${SESSION_COOKIE}=${encodeURIComponent(token)}; ${cookieAttributes(req, alwaysSecure)}; Max-Age=${maxAge}; Expires=${expiresAt.toUTCString()}`);
}

export function clearSessionCookie(reply: FastifyReply, req: FastifyRequest, alwaysSecure = false): void {
  reply.header('set-cookie', `${SESSION_COOKIE}=; ${cookieAttributes(req, alwaysSecure)}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT`);
}

/** "example.com:443" and "example.com" are the same site (the URL parser drops default ports). */
function stripDefaultPort(host: string): string {
  return host.toLowerCase().replace(/:(80|443)$/, '');
}

function hasSessionCookie(req: FastifyRequest): boolean {
  const c = req.headers.cookie;
  if (!c) return false;
  return c.split(';').some((p) => {
    const [k, v] = p.trim().split('=');
    return k === SESSION_COOKIE && !!v;
  });
}

/**
 * Refuses (403) a state-changing request that relies on the session cookie without the custom
 * header, or from another origin. Runs on every route, before the handler.
 */
export const csrfPlugin = fp(async (app) => {
  app.addHook('onRequest', async (req) => {
    if (SAFE_METHODS.has(req.method)) return;
    if (req.headers.authorization) return; // bearer clients are not exposed to CSRF
    if (!hasSessionCookie(req)) return;
    const xrw = req.headers[CSRF_HEADER];
    if (typeof xrw !== 'string' || xrw.trim() === '') {
      throw new DomainError('forbidden', 'csrf: a request authenticated by the session cookie must send the X-Requested-With header');
    }
    const origin = req.headers.origin;
    if (typeof origin === 'string' && origin !== 'null') {
      let host: string | null = null;
      try {
        host = new URL(origin).host;
      } catch {
        host = null;
      }
      if (!host || stripDefaultPort(host) !== stripDefaultPort(req.host ?? req.headers.host ?? '')) throw new DomainError('forbidden', `csrf: origin ${origin} is not this site`);
    } else if (origin === 'null') {
      throw new DomainError('forbidden', 'csrf: opaque origin');
    }
  });
});
