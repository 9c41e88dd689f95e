/**
 * Drift over stored predictions, against the real database: overall and per tenant, the window,
 * the model-version filter for the PD, and the stored latest run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateReferenceData, type RiskEngine } from '../../src/risk/index.js';
import { computeModelDrift, latestModelDrift, storeModelDrift } from '../../src/services/model-drift.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { engineOnce } from '../helpers/app.js';
import { runModelDriftJob } from '../../src/jobs/model-drift.js';
import { createProcessor } from '../../src/jobs/processor.js';
import { pino } from 'pino';
import { createMetrics } from '../../src/ops/monitoring/metrics.js';
import { collectModelDrift, modelDriftReading } from '../../src/ops/monitoring/model-drift-metrics.js';

let db: TestDatabase;
let engine: RiskEngine;
let tenantA: string;
let tenantB: string;
const now = new Date('2026-11-30T12:00:00Z');

async function loadAnnual(org: string, user: string, n: number, seed: number, distort: (f: string, v: number) => number | null, createdAt: Date, model = engine.models.annual) {
  const ds = generateReferenceData('annual', n, seed);
  const rows: Array<Record<string, number | string | null>> = [];
  for (let i = 0; i < n; i++) {
    const r: Record<string, number | null> = {};
    ds.fields.forEach((f, j) => {
      const v = ds.columns[j]![i]!;
      const d = Number.isNaN(v) ? null : distort(f, v);
      // Stored ratios are DECIMAL(10,6).
      r[f] = d === null ? null : Math.round(Math.min(9999, Math.max(-9999, d)) * 1e4) / 1e4;
    });
    const p = engine.predictAnnual(r as never);
    rows.push({ ...r, probability: p.probability, risk_level: p.risk_level, model_name: model.name, model_version: model.version });
  }
  const [c0] = await db.adminSql<{ n: number }[]>`select count(*)::int as n from companies`;
  await db.adminSql.begin(async (tx) => {
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]! as Record<string, number | string | null>;
      const [c] = await tx<{ id: string }[]>`
        insert into companies (symbol, name, sector, access_level, organization_id, created_by)
        values (${'C' + (c0!.n + i)}, ${'Company ' + (c0!.n + i)}, 'Industrials', 'organization', ${org}, ${user}) returning id`;
      await tx`
        insert into annual_predictions (company_id, created_by, reporting_year, long_term_debt_to_total_capital, total_debt_to_ebitda, net_income_margin,
          ebit_to_interest_expense, return_on_assets, probability, risk_level, model_name, model_version, created_at)
        values (${c!.id}, ${user}, '2026', ${r.long_term_debt_to_total_capital!}, ${r.total_debt_to_ebitda!}, ${r.net_income_margin!}, ${r.ebit_to_interest_expense!},
          ${r.return_on_assets!}, ${r.probability!}, ${r.risk_level!}, ${r.model_name!}, ${r.model_version!}, ${createdAt})`;
    }
  });
}

beforeAll(async () => {
  db = await createTestDatabase();
  engine = await engineOnce();
  const [ta] = await db.adminSql<{ id: string }[]>`insert into tenants (name) values ('Tenant A') returning id`;
  const [tb] = await db.adminSql<{ id: string }[]>`insert into tenants (name) values ('Tenant B') returning id`;
  tenantA = ta!.id;
  tenantB = tb!.id;
  const [oa] = await db.adminSql<{ id: string }[]>`insert into organizations (tenant_id, name) values (${tenantA}, 'Org A') returning id`;
  const [ob] = await db.adminSql<{ id: string }[]>`insert into organizations (tenant_id, name) values (${tenantB}, 'Org B') returning id`;
  const [ua] = await db.adminSql<{ id: string }[]>`insert into users (tenant_id, organization_id, email, username, role, is_verified) values (${tenantA}, ${oa!.id}, 'a@example.com', 'a', 'org_admin', true) returning id`;
  const [ub] = await db.adminSql<{ id: string }[]>`insert into users (tenant_id, organization_id, email, username, role, is_verified) values (${tenantB}, ${ob!.id}, 'b@example.com', 'b', 'org_admin', true) returning id`;
  const recent = new Date('2026-11-20T00:00:00Z');
  // Tenant A: companies like the reference portfolio. Tenant B: far more leveraged, EBIT cover
  // often not reported. Plus old predictions outside the window that must not count.
  await loadAnnual(oa!.id, ua!.id, 400, 31, (_f, v) => v, recent);
  await loadAnnual(ob!.id, ub!.id, 300, 32, (f, v) => (f === 'ebit_to_interest_expense' ? (v > 3 ? null : v) : f === 'total_debt_to_ebitda' ? v * 3 : v), recent);
  await loadAnnual(ob!.id, ub!.id, 50, 33, (_f, v) => v * 50, new Date('2025-01-01T00:00:00Z'));
  // Predictions by another model version: their ratios count, their PDs do not.
  await loadAnnual(oa!.id, ua!.id, 20, 34, (_f, v) => v, recent, { ...engine.models.annual, version: '0.9.0' });
}, 120_000);

afterAll(async () => {
  await db?.drop();
});

describe('model drift over stored predictions', () => {
  it('reports PSI per ratio and of the PD, overall and per tenant, over the window only', async () => {
    const run = await computeModelDrift(db.adminSql, engine, { days: 30, byTenant: true, now });
    const annual = run.reports.filter((r) => r.kind === 'annual');
    const all = annual.find((r) => r.scope === 'all')!;
    expect(all.rows).toBe(720);
    expect(all.pd_rows).toBe(700);
    const a = annual.find((r) => r.tenant_id === tenantA)!;
    const b = annual.find((r) => r.tenant_id === tenantB)!;
    expect(a.tenant_name).toBe('Tenant A');
    expect(a.rows).toBe(420);
    expect(b.rows).toBe(300);
    // Tenant A is drawn like the training data: every ratio below the 0.1 "stable" line.
    for (const f of a.fields) expect(f.psi, f.field).toBeLessThan(0.1);
    const bf = Object.fromEntries(b.fields.map((f) => [f.field, f]));
    expect(bf.total_debt_to_ebitda!.status).toBe('significant');
    expect(bf.ebit_to_interest_expense!.missing_share_recent).toBeGreaterThan(0.4);
    expect(bf.ebit_to_interest_expense!.status).toBe('significant');
    expect(b.pd!.psi).toBeGreaterThan(a.pd!.psi);
    expect(b.status).toBe('significant');
    // No quarterly predictions: a report with no data rather than an error.
    const q = run.reports.find((r) => r.kind === 'quarterly' && r.scope === 'all')!;
    expect(q.rows).toBe(0);
    expect(q.status).toBe('no_data');
  });

  it('stores the latest run for /metrics and the alarm', async () => {
    const run = await computeModelDrift(db.adminSql, engine, { days: 30, now });
    await storeModelDrift(db.adminSql, run);
    const got = await latestModelDrift(db.adminSql);
    expect(got!.run.computed_at).toBe(now.toISOString());
    expect(got!.run.max_psi).toBeCloseTo(run.max_psi, 9);
    // "No data" figures are stored as null (JSON has no NaN).
    const q = got!.run.reports.find((r) => r.kind === 'quarterly')!;
    expect(q.max_psi).toBeNull();
  });

  it('runs as the weekly job: stores the run and names the tenants over the 0.25 line', async () => {
    await db.adminSql`delete from ops_snapshots where source = 'model-drift'`;
    const out = await runModelDriftJob({ adminSql: db.adminSql, engine, now });
    expect(out.outcome).toBe('drift');
    expect(out.significant.map((s) => s.tenant_id)).toContain(tenantB);
    expect(out.significant.map((s) => s.tenant_id)).not.toContain(tenantA);
    expect((await latestModelDrift(db.adminSql))!.run.reports.some((r) => r.tenant_id === tenantB)).toBe(true);
  });

  it('is dispatched by the worker under its catalogue name', async () => {
    await db.adminSql`delete from ops_snapshots where source = 'model-drift'`;
    // The catalogue's own handler, with the operations part of JobDeps the worker's root builds.
    const ops = { ops: { adminSql: db.adminSql } as never, config: {} as never, uploadDir: '' };
    const processor = createProcessor({ sql: db.appSql, engine, ops, log: pino({ level: 'silent' }), shutdown: new AbortController().signal });
    const res = (await processor({ name: 'model.drift', data: {}, id: 'repeat:model-drift-weekly:1', timestamp: Date.now(), opts: {} } as never)) as { outcome: string };
    // The job's own window is the last 90 days of real time; the fixture rows are dated 2026-11-20.
    expect(['ok', 'drift']).toContain(res.outcome);
    expect(await latestModelDrift(db.adminSql)).not.toBeNull();
  });

  it('feeds /metrics and the drift alarm from the stored run', async () => {
    await db.adminSql`delete from ops_snapshots where source = 'model-drift'`;
    expect(await modelDriftReading(db.adminSql)).toMatchObject({ value: null, breach: null });
    const run = await computeModelDrift(db.adminSql, engine, { days: 30, byTenant: true, now });
    await storeModelDrift(db.adminSql, run);
    const reading = await modelDriftReading(db.adminSql);
    expect(reading.value).toBeCloseTo(run.max_psi, 9);
    expect(reading.breach).toBe(run.max_psi > 0.25);
    expect(reading.reason).toMatch(/Tenant B/);
    const m = createMetrics({ defaultMetrics: false });
    await collectModelDrift(m, db.adminSql);
    const text = await m.registry.metrics();
    const b = run.reports.find((r) => r.tenant_id === tenantB)!;
    const psiB = b.fields.find((f) => f.field === 'total_debt_to_ebitda')!.psi;
    expect(text).toContain(`accunode_model_psi{kind="annual",input="total_debt_to_ebitda",tenant="${tenantB}"} ${psiB}`);
    expect(text).toMatch(/accunode_model_psi\{kind="annual",input="pd",tenant="all"\} [0-9.]+/);
    expect(text).toMatch(/accunode_model_missing_share\{kind="annual",input="ebit_to_interest_expense",tenant="all"\}/);
    // No quarterly predictions: no quarterly series rather than a fake 0.
    expect(text).not.toMatch(/accunode_model_psi\{kind="quarterly"/);
  });

  it('rejects a bad window', async () => {
    await expect(computeModelDrift(db.adminSql, engine, { days: 0 })).rejects.toThrow(/days/);
  });
});
