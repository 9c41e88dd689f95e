/**
 * The registry round trip against the real database: train a candidate, shadow-score it against
 * one organization's stored predictions (report figures recomputed here, nothing stored changes),
 * promote it, re-score (outputs rewritten, old values in the audit log, alerts for a watched
 * company), and run again (nothing left to do). Also: the job entry, the write guard against a
 * row changed meanwhile, and that the runs are closed to the application role.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { buildWorld, type World } from '../helpers/fixtures.js';
import { readModelFiles } from '../../src/services/model-store.js';
import { promoteModel, registerModel } from '../../src/services/model-registry.js';
import { executeModelRun, requestModelRun, type RescoreReport, type ShadowReport } from '../../src/services/model-runs.js';
import { applyRescore, readScopeBatch } from '../../src/repositories/model-runs.js';
import { dispatchAlerts } from '../../src/services/alerts.js';
import { JOBS } from '../../src/jobs/catalogue.js';
import { auc, compileModel, createRiskEngine, DEFAULT_THRESHOLDS, fieldNamesOf, generateReferenceData, trainModel, type ModelArtifact } from '../../src/risk/index.js';
import { predictAnnualWith } from '../../src/risk/engine.js';
import { impliedRating } from '../../src/risk/implied-rating.js';
import { runReportText } from '../../src/cli/model.js';
import type { JobDeps } from '../../src/jobs/context.js';
import type { Config } from '../../src/config/index.js';

let db: TestDatabase;
let w: World;
let shipped: Record<'annual' | 'quarterly', unknown>;
let candidate: ModelArtifact;
const N_A1 = 60;
const DEFAULTED = 6;
const log = pino({ level: 'silent' });
const fields = fieldNamesOf('annual');
let ratiosById: Map<string, Record<string, number | null>>;
let storedPd: Map<string, number>;
let watched: string;

beforeAll(async () => {
  db = await createTestDatabase();
  w = await buildWorld(db.adminSql);
  shipped = await readModelFiles();
  const engine = createRiskEngine({ annual: shipped.annual, quarterly: shipped.quarterly });
  // Stored predictions made by the shipped model two years ago: N_A1 in organization A1, 20 in B1.
  const ds = generateReferenceData('annual', N_A1 + 20, 11);
  ratiosById = new Map();
  storedPd = new Map();
  for (let i = 0; i < N_A1 + 20; i++) {
    const org = i < N_A1 ? 'A1' : 'B1';
    const creator = org === 'A1' ? w.users.omA1.id : w.users.omB1.id;
    const [c] = await db.adminSql<{ id: string }[]>`
      insert into companies (symbol, name, sector, access_level, organization_id, created_by)
      values (${'MR' + i}, ${'Model Run ' + i}, 'Industrials', 'organization', ${w.orgs[org]}, ${creator}) returning id`;
    const ratios: Record<string, number | null> = {};
    for (let j = 0; j < fields.length; j++) ratios[fields[j]!] = Number.isNaN(ds.columns[j]![i]!) ? null : Math.round(ds.columns[j]![i]! * 1e4) / 1e4;
    const p = engine.predictAnnual(ratios as never);
    const [row] = await db.adminSql<{ id: string }[]>`
      insert into annual_predictions ${db.adminSql({
        company_id: c!.id, created_by: creator, reporting_year: '2023', access_level: 'organization', organization_id: w.orgs[org],
        ...ratios, probability: p.probability, logistic_probability: p.logistic_probability, step_probability: p.step_probability,
        risk_level: p.risk_level, confidence: p.confidence, model_name: p.model.name, model_version: p.model.version,
        created_at: new Date('2023-01-15T00:00:00Z'),
      })} returning id`;
    ratiosById.set(row!.id, ratios);
    storedPd.set(row!.id, p.probability);
    // Defaults five months later for the first DEFAULTED companies of A1: labelled positives.
    if (i < DEFAULTED) await db.adminSql`insert into company_default_events (company_id, default_date, source) values (${c!.id}, '2023-06-15', 'test fixture')`;
  }
  // The registry: the shipped model is the champion; the candidate is trained on other data.
  await registerModel(db.adminSql, 'annual', shipped.annual, 'ops');
  await promoteModel(db.adminSql, 'annual', (shipped.annual as { version: string }).version, 'ops', { reason: 'initial' });
  candidate = trainModel(generateReferenceData('annual', 4000, 23), { seed: 5, name: 'candidate-test', version: '9.0.0' }).artifact;
  await registerModel(db.adminSql, 'annual', candidate, 'ops');
}, 120_000);

afterAll(async () => {
  await db?.drop();
});

/** What the candidate says for each A1 prediction, computed here without the run's code. */
function expectedA1() {
  const m = compileModel('annual', candidate);
  const out = new Map<string, ReturnType<typeof predictAnnualWith>>();
  for (const [id, r] of ratiosById) out.set(id, predictAnnualWith(m, r as never, DEFAULT_THRESHOLDS));
  return out;
}

