import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Sql } from '../db/pool.js';
import { generatePassword } from '../db/roles.js';
import { hashPassword } from './passwords.js';
import { ANNUAL_FIELDS, generateReferenceData, roundTo6, type AnnualRatios, type RiskEngine } from '../risk/index.js';
import { requiredRatios } from './prediction-compute.js';
import * as seedRows from '../repositories/demo-seed.js';

interface SeedResult {
  seeded: boolean;
  email?: string;
  password?: string;
  passwordFile?: string;
}

const DEMO_COMPANIES = [
  ['AAPL', 'Apple Inc.', 3_400_000_000_000, 'Information Technology', 'United States', 'NASDAQ'],
  ['MSFT', 'Microsoft Corporation', 3_100_000_000_000, 'Information Technology', 'United States', 'NASDAQ'],
  ['F', 'Ford Motor Company', 45_000_000_000, 'Consumer Discretionary', 'United States', 'NYSE'],
  ['CAT', 'Caterpillar Inc.', 170_000_000_000, 'Industrials', 'United States', 'NYSE'],
  ['XOM', 'Exxon Mobil Corporation', 470_000_000_000, 'Energy', 'United States', 'NYSE'],
] as const;

/**
 * On an empty database (no users), creates a demo tenant, organization, a super admin and a few
 * system companies. Runs on the owner connection: it is the bootstrap that makes the first user
 * row-level security can key on. The admin password is returned once and kept 0600 on disk.
 */
export async function seedDemo(adminSql: Sql, dataDir: string, opts: { engine?: RiskEngine; portfolio?: { companies: number; years: readonly string[] } } = {}): Promise<SeedResult> {
  const password = generatePassword();
  const passwordHash = await hashPassword(password);
  const email = 'admin@demo.accunode.local';
  const result = await adminSql.begin(async (tx) => {
    if (!(await seedRows.lockEmptyDatabase(tx))) return false;
    const { organizationId, adminId } = await seedRows.insertDemoTenant(tx, { email, passwordHash });
    for (const [symbol, name, cap, sector, country, exchange] of DEMO_COMPANIES) {
      await seedRows.insertSystemCompany(tx, { symbol, name, market_cap: cap, sector, country, exchange, created_by: adminId });
    }
    if (opts.engine) {
      const p = opts.portfolio ?? DEMO_PORTFOLIO;
      await insertDemoPortfolio(tx as unknown as Sql, opts.engine, { organizationId, userId: adminId, ...p });
    }
    return true;
  });
  if (!result) return { seeded: false };
  mkdirSync(dataDir, { recursive: true });
  const passwordFile = path.join(dataDir, 'demo-admin.txt');
  writeFileSync(passwordFile, `email: ${email}\nusername: admin\npassword: ${password}\n`, { mode: 0o600 });
  return { seeded: true, email, password, passwordFile };
}

/** The sample portfolio a new tenant's dashboard, portfolio and company pages show. */
export const DEMO_PORTFOLIO = { companies: 300, years: ['2021', '2022', '2023', '2024'] } as const;

const SECTORS = ['Industrials', 'Information Technology', 'Health Care', 'Financials', 'Consumer Discretionary', 'Consumer Staples', 'Energy', 'Utilities', 'Materials', 'Real Estate', 'Communication Services'];
const NAME_A = ['Northwind', 'Blue Ridge', 'Harbor', 'Summit', 'Granite', 'Cedar', 'Silverline', 'Meridian', 'Redwood', 'Lakeside', 'Ironbridge', 'Crescent', 'Pioneer', 'Beacon', 'Atlas', 'Sterling', 'Oakmont', 'Riverton', 'Highland', 'Coastal'];
const NAME_B = ['Industries', 'Holdings', 'Systems', 'Energy', 'Foods', 'Logistics', 'Health', 'Materials', 'Networks', 'Partners', 'Motors', 'Retail', 'Utilities', 'Labs', 'Capital'];
const SUFFIX = ['Inc.', 'Corp.', 'plc', 'Group', 'Ltd.', 'SE'];

/** A small deterministic generator (mulberry32): the same demo on every machine. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Companies of the reference data's rating mix (src/risk/reference-data.ts, the synthetic
 * portfolio the models were calibrated on), one set of ratios each drifting a little from year to
 * year, scored by the shipped models: what the screens show is what the models say about a
 * realistic book. Organization scope, so every member of the demo organization sees it.
 */
async function insertDemoPortfolio(sql: Sql, engine: RiskEngine, o: { organizationId: string; userId: string; companies: number; years: readonly string[] }): Promise<{ companies: number; predictions: number }> {
  const data = generateReferenceData('annual', o.companies, 20261201);
  const rand = rng(17);
  const need = requiredRatios('annual');
  const companies = [];
  for (let i = 0; i < o.companies; i++) {
    const name = `${NAME_A[i % NAME_A.length]} ${NAME_B[Math.floor(i / NAME_A.length) % NAME_B.length]} ${SUFFIX[i % SUFFIX.length]}`;
    companies.push({
      symbol: `${name.replace(/[^A-Z]/g, '').slice(0, 3)}${String(i).padStart(3, '0')}`,
      name: i >= NAME_A.length * NAME_B.length ? `${name} ${Math.floor(i / (NAME_A.length * NAME_B.length)) + 1}` : name,
      market_cap: Math.round(10 ** (8 + rand() * 4)),
      sector: SECTORS[i % SECTORS.length]!,
      country: 'United States',
      exchange: rand() < 0.6 ? 'NYSE' : 'NASDAQ',
      access_level: 'organization',
      organization_id: o.organizationId,
      created_by: o.userId,
    });
  }
  const ids = await seedRows.insertCompanies(sql, companies);
  const rows = [];
  for (let i = 0; i < ids.length; i++) {
    for (const year of o.years) {
      const ratios = {} as Record<string, number | null>;
      ANNUAL_FIELDS.forEach((f, j) => {
        const v = data.columns[j]![i]!;
        ratios[f.name] = Number.isNaN(v) ? null : roundTo6(v * (0.9 + rand() * 0.2));
      });
      // A sample analysts would accept: most ratios reported (the minimum predictions need).
      for (const f of ANNUAL_FIELDS) {
        if (ANNUAL_FIELDS.filter((g) => ratios[g.name] !== null).length >= need) break;
        if (ratios[f.name] === null) ratios[f.name] = roundTo6((f.typicalRange[0] + f.typicalRange[1]) / 2);
      }
      const p = engine.predictAnnual(ratios as unknown as AnnualRatios);
      rows.push({
        company_id: ids[i]!.id,
        created_by: o.userId,
        reporting_year: year,
        ...ratios,
        probability: p.probability,
        logistic_probability: p.logistic_probability,
        step_probability: p.step_probability,
        risk_level: p.risk_level,
        confidence: p.confidence,
        model_name: p.model.name,
        model_version: p.model.version,
      });
    }
  }
  await seedRows.insertAnnualPredictions(sql, rows);
  return { companies: ids.length, predictions: rows.length };
}
