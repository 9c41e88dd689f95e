/** The model registry against the real database: versions, one champion per kind, audited events. */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { championArtifact, listModels, promoteModel, registerModel, retireModel, showModel } from '../../src/services/model-registry.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';

let db: TestDatabase;
const shipped = JSON.parse(readFileSync(new URL('../../models/annual.json', import.meta.url), 'utf8')) as Record<string, unknown>;
const candidate = { ...shipped, version: '2.1.0', blend: { ...(shipped.blend as object), intercept: 0.01 } };

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

describe('model registry', () => {
  it('registers versions once, refusing the same version with other contents', async () => {
    const a = await registerModel(db.adminSql, 'annual', shipped, 'ops@example.com');
    expect(a).toMatchObject({ kind: 'annual', version: shipped.version, status: 'candidate', reference_model: true });
    expect((await registerModel(db.adminSql, 'annual', shipped, 'ops@example.com')).id).toBe(a.id);
    await expect(registerModel(db.adminSql, 'annual', { ...shipped, description: 'changed' }, 'ops')).rejects.toThrow(/already registered with different contents/);
    await expect(registerModel(db.adminSql, 'annual', { ...shipped, kind: 'quarterly' }, 'ops')).rejects.toThrow(/\$\.kind/);
    await registerModel(db.adminSql, 'annual', candidate, 'ops@example.com');
    expect((await listModels(db.adminSql, 'annual')).map((r) => r.version)).toEqual([shipped.version, '2.1.0']);
  });

  it('keeps one champion per kind and records who promoted what over which', async () => {
    const first = await promoteModel(db.adminSql, 'annual', String(shipped.version), 'alice', { reason: 'initial' });
    expect(first.previous).toBeNull();
    const second = await promoteModel(db.adminSql, 'annual', '2.1.0', 'bob', { reason: 'backtest AUC better' });
    expect(second.champion.status).toBe('champion');
    expect(second.previous!.version).toBe(shipped.version);
    const rows = await listModels(db.adminSql, 'annual');
    expect(rows.filter((r) => r.status === 'champion').map((r) => r.version)).toEqual(['2.1.0']);
    expect(rows.find((r) => r.version === shipped.version)!.status).toBe('candidate');
    const shown = await showModel(db.adminSql, 'annual', '2.1.0');
    expect(shown.events.map((e) => [e.action, e.actor, e.reason])).toEqual([
      ['register', 'ops@example.com', null],
      ['promote', 'bob', 'backtest AUC better'],
    ]);
    expect(shown.events[1]!.previous_champion_id).toBe(second.previous!.id);
    expect((await championArtifact(db.adminSql, 'annual'))!.version).toBe('2.1.0');
    expect(await championArtifact(db.adminSql, 'quarterly')).toBeNull();
    // The database itself refuses a second champion.
    await expect(db.adminSql`update model_versions set status = 'champion' where kind = 'annual' and version = ${String(shipped.version)}`).rejects.toThrow(/uq_model_versions_champion/);
  });

  it('retires candidates, never the champion, and a retired version cannot come back', async () => {
    await expect(retireModel(db.adminSql, 'annual', '2.1.0', 'carol')).rejects.toThrow(/is the champion/);
    const r = await retireModel(db.adminSql, 'annual', String(shipped.version), 'carol', { reason: 'superseded' });
    expect(r.status).toBe('retired');
    await expect(promoteModel(db.adminSql, 'annual', String(shipped.version), 'carol')).rejects.toThrow(/retired/);
    await expect(promoteModel(db.adminSql, 'annual', '9.9.9', 'carol')).rejects.toThrow(/no annual model version 9\.9\.9/);
  });

  it('is read-only for the application role', async () => {
    expect((await db.appSql`select version from model_versions`).length).toBeGreaterThan(0);
    await expect(db.appSql`insert into model_registry_events (model_version_id, action, actor) values (1, 'promote', 'x')`).rejects.toThrow(/permission denied/);
    await expect(db.appSql`update model_versions set status = 'retired'`).rejects.toThrow(/permission denied/);
  });
});
