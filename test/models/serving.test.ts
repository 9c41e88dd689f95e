// The models a process serves (services/model-serving.ts): the shipped files while the registry
// has no champion, the champion once one is promoted (read as app_user, without a restart), and
// back when another is; predictions record the version that made them.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { makeRows, tmpDir, writeCsv } from '../bulk/helpers.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promoteModel, registerModel } from '../../src/services/model-registry.js';
import { ServingModels } from '../../src/services/model-serving.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';

let db: TestDatabase;
const shipped = JSON.parse(readFileSync(new URL('../../models/annual.json', import.meta.url), 'utf8')) as Record<string, unknown>;
// The same model with a higher blend intercept: every PD rises, so a switch is visible.
const candidate = { ...shipped, version: '9.9.9-serving', blend: { ...(shipped.blend as { intercept: number }), intercept: (shipped.blend as { intercept: number }).intercept + 1 } };
const RATIOS = { long_term_debt_to_total_capital: 35.2, total_debt_to_ebitda: 2.1, net_income_margin: 7.5, ebit_to_interest_expense: 6.3, return_on_assets: 4.9 };

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

describe('serving the registry champion', () => {
  it('serves the files, then each promoted champion, without a new engine object', async () => {
    const serving = await ServingModels.fromFiles();
    const engine = serving.engine;
    expect(await serving.refresh(db.appSql)).toBe(false); // nothing promoted: the files
    const before = engine.predictAnnual(RATIOS);
    expect(before.model.version).toBe(shipped.version);

    await registerModel(db.adminSql, 'annual', candidate, 'ops');
    await promoteModel(db.adminSql, 'annual', '9.9.9-serving', 'ops', { reason: 'test' });
    expect(await serving.refresh(db.appSql)).toBe(true);
    expect(await serving.refresh(db.appSql)).toBe(false); // unchanged since
    const after = engine.predictAnnual(RATIOS);
    expect(after.model.version).toBe('9.9.9-serving');
    expect(after.probability).toBeGreaterThan(before.probability);
    expect(engine.models.annual.version).toBe('9.9.9-serving');
    // The other kind still comes from its file.
    expect(engine.models.quarterly.version).toBe(JSON.parse(readFileSync(new URL('../../models/quarterly.json', import.meta.url), 'utf8')).version);

    // Promoting the shipped version back switches again.
    await registerModel(db.adminSql, 'annual', shipped, 'ops');
    await promoteModel(db.adminSql, 'annual', String(shipped.version), 'ops');
    expect(await serving.refresh(db.appSql)).toBe(true);
    expect(engine.predictAnnual(RATIOS)).toEqual(before);
  });

  it('checks on a timer, so a promotion reaches a running process', async () => {
    const serving = await ServingModels.fromFiles();
    await serving.refresh(db.appSql);
    const v = serving.engine.models.annual.version;
    const next = { ...candidate, version: '9.9.10-timer' };
    await registerModel(db.adminSql, 'annual', next, 'ops');
    await promoteModel(db.adminSql, 'annual', '9.9.10-timer', 'ops');
    serving.start(() => db.appSql, 50);
    try {
      for (let i = 0; i < 100 && serving.engine.models.annual.version === v; i++) await new Promise((r) => setTimeout(r, 50));
      expect(serving.engine.models.annual.version).toBe('9.9.10-timer');
    } finally {
      serving.stop();
    }
  });

  it('`accunode predict bulk` scores with the champion too (the version the api serves)', async () => {
    // The annual champion is 9.9.10-timer by now (the test above).
    const [u] = await db.adminSql<{ id: string }[]>`
      insert into users (email, username, role, is_active, is_verified) values ('cli.serving@example.com', 'cli_serving', 'user', true, true) returning id`;
    const file = writeCsv(tmpDir(), 'serving.csv', 'annual', makeRows('annual', 5, { seed: 3, symbolPrefix: 'SRV' }));
    const out = await new Promise<{ code: number; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/entrypoints/cli.ts', 'predict', 'bulk', file, '--type', 'annual', '--as', u!.id, '--no-progress', '--json'], {
        env: { ...process.env, DATABASE_ADMIN_URL: db.adminUrl, DATABASE_URL: db.appUrl, LOG_LEVEL: 'warn', ACCUNODE_DATA_DIR: tmpDir('accunode-cli-') },
      });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
    });
    expect(out.code, out.stderr).toBe(0);
    const versions = await db.adminSql<{ model_version: string; n: number }[]>`
      select model_version, count(*)::int as n from annual_predictions where created_by = ${u!.id} group by 1`;
    expect(versions).toEqual([{ model_version: '9.9.10-timer', n: 5 }]);
  });
});