describe('shadow scoring, promotion and re-scoring', () => {
  let a1Ids: string[];

  it('a shadow run reports the shift, the level and rating changes and the labelled metrics, and changes nothing', async () => {
    a1Ids = (await db.adminSql<{ id: string }[]>`select id from annual_predictions where organization_id = ${w.orgs.A1} and model_name is not null and company_id in (select id from companies where symbol like 'MR%')`).map((r) => r.id);
    expect(a1Ids).toHaveLength(N_A1);
    const before = await db.adminSql`select id, probability, risk_level, model_version, updated_at from annual_predictions order by id`;
    const auditBefore = await db.adminSql`select count(*)::int as n from audit_logs`;
    const run = await requestModelRun(db.adminSql, { action: 'shadow', kind: 'annual', version: '9.0.0', scope: { organizationId: w.orgs.A1 }, by: 'analyst-lead' });
    expect(run).toMatchObject({ status: 'queued', action: 'shadow', model_version: '9.0.0', organization_id: w.orgs.A1 });
    const progress: number[] = [];
    const report = (await executeModelRun({ adminSql: db.adminSql, log, batchRows: 25, onProgress: (p) => progress.push(p.done) }, run.id)) as ShadowReport;

    // The organization's predictions: the 60 made here, and the world's one A1 annual prediction.
    const exp = expectedA1();
    const [worldA1] = await db.adminSql<{ n: number }[]>`select count(*)::int as n from annual_predictions where organization_id = ${w.orgs.A1}`;
    expect(report.scored).toBe(worldA1!.n);
    expect(progress.at(-1)).toBe(worldA1!.n);
    expect(progress.length).toBeGreaterThan(1); // batches of 25
    let levels = 0;
    let ratings = 0;
    const shifts: number[] = [];
    for (const id of a1Ids) {
      const e = exp.get(id)!;
      const old = storedPd.get(id)!;
      shifts.push((e.probability - old) * 100);
      const [s] = await db.adminSql<{ risk_level: string }[]>`select risk_level from annual_predictions where id = ${id}`;
      if (e.risk_level !== s!.risk_level) levels++;
      if (impliedRating(e.probability) !== impliedRating(old)) ratings++;
    }
    // The world's own A1 predictions are scored too; count their changes the same way.
    const extras = await db.adminSql<Array<Record<string, number | string | null>>>`
      select ${db.adminSql(fields)}, probability::float8 as probability, risk_level from annual_predictions
      where organization_id = ${w.orgs.A1} and not (id = any(${a1Ids}::uuid[]))`;
    expect(extras.length).toBe(worldA1!.n - N_A1);
    for (const extra of extras) {
      const xr: Record<string, number | null> = {};
      for (const f of fields) xr[f] = extra[f] === null ? null : Number(extra[f]);
      const xe = predictAnnualWith(compileModel('annual', candidate), xr as never, DEFAULT_THRESHOLDS);
      if (xe.risk_level !== extra.risk_level) levels++;
      if (impliedRating(xe.probability) !== impliedRating(Number(extra.probability))) ratings++;
      shifts.push((xe.probability - Number(extra.probability)) * 100);
    }

    expect(report.risk_level.changed).toBe(levels);
    expect(report.risk_level.transitions.reduce((a, t) => a + t.count, 0)).toBe(levels);
    expect(report.implied_rating.changed).toBe(ratings);
    expect(report.implied_rating.upgrades + report.implied_rating.downgrades).toBe(ratings);
    expect(report.pd_shift_pp.mean).toBeCloseTo(shifts.reduce((a, b) => a + b, 0) / shifts.length, 5);
    expect(report.pd_shift_pp.histogram.reduce((a, h) => a + h.count, 0)).toBe(shifts.length);
    expect(report.pd_shift_pp.quantiles!.p01).toBeLessThanOrEqual(report.pd_shift_pp.quantiles!.p99);
    expect(report.mean_pd.candidate).not.toBe(report.mean_pd.stored);

    // Labelled: every A1 prediction here was made in January 2023 (a full year observed); the
    // first six companies defaulted five months later. The world's own prediction is recent.
    expect(report.labelled).not.toBeNull();
    expect(report.labelled!.predictions).toBe(N_A1);
    expect(report.labelled!.defaults).toBe(DEFAULTED);
    const y = a1Ids.map((id) => (Number([...ratiosById.keys()].indexOf(id)) < DEFAULTED ? 1 : 0));
    expect(report.labelled!.candidate.auc).toBeCloseTo(auc(a1Ids.map((id) => exp.get(id)!.probability), y), 5);
    expect(report.labelled!.stored.auc).toBeCloseTo(auc(a1Ids.map((id) => storedPd.get(id)!), y), 5);
    expect(report.labelled!.candidate.calibration.reduce((a, c) => a + c.defaults, 0)).toBe(DEFAULTED);

    // Nothing users see changed; the report is stored with the run.
    expect(await db.adminSql`select id, probability, risk_level, model_version, updated_at from annual_predictions order by id`).toEqual(before);
    expect(await db.adminSql`select count(*)::int as n from audit_logs`).toEqual(auditBefore);
    expect((await db.adminSql`select count(*)::int as n from prediction_changes`)[0]!.n).toBe(0);
    const [stored] = await db.adminSql<{ status: string; report: ShadowReport }[]>`select status, report from model_runs where id = ${run.id}`;
    expect(stored!.status).toBe('completed');
    expect(stored!.report.scored).toBe(report.scored);
    const text = runReportText(run.id, report, 'organization A1');
    expect(text).toContain(`shadow run ${run.id}`);
    expect(text).toContain(`on ${N_A1} labelled predictions (${DEFAULTED} followed by a default`);
  });

  it('a re-score runs only under the champion, and the champion made everything so far', async () => {
    await expect(requestModelRun(db.adminSql, { action: 'rescore', kind: 'annual', version: '9.0.0', scope: {}, by: 'ops' })).rejects.toThrow(/is not the champion/);
    const run = await requestModelRun(db.adminSql, { action: 'rescore', kind: 'annual', scope: { organizationId: w.orgs.A1 }, by: 'ops' });
    // The fixture's predictions name the shipped model, the champion: only the world's own
    // predictions, which name no model or another one, are re-scored.
    const [elsewhere] = await db.adminSql<{ n: number }[]>`
      select count(*)::int as n from annual_predictions where organization_id = ${w.orgs.A1}
        and (model_name, model_version) is distinct from (${run.model_name}, ${run.model_version})`;
    const extrasMadeElsewhere = elsewhere!.n;
    expect(extrasMadeElsewhere).toBe(2);
    const report = (await executeModelRun({ adminSql: db.adminSql, log }, run.id)) as RescoreReport;
    expect(report.model.version).toBe((shipped.annual as { version: string }).version);
    expect(report.considered).toBe(extrasMadeElsewhere);
  });

  it('after promotion a re-score rewrites the scope, keeps the old values in the audit log and raises alerts', async () => {
    const target = a1Ids.find((id) => Math.abs(expectedA1().get(id)!.probability - storedPd.get(id)!) > 0.0005)!;
    const [t] = await db.adminSql<{ company_id: string }[]>`select company_id from annual_predictions where id = ${target}`;
    watched = t!.company_id;
    await db.adminSql`insert into watches (company_id, access_level, organization_id, created_by, pd_threshold) values (${watched}, 'organization', ${w.orgs.A1}, ${w.users.omA1.id}, 0.0001)`;
    await promoteModel(db.adminSql, 'annual', '9.0.0', 'ops', { reason: 'shadow run looked right' });
    const b1Before = await db.adminSql`select id, probability, model_version from annual_predictions where organization_id = ${w.orgs.B1} order by id`;
    const run = await requestModelRun(db.adminSql, { action: 'rescore', kind: 'annual', scope: { organizationId: w.orgs.A1 }, by: 'ops' });
    const report = (await executeModelRun({ adminSql: db.adminSql, log, batchRows: 16 }, run.id)) as RescoreReport;
    const [n] = await db.adminSql<{ n: number }[]>`select count(*)::int as n from annual_predictions where organization_id = ${w.orgs.A1}`;
    expect(report).toMatchObject({ considered: n!.n, rescored: n!.n, skipped_changed_meanwhile: 0 });

    const exp = expectedA1();
    const rows = await db.adminSql<Array<{ id: string; probability: number; risk_level: string; model_name: string; model_version: string }>>`
      select id, probability::float8 as probability, risk_level, model_name, model_version from annual_predictions where id = any(${a1Ids}::uuid[])`;
    let levels = 0;
    for (const r of rows) {
      expect(r).toMatchObject({ probability: exp.get(r.id)!.probability, risk_level: exp.get(r.id)!.risk_level, model_name: 'candidate-test', model_version: '9.0.0' });
    }
    for (const id of a1Ids) if (exp.get(id)!.risk_level !== (await db.adminSql<{ r: string }[]>`select after->>'risk_level' as r from audit_logs where action = 'rescore' and row_id = ${id}`)[0]!.r) levels++;
    expect(levels).toBe(0);
    // One audit row per re-scored prediction, with what it said before.
    const audits = await db.adminSql<Array<{ row_id: string; before: Record<string, unknown>; after: Record<string, unknown>; tenant_id: string; organization_id: string }>>`
      select row_id, before, after, tenant_id, organization_id from audit_logs
      where action = 'rescore' and table_name = 'annual_predictions' and (after->>'model_run_id')::int = ${run.id}`;
    expect(audits).toHaveLength(n!.n);
    for (const a of audits.filter((x) => storedPd.has(x.row_id))) {
      expect(a.before.probability).toBeCloseTo(storedPd.get(a.row_id)!, 6);
      expect(a.before.model_version).toBe((shipped.annual as { version: string }).version);
      expect(a.after).toMatchObject({ model_version: '9.0.0', model_run_id: run.id });
      expect(a).toMatchObject({ tenant_id: w.tenants.A, organization_id: w.orgs.A1 });
    }
    // Another organization's predictions are untouched.
    expect(await db.adminSql`select id, probability, model_version from annual_predictions where organization_id = ${w.orgs.B1} order by id`).toEqual(b1Before);
    // The watched company's change reached the outbox; the dispatch turns it into an alert.
    const out = await dispatchAlerts(db.adminSql);
    expect(out.alerts).toBeGreaterThanOrEqual(1);
    const alerts = await db.adminSql<Array<{ company_id: string; old_probability: number; new_probability: number }>>`
      select company_id, old_probability::float8 as old_probability, new_probability::float8 as new_probability from alerts`;
    expect(alerts).toEqual([{ company_id: watched, old_probability: storedPd.get(target)!, new_probability: exp.get(target)!.probability }]);
  });

  it('a second re-score finds nothing left, and a row changed meanwhile is never overwritten', async () => {
    const again = await requestModelRun(db.adminSql, { action: 'rescore', kind: 'annual', scope: { organizationId: w.orgs.A1 }, by: 'ops' });
    expect(((await executeModelRun({ adminSql: db.adminSql, log }, again.id)) as RescoreReport).considered).toBe(0);

    const [row] = await readScopeBatch(db.adminSql, 'annual', { organizationId: w.orgs.B1 }, null, 1);
    await db.adminSql`update annual_predictions set confidence = confidence where id = ${row!.id}`; // updated_at moves
    const written = await applyRescore(db.adminSql, 'annual', [{
      id: row!.id, updated_at: row!.updated_at, model_name: 'x', model_version: 'y', tenant_id: row!.tenant_id, before: {}, after: {},
      outputs: { probability: 0.5, logistic_probability: 0.5, step_probability: 0.5, risk_level: 'CRITICAL', confidence: 1 },
    }]);
    expect(written).toEqual([]);
    const [after] = await db.adminSql<{ model_version: string }[]>`select model_version from annual_predictions where id = ${row!.id}`;
    expect(after!.model_version).not.toBe('y');
  });

  it('runs as a catalogued job in a worker, and the runs are closed to the application role', async () => {
    const run = await requestModelRun(db.adminSql, { action: 'shadow', kind: 'annual', version: '9.0.0', scope: { tenantId: w.tenants.B }, by: 'ops' });
    const handler = await JOBS['model.run'].handler();
    const engine = createRiskEngine({ annual: shipped.annual, quarterly: shipped.quarterly });
    const deps = { sql: db.appSql, engine, log, ops: { ops: { adminSql: db.adminSql }, config: { IMPLIED_RATING_SCALE: undefined } as unknown as Config, uploadDir: '' } } as unknown as JobDeps;
    const progress: unknown[] = [];
    const job = { name: 'model.run', data: { runId: run.id }, updateProgress: async (p: unknown) => void progress.push(p) };
    const report = (await handler(deps, { job: job as never, token: undefined, signal: new AbortController().signal, tick: new Date() })) as ShadowReport;
    const [b] = await db.adminSql<{ n: number }[]>`
      select count(*)::int as n from annual_predictions p left join organizations o on o.id = p.organization_id left join users u on u.id = p.created_by
      where o.tenant_id = ${w.tenants.B} or (p.organization_id is null and u.tenant_id = ${w.tenants.B})`;
    expect(report.scored).toBe(b!.n);
    expect(progress.length).toBeGreaterThan(0);
    await expect(db.appSql`select * from model_runs`).rejects.toThrow(/permission denied/);
    await expect(requestModelRun(db.adminSql, { action: 'shadow', kind: 'annual', version: '9.0.0', scope: { tenantId: '00000000-0000-0000-0000-0000000000aa' }, by: 'ops' })).rejects.toThrow(/no tenant/);
  });
});
