// The web app (web/dist, built by `npm run build`) served at / from the same origin as the API.
// Files are served as they are; any other GET that is not the API, the docs, health or metrics
// and that asks for HTML gets index.html, so the single-page app's own routes load on refresh.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fastifyStatic from '@fastify/static';

/** web/dist next to the package root (from src/http or dist/http alike), when it was built. */
export function defaultWebRoot(): string | null {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const dir = path.resolve(here, '..', '..', 'web', 'dist');
  return existsSync(path.join(dir, 'index.html')) ? dir : null;
}

const NOT_SPA = /^\/(api|docs|health|metrics)(\/|$|\?)/;

// The app's own pages only: scripts and styles from this origin, inline style attributes (the
// charts set them), images from this origin or data: URLs, no framing, no plugins.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'";

function securityHeaders(reply: FastifyReply | { setHeader(k: string, v: string): void }, html: boolean): void {
  const set = (k: string, v: string) => ('setHeader' in reply ? reply.setHeader(k, v) : (reply as FastifyReply).header(k, v));
  set('x-content-type-options', 'nosniff');
  set('referrer-policy', 'same-origin');
  if (html) {
    set('content-security-policy', CSP);
    set('x-frame-options', 'DENY');
    set('cache-control', 'no-cache');
  }
}

export async function registerWebApp(app: FastifyInstance, root: string): Promise<void> {
  // Page loads are not API calls: the files (and the page fallback) count against the generous
  // health-check allowance, never against a user's or an anonymous caller's hourly API budget.
  // Only the routes registered from here on (the static ones) are touched.
  app.addHook('onRoute', (opts) => {
    opts.config = { ...(opts.config ?? {}), rateLimitClass: 'health' };
  });
  await app.register(fastifyStatic, {
    root,
    prefix: '/',
    wildcard: true,
    index: ['index.html'],
    decorateReply: true,
    cacheControl: false, // set below: fingerprinted assets forever, everything else revalidated
    setHeaders: (res, file) => {
      const html = file.endsWith('.html');
      securityHeaders(res, html);
      // Vite fingerprints everything under assets/: cache it for good.
      res.setHeader('cache-control', file.includes(`${path.sep}assets${path.sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache');
    },
  });
}

/** For the not-found handler: answers a page route with index.html; false when it is not one. */
export function spaFallback(req: FastifyRequest, reply: FastifyReply): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  if (NOT_SPA.test(req.url)) return false;
  const last = req.url.split('?')[0]!.split('/').pop() ?? '';
  if (last.includes('.')) return false; // a missing file, not a page
  const accept = req.headers.accept ?? '';
  if (accept && !accept.includes('text/html') && !accept.includes('*/*')) return false;
  if (typeof (reply as FastifyReply & { sendFile?: unknown }).sendFile !== 'function') return false;
  securityHeaders(reply, true);
  void reply.type('text/html; charset=utf-8').sendFile('index.html');
  return true;
}
