import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Sql } from './pool.js';

const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../migrations');
const NO_TX_MARKER = /^--\s*accunode:no-transaction\b/;
// Any constant works; it only has to be the same for every AccuNode process.
const MIGRATION_LOCK_KEY = 727_274_001;

interface Migration {
  version: number;
  name: string;
  file: string;
  sql: string;
  checksum: string;
  transactional: boolean;
}

interface MigrationStatus {
  version: number;
  name: string;
  state: 'applied' | 'pending' | 'changed';
  applied_at: Date | null;
}

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const files = readdirSync(dir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort();
  const seen = new Set<number>();
  return files.map((file) => {
    const version = Number(file.slice(0, 4));
    if (seen.has(version)) throw new Error(`two migrations share version ${version}`);
    seen.add(version);
    const sql = readFileSync(path.join(dir, file), 'utf8');
    return {
      version,
      name: file.replace(/^\d{4}_/, '').replace(/\.sql$/, ''),
      file,
      sql,
      checksum: createHash('sha256').update(sql).digest('hex'),
      transactional: !NO_TX_MARKER.test(sql),
    };
  });
}

/**
 * Splits a non-transactional migration into statements. Those files hold simple DDL (no
 * dollar-quoted bodies, enforced here), so a statement ends at a semicolon that ends a line.
 */
export function splitStatements(sql: string): string[] {
  if (sql.includes('$$')) throw new Error('non-transactional migrations may not contain $$ bodies');
  const withoutComments = sql
    .split('\n')
    .filter((l) => !l.trim().startsWith('--'))
    .join('\n');
  return withoutComments
    .split(/;\s*$/m)
    .map((s) => s.trim())
    .filter(Boolean);
}

async function ensureTable(sql: Sql): Promise<void> {
  await sql`
    CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      checksum TEXT NOT NULL,
      applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
      duration_ms INTEGER NOT NULL
    )`;
}

export async function migrationStatus(sql: Sql, dir = MIGRATIONS_DIR): Promise<MigrationStatus[]> {
  const migrations = loadMigrations(dir);
  const [exists] = await sql<{ t: string | null }[]>`select to_regclass('public.schema_migrations')::text as t`;
  const applied = new Map<number, { checksum: string; applied_at: Date }>();
  if (exists?.t) {
    const rows = await sql<{ version: number; checksum: string; applied_at: Date }[]>`
      select version, checksum, applied_at from schema_migrations`;
    for (const r of rows) applied.set(r.version, r);
  }
  return migrations.map((m) => {
    const a = applied.get(m.version);
    return {
      version: m.version,
      name: m.name,
      state: !a ? 'pending' : a.checksum === m.checksum ? 'applied' : 'changed',
      applied_at: a?.applied_at ?? null,
    };
  });
}

interface MigrateResult {
  applied: Array<{ version: number; name: string; duration_ms: number }>;
  alreadyApplied: number;
}

/**
 * Applies pending migrations. Safe when several processes migrate at once: one holds an
 * advisory lock, the others poll for it (a blocking pg_advisory_lock would hold a snapshot
 * that CREATE INDEX CONCURRENTLY in the lock holder waits for: an undetected deadlock), then
 * find nothing left to do.
 */
export async function migrate(
  adminSql: Sql,
  opts: { dir?: string; log?: (msg: string) => void; lockTimeoutMs?: number } = {},
): Promise<MigrateResult> {
  const log = opts.log ?? (() => {});
  const migrations = loadMigrations(opts.dir);
  const conn = await adminSql.reserve();
  try {
    const deadline = Date.now() + (opts.lockTimeoutMs ?? 300_000);
    for (;;) {
      const [row] = await conn<{ ok: boolean }[]>`select pg_try_advisory_lock(${MIGRATION_LOCK_KEY}) as ok`;
      if (row?.ok) break;
      if (Date.now() > deadline) throw new Error('timed out waiting for another process to finish migrating');
      await new Promise((r) => setTimeout(r, 200));
    }
    try {
      await conn`set lock_timeout = '60s'`;
      await ensureTable(conn as unknown as Sql);
      const rows = await conn<{ version: number; checksum: string }[]>`select version, checksum from schema_migrations`;
      const done = new Map(rows.map((r) => [r.version, r.checksum]));
      const result: MigrateResult = { applied: [], alreadyApplied: 0 };
      for (const m of migrations) {
        const prior = done.get(m.version);
        if (prior !== undefined) {
          if (prior !== m.checksum) {
            throw new Error(`migration ${m.file} was changed after it was applied (checksum differs); add a new migration instead`);
          }
          result.alreadyApplied++;
          continue;
        }
        const started = Date.now();
        if (m.transactional) {
          await conn.unsafe('BEGIN');
          try {
            await conn.unsafe(m.sql).simple();
            await conn`insert into schema_migrations (version, name, checksum, duration_ms)
                       values (${m.version}, ${m.name}, ${m.checksum}, ${Date.now() - started})`;
            await conn.unsafe('COMMIT');
          } catch (err) {
            await conn.unsafe('ROLLBACK').catch(() => {});
            throw new Error(`migration ${m.file} failed: ${(err as Error).message}`, { cause: err });
          }
        } else {
          for (const stmt of splitStatements(m.sql)) {
            await dropInvalidIndex(conn as unknown as Sql, stmt);
            try {
              await conn.unsafe(stmt);
            } catch (err) {
              throw new Error(`migration ${m.file} failed: ${(err as Error).message}`, { cause: err });
            }
          }
          await conn`insert into schema_migrations (version, name, checksum, duration_ms)
                     values (${m.version}, ${m.name}, ${m.checksum}, ${Date.now() - started})`;
        }
        const duration_ms = Date.now() - started;
        log(`applied ${m.file} (${duration_ms} ms)`);
        result.applied.push({ version: m.version, name: m.name, duration_ms });
      }
      return result;
    } finally {
      await conn`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.catch(() => {});
    }
  } finally {
    conn.release();
  }
}

/** An interrupted CREATE INDEX CONCURRENTLY leaves an INVALID index that IF NOT EXISTS would keep. */
async function dropInvalidIndex(conn: Sql, stmt: string): Promise<void> {
  const m = /CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+IF\s+NOT\s+EXISTS\s+([a-z0-9_]+)/i.exec(stmt);
  if (!m?.[1]) return;
  const [row] = await conn<{ invalid: boolean }[]>`
    select not i.indisvalid as invalid from pg_index i join pg_class c on c.oid = i.indexrelid
    where c.relname = ${m[1]} and c.relnamespace = 'public'::regnamespace`;
  if (row?.invalid) await conn.unsafe(`DROP INDEX CONCURRENTLY IF EXISTS ${m[1]}`);
}
