import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { createPool, type Sql } from '../../src/db/pool.js';
import { loadMigrations, migrate, migrationStatus, splitStatements } from '../../src/db/migrate.js';
import { TEST_PG_ADMIN_URL, urlFor } from '../helpers/env.js';

const CLI = ['--import', 'tsx', 'src/entrypoints/cli.ts'];

function runCli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...CLI, ...args], { env: { ...process.env, ...env }, cwd: process.cwd() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const admin = postgres(TEST_PG_ADMIN_URL, { max: 1, onnotice: () => {} });
const names: string[] = [];
async function emptyDb(): Promise<string> {
  const name = `accunode_t_${Math.floor(Date.now() / 1000)}_mig_${Math.random().toString(36).slice(2, 10)}`;
  await admin.unsafe(`CREATE DATABASE "${name}"`);
  names.push(name);
  return name;
}

afterAll(async () => {
  for (const n of names) await admin.unsafe(`DROP DATABASE IF EXISTS "${n}" WITH (FORCE)`);
  await admin.end();
});

describe('migrations', () => {
  let sql: Sql;
  let name: string;
  beforeAll(async () => {
    name = await emptyDb();
    sql = createPool(urlFor(name), { max: 2 });
  });
  afterAll(async () => {
    await sql.end();
  });

  it('apply to an empty database, then are idempotent', async () => {
    const before = await migrationStatus(sql);
    expect(before.every((s) => s.state === 'pending')).toBe(true);
    const first = await migrate(sql);
    expect(first.applied.map((a) => a.version)).toEqual(loadMigrations().map((m) => m.version));
    const second = await migrate(sql);
    expect(second.applied).toEqual([]);
    expect(second.alreadyApplied).toBe(loadMigrations().length);
    const after = await migrationStatus(sql);
    expect(after.every((s) => s.state === 'applied')).toBe(true);
  });

  it('creates the spec tables with their columns, UNIQUE keys and indexes', async () => {
    const cols = await sql<{ table_name: string; column_name: string; data_type: string; numeric_precision: number | null; numeric_scale: number | null; column_default: string | null }[]>`
      select table_name, column_name, data_type, numeric_precision, numeric_scale, column_default
      from information_schema.columns where table_schema = 'public'`;
    const col = (t: string, c: string) => cols.find((r) => r.table_name === t && r.column_name === c);
    for (const c of ['long_term_debt_to_total_capital', 'total_debt_to_ebitda', 'net_income_margin', 'ebit_to_interest_expense', 'return_on_assets', 'probability', 'confidence', 'logistic_probability', 'step_probability']) {
      expect(col('annual_predictions', c), c).toMatchObject({ data_type: 'numeric', numeric_precision: 10, numeric_scale: 6 });
    }
    for (const c of ['current_ratio', 'quick_ratio', 'debt_to_equity', 'inventory_turnover', 'receivables_turnover', 'working_capital_to_total_assets', 'ensemble_probability', 'gbm_probability']) {
      expect(col('quarterly_predictions', c), c).toMatchObject({ data_type: 'numeric', numeric_precision: 10, numeric_scale: 6 });
    }
    expect(col('annual_predictions', 'access_level')?.column_default).toContain("'personal'");
    expect(col('tenants', 'is_active')?.column_default).toBe('true');
    expect(col('annual_predictions', 'model_version')).toBeDefined();
    expect(col('companies', 'access_level')).toBeDefined();
    expect(col('companies', 'created_by')).toBeDefined();
    for (const t of ['user_sessions', 'audit_logs', 'bulk_upload_jobs', 'annual_predictions_archive', 'quarterly_predictions_archive']) {
      expect(cols.some((r) => r.table_name === t), t).toBe(true);
    }
    const idx = (await sql<{ indexname: string; indexdef: string }[]>`select indexname, indexdef from pg_indexes where schemaname = 'public'`);
    const names = idx.map((i) => i.indexname);
    for (const n of ['idx_organizations_tenant_id', 'idx_users_email', 'idx_users_tenant_org', 'idx_companies_symbol', 'idx_companies_sector',
      'idx_companies_org', 'idx_annual_predictions_year', 'idx_quarterly_predictions_period',
      'idx_companies_active', 'idx_users_active_verified',
      'idx_companies_name_search', 'idx_users_email_lower', 'uq_companies_symbol_system', 'uq_companies_symbol_organization', 'uq_companies_symbol_personal',
      // Keyset indexes (0040): per scope and risk level, and global, for each sort.
      'idx_annual_predictions_scope_created', 'idx_annual_predictions_scope_pd', 'idx_annual_predictions_scope_year',
      'idx_annual_predictions_created', 'idx_annual_predictions_pd', 'idx_annual_predictions_year_id',
      'idx_quarterly_predictions_scope_created', 'idx_quarterly_predictions_scope_pd', 'idx_quarterly_predictions_scope_period']) {
      expect(names, n).toContain(n);
    }
    // DEVIATION (0040): spec indexes that duplicated the UNIQUE constraint's index, or that only
    // the raw-row analytics (now rollups) read, are gone.
    for (const n of ['idx_annual_predictions_company', 'idx_annual_predictions_company_year', 'idx_annual_predictions_risk', 'idx_predictions_analytics',
      'idx_quarterly_predictions_company', 'idx_quarterly_predictions_company_period', 'idx_quarterly_predictions_analytics']) {
      expect(names, n).not.toContain(n);
    }
    expect(idx.find((i) => i.indexname === 'idx_companies_name_search')?.indexdef).toMatch(/gin \(to_tsvector\('english'/);
    const valid = await sql<{ n: number }[]>`select count(*)::int as n from pg_index where not indisvalid`;
    expect(valid[0]!.n).toBe(0);
    const uniques = await sql<{ def: string }[]>`
      select pg_get_constraintdef(oid) as def from pg_constraint where contype = 'u' and conrelid in ('annual_predictions'::regclass, 'quarterly_predictions'::regclass)`;
    expect(uniques.map((u) => u.def).sort()).toEqual(['UNIQUE (company_id, reporting_year)', 'UNIQUE (company_id, reporting_year, reporting_quarter)']);
  });

  it('enforces the CHECK constraints the spec implies', async () => {
    const [t] = await sql<{ id: string }[]>`insert into tenants (name) values ('t') returning id`;
    const [c] = await sql<{ id: string }[]>`insert into companies (symbol, name, access_level) values ('ACME', 'Acme', 'system') returning id`;
    const bad = [
      sql`insert into annual_predictions (company_id, reporting_year, probability, risk_level) values (${c!.id}, '24', 0.1, 'LOW')`,
      sql`insert into annual_predictions (company_id, reporting_year, probability, risk_level) values (${c!.id}, '2024', 1.5, 'LOW')`,
      sql`insert into annual_predictions (company_id, reporting_year, probability, risk_level) values (${c!.id}, '2024', 0.1, 'EXTREME')`,
      sql`insert into quarterly_predictions (company_id, reporting_year, reporting_quarter, ensemble_probability, risk_level) values (${c!.id}, '2024', 'Q5', 0.1, 'LOW')`,
      sql`insert into users (email, username, role) values ('a@b.c', 'a', 'god')`,
      sql`insert into companies (symbol, name, access_level) values ('X', 'x', 'public')`,
    ];
    for (const q of bad) await expect(q).rejects.toThrow(/check constraint/);
    expect(t).toBeDefined();
    // updated_at is maintained by trigger
    await sql`update companies set updated_at = '2000-01-01' where id = ${c!.id}`;
    const [row] = await sql<{ updated_at: Date }[]>`select updated_at from companies where id = ${c!.id}`;
    expect(row!.updated_at.getUTCFullYear()).toBeGreaterThan(2000);
    // emails are unique case-insensitively
    await sql`insert into users (email, username, role) values ('Bob@X.com', 'bob', 'user')`;
    await expect(sql`insert into users (email, username, role) values ('bob@x.com', 'bob2', 'user')`).rejects.toThrow(/idx_users_email_lower/);
  });

  it('splits non-transactional files into statements', () => {
    expect(splitStatements('-- c\nCREATE INDEX a ON t(x);\n\nCREATE INDEX b\nON t(y);\n')).toEqual(['CREATE INDEX a ON t(x)', 'CREATE INDEX b\nON t(y)']);
    expect(() => splitStatements('DO $$ BEGIN END $$;')).toThrow();
  });

  it('two concurrent `db migrate` processes end with one correct schema', async () => {
    const fresh = await emptyDb();
    const env = { DATABASE_ADMIN_URL: urlFor(fresh), DATABASE_URL: urlFor(fresh, 'app_user', 'x'), LOG_LEVEL: 'warn', ACCUNODE_DATA_DIR: '/tmp/accunode-test-data' };
    const [a, b] = await Promise.all([runCli(['db', 'migrate', '--json'], env), runCli(['db', 'migrate', '--json'], env)]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const applied = [JSON.parse(a.stdout).applied.length, JSON.parse(b.stdout).applied.length].sort();
    expect(applied).toEqual([0, loadMigrations().length]);
    const check = createPool(urlFor(fresh), { max: 1 });
    try {
      const rows = await check<{ n: number }[]>`select count(*)::int as n from schema_migrations`;
      expect(rows[0]!.n).toBe(loadMigrations().length);
      const invalid = await check<{ n: number }[]>`select count(*)::int as n from pg_index where not indisvalid`;
      expect(invalid[0]!.n).toBe(0);
    } finally {
      await check.end();
    }
    const status = await runCli(['db', 'status', '--json'], env);
    expect(JSON.parse(status.stdout).every((s: { state: string }) => s.state === 'applied')).toBe(true);
  });
});
