// End-to-end harness: the real API (buildApp + app.listen on a free port) serving the built web
// app, a bulk worker in-process on a per-run queue prefix, and Debian's Chromium driven by
// playwright-core (never a downloaded browser).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import type { BrowserContext, Page } from 'playwright-core';
import { buildApp } from '../../src/http/app.js';
import { OutboxMailer } from '../../src/services/mailer.js';
import { buildServices } from '../../src/entrypoints/services.js';
import { startWorkers, type RunningWorkers } from '../../src/entrypoints/worker.js';
import { BulkUploadService } from '../../src/services/bulk/service.js';
import { opsRoutes } from '../../src/http/routes/ops/routes.js';
import { createQueueConnection } from '../../src/queue/connection.js';
import { createProducers, type Producers } from '../../src/queue/producers.js';
import { createPool, type Sql } from '../../src/db/pool.js';
import { DEFAULT_OPS_CONFIG } from '../../src/ops/types.js';
import { createLogger } from '../../src/logging.js';
import type { TestDatabase } from '../helpers/db.js';
import { TEST_REDIS_URL } from '../helpers/env.js';
import { engineOnce } from '../helpers/app.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOTS = path.resolve('test-artifacts', 'screenshots');
const WEB_DIST = path.resolve('web', 'dist');

/**
 * Whether the browser tests can run. In CI a missing Chromium is an error (CI installs it);
 * elsewhere the tests are skipped with a message saying how to get it.
 */
export function chromiumStatus(): { run: boolean; message?: string } {
  if (existsSync(CHROMIUM)) return { run: true };
  const message = `Chromium not found at ${CHROMIUM}: install it with \`apt-get install -y chromium\` (or set CHROMIUM_PATH)`;
  if (process.env.CI) throw new Error(`${message}. The end-to-end tests cannot run in CI without it.`);
  console.warn(`[e2e] skipping the browser tests: ${message}`);
  return { run: false, message };
}

/** The built web app; built here (a second or two) when a checkout has not built it yet. */
export function ensureWebBuild(): string {
  // NODE_ENV=production as `npm run build:web`: under vitest (NODE_ENV=test) vite would bundle
  // React's development build, whose double-run effects change what the sign-in redirect does.
  if (!existsSync(path.join(WEB_DIST, 'index.html')))
    execFileSync(process.execPath, [path.resolve('node_modules/vite/bin/vite.js'), 'build', 'web', '--logLevel', 'warn'], { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'production' } });
  return WEB_DIST;
}

export interface Server {
  url: string;
  app: FastifyInstance;
  /** The e-mails the app sent (the development outbox: one .eml per message). */
  outbox: string;
  close(): Promise<void>;
}

export async function startServer(db: TestDatabase): Promise<Server> {
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 2, enableAutoPipelining: true });
  const engine = await engineOnce();
  const outbox = mkdtempSync(path.join(os.tmpdir(), 'accunode-e2e-outbox-'));
  const services = buildServices({ sql: db.appSql, redis, log, engine, mailer: new OutboxMailer(outbox, 'AccuNode <e2e@accunode.local>', log) }, { SESSION_TTL_SECONDS: 86_400, SESSION_ABSOLUTE_TTL_SECONDS: 30 * 86_400, RATE_LIMIT_LOGIN: 1000 });
  const prefix = `{accunode-e2e-${randomBytes(4).toString('hex')}}`;
  const connection = createQueueConnection(TEST_REDIS_URL, 'e2e');
  const producers: Producers = createProducers(connection, prefix);
  const uploadDir = mkdtempSync(path.join(os.tmpdir(), 'accunode-e2e-uploads-'));
  const monitorSql: Sql = createPool(db.urlAs('monitoring_user'), { max: 2 });
  const revocations = await services.auth.listenForRevocations(db.appSql);
  const app = await buildApp({
    log,
    sql: db.appSql,
    redis,
    services,
    modelsReady: () => true,
    rateLimits: { default: 100_000, predictions: 100_000, bulk: 100_000, admin: 100_000, anonymous: 100_000, login: 100_000 },
    webRoot: ensureWebBuild(),
    // The screens' webhook form is exercised with a loopback address.
    webhookAllowPrivateTargets: true,
    bulk: { uploads: new BulkUploadService({ sql: db.appSql, producers, uploadDir, cursors: services.cursors }), uploadDir, maxUploadBytes: 10 * 1024 * 1024 },
    apiPlugins: [
      async (api) => {
        await api.register(opsRoutes, { deps: { sql: db.appSql, redis, monitor: { sql: monitorSql, redis, config: DEFAULT_OPS_CONFIG }, readReplicas: 0 } });
      },
    ],
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  const workerConnection = createQueueConnection(TEST_REDIS_URL, 'e2e-worker');
  const workers: RunningWorkers = startWorkers(
    {
      connection: workerConnection,
      prefix,
      sql: db.appSql,
      engine,
      log: createLogger('silent'),
    },
    { queues: ['bulk'], bulk: { chunkRows: 100 } },
  );
  return {
    url,
    app,
    outbox,
    async close() {
      await workers.close();
      await workerConnection.quit().catch(() => {});
      await app.close();
      await revocations.unlisten().catch(() => {});
      await producers.queue('bulk').obliterate({ force: true }).catch(() => {});
      await producers.close();
      await connection.quit().catch(() => {});
      await monitorSql.end({ timeout: 2 });
      redis.disconnect();
      rmSync(uploadDir, { recursive: true, force: true });
    },
  };
}

export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'];

/** A fresh browser profile (its own user-data-dir) per call. */
export async function newBrowser(viewport = { width: 1280, height: 900 }, opts: { locale?: string } = {}): Promise<{ context: BrowserContext; page: Page; errors: string[]; close(): Promise<void> }> {
  const { chromium } = await import('playwright-core');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'accunode-chromium-'));
  const context = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport, acceptDownloads: true, ...(opts.locale ? { locale: opts.locale } : {}) });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return {
    context,
    page,
    errors,
    async close() {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
