import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { registerModelCommands } from '../../src/cli/model.js';
import { validateArtifact } from '../../src/risk/index.js';

async function run(...args: string[]): Promise<string> {
  const program = new Command();
  program.exitOverride();
  registerModelCommands(program);
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  try {
    await program.parseAsync(['node', 'accunode', 'model', ...args]);
  } finally {
    spy.mockRestore();
  }
  return out;
}

describe('accunode model CLI', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'accunode-model-cli-'));
  afterEach(() => {
    process.exitCode = undefined;
  });

  it('generates reference data, trains, evaluates and reports as JSON', async () => {
    const csv = path.join(dir, 'q.csv');
    const gen = JSON.parse(await run('reference-data', '--kind', 'quarterly', '--rows', '5000', '--seed', '4', '--out', csv, '--json')) as { by_rating: unknown[] };
    expect(gen.by_rating).toHaveLength(7);
    expect(readFileSync(csv, 'utf8').split('\n')[0]).toContain('debt_to_equity');

    const out = path.join(dir, 'q.json');
    const table = await run('train', '--kind', 'quarterly', '--data', csv, '--out', out, '--no-timestamp');
    expect(table).toMatch(/component\s+rows\s+defaults\s+auc/);
    expect(table).toMatch(/gbm/);
    const art = validateArtifact('quarterly', JSON.parse(readFileSync(out, 'utf8')));
    expect(art.trained_at).toBeNull();
    expect(readFileSync(path.join(dir, 'q-report.md'), 'utf8')).toMatch(/Reference model/);
    const report = JSON.parse(readFileSync(path.join(dir, 'q-report.json'), 'utf8')) as { validation: Record<string, { auc: number }> };
    expect(Object.keys(report.validation)).toEqual(['logistic', 'step', 'gbm', 'blend']);

    const ev = JSON.parse(await run('evaluate', '--kind', 'quarterly', '--data', csv, '--model', out, '--json')) as { metrics: Record<string, { auc: number }> };
    expect(ev.metrics.blend!.auc).toBeGreaterThan(0.75);
  });

  it('prints model info for the shipped models', async () => {
    const info = JSON.parse(await run('info', '--json')) as Array<{ kind: string; name: string; version: string }>;
    expect(info.map((m) => m.kind)).toEqual(['annual', 'quarterly']);
    expect(await run('info')).toMatch(/accunode-reference-annual/);
  });

  it('imports a LightGBM model and reports unsupported ones as an error', async () => {
    const txt = path.join(dir, 'model.txt');
    writeFileSync(
      txt,
      [
        'tree',
        'version=v4',
        'num_class=1',
        'objective=binary sigmoid:1',
        'feature_names=debt_to_equity current_ratio',
        '',
        'Tree=0',
        'num_leaves=2',
        'num_cat=0',
        'split_feature=0',
        'threshold=1.5',
        'decision_type=10',
        'left_child=-1',
        'right_child=-2',
        'leaf_value=-4 -2',
        'shrinkage=1',
        '',
        'end of trees',
      ].join('\n'),
    );
    const out = path.join(dir, 'imported.json');
    const res = JSON.parse(await run('import-lightgbm', txt, '--out', out, '--json')) as { lightgbm: { trees: number } };
    expect(res.lightgbm.trees).toBe(1);
    expect(validateArtifact('quarterly', JSON.parse(readFileSync(out, 'utf8'))).gbm!.source).toBe('lightgbm');

    writeFileSync(txt, readFileSync(txt, 'utf8').replace('binary sigmoid:1', 'multiclass num_class:3'));
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    await run('import-lightgbm', txt, '--out', out);
    expect(String(err.mock.calls[0]?.[0])).toMatch(/unsupported objective/);
    err.mockRestore();
    expect(process.exitCode).toBe(1);
  });
});
