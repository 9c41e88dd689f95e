import { createHash } from 'node:crypto';
import { loadMigrations } from '../../src/db/migrate.js';

// Tests run against real servers: the machine's PostgreSQL and Redis unless these say otherwise
// (the scale-out suite points them at PgBouncer, TLS, a cluster...).
export const TEST_PG_ADMIN_URL = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const TEST_ROLE_PASSWORD = 'accunode-test-password';

/** The template's name changes whenever a migration does, so a stale template is never used. */
export function templateName(): string {
  const h = createHash('sha256');
  for (const m of loadMigrations()) h.update(m.file + m.checksum);
  return `accunode_tpl_${h.digest('hex').slice(0, 12)}`;
}

export function urlFor(database: string, user?: string, password?: string): string {
  const u = new URL(TEST_PG_ADMIN_URL);
  u.pathname = '/' + database;
  if (user) {
    u.username = user;
    u.password = password ?? '';
  }
  return u.toString();
}

/**
 * host:port of a pooler (PgBouncer in transaction mode) that the application roles connect
 * through (npm run test:pgbouncer); the owner connection (CREATE DATABASE, set-up, assertions)
 * stays direct. Behind it named prepared statements are off (?prepare=false).
 */
export const TEST_APP_PG_PROXY = process.env.TEST_APP_PG_PROXY || undefined;

/** urlFor, through TEST_APP_PG_PROXY when one is set. */
export function appUrlFor(database: string, user: string, password?: string): string {
  const url = urlFor(database, user, password);
  if (!TEST_APP_PG_PROXY) return url;
  const u = new URL(url);
  const [host, port] = TEST_APP_PG_PROXY.split(':');
  u.hostname = host!;
  u.port = port ?? '6432';
  u.searchParams.set('prepare', 'false');
  return u.toString();
}

/**
 * The app_user URL for LISTEN/NOTIFY (session revocations): always direct to PostgreSQL, like
 * DATABASE_LISTEN_URL in a deployment, since LISTEN cannot work through transaction pooling.
 */
export function listenUrlFor(database: string, user = 'app_user', password = TEST_ROLE_PASSWORD): string {
  return urlFor(database, user, password);
}
