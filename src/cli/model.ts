/**
 * `accunode model ...`: reference data, training, evaluation, model info and LightGBM import.
 * All file reading and writing for the risk engine happens here or in model-store.ts; src/risk
 * stays pure.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import {
  compileModel,
  datasetToCsv,
  evaluateModel,
  generateReferenceData,
  importLightGbm,
  parseLabelledCsv,
  RATINGS,
  TARGET_DEFAULT_RATES,
  trainModel,
  validateArtifact,
  withReplacedGbm,
  type ComponentName,
  type Metrics,
  type ModelArtifact,
  type ModelKind,
  type TrainReport,
} from '../risk/index.js';
import { defaultModelsDir, MODEL_FILES, readArtifact } from '../services/model-store.js';
import { computeModelDrift, storeModelDrift, type DriftRun } from '../services/model-drift.js';
import { backtestOn, labelledHistory } from '../services/defaults.js';
import { listModels, promoteModel, registerModel, retireModel, showModel, type ModelVersionRow } from '../services/model-registry.js';
import { executeModelRun, requestModelRun, type ModelRunReport, type ModelRunRow, type RescoreReport, type RunScope, type ShadowReport } from '../services/model-runs.js';
import { findRun, listRuns } from '../repositories/model-runs.js';
import { createProducers } from '../queue/producers.js';
import cliProgress from 'cli-progress';
import { userInfo } from 'node:os';
import type { BacktestReport } from '../risk/index.js';
import type { CliContext } from './context.js';
import type { Sql } from '../db/pool.js';
import { formatTable, printResult } from './output.js';

function parseKind(v: string): ModelKind {
  if (v !== 'annual' && v !== 'quarterly') throw new Error(`--kind must be "annual" or "quarterly", got "${v}"`);
  return v;
}

function parseIntOpt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new Error(`${name} must be an integer, got "${v}"`);
    return n;
  };
}

/** Runs an action, turning thrown errors into one readable line and a non-zero exit code. */
function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      process.stderr.write(`error: ${(e as Error).message}\n`);
      process.exitCode = 1;
    }
  };
}

async function writeOut(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  await writeFile(file, text);
}

async function readDataset(kind: ModelKind, file: string) {
  const text = await readFile(file, 'utf8').catch((e: Error) => {
    throw new Error(`cannot read ${file}: ${e.message}`);
  });
  return parseLabelledCsv(kind, text);
}

function metricsRows(v: Partial<Record<ComponentName, Metrics>>) {
  return Object.entries(v).map(([component, m]) => ({
    component,
    rows: m.rows,
    defaults: m.defaults,
    auc: m.auc.toFixed(4),
    ks: m.ks.toFixed(4),
    brier: m.brier.toFixed(6),
    log_loss: m.log_loss.toFixed(5),
    calib_err: m.calibration_error.toFixed(5),
  }));
}

function calibrationRows(m: Metrics) {
  return m.calibration.map((c) => ({
    decile: c.bucket,
    rows: c.count,
    defaults: c.defaults,
    mean_predicted: (c.mean_predicted * 100).toFixed(3) + '%',
    observed: (c.observed_rate * 100).toFixed(3) + '%',
  }));
}

function metricsText(title: string, v: Partial<Record<ComponentName, Metrics>>): string {
  const blend = v.blend;
  return [
    title,
    formatTable(metricsRows(v)),
    '',
    ...(blend ? ['Calibration of the blend by decile of predicted probability', formatTable(calibrationRows(blend))] : []),
  ].join('\n');
}

function reportMarkdown(r: TrainReport): string {
  const md = (rows: Array<Record<string, unknown>>): string => {
    if (rows.length === 0) return '';
    const cols = Object.keys(rows[0]!);
    return [`| ${cols.join(' | ')} |`, `| ${cols.map(() => '---').join(' | ')} |`, ...rows.map((x) => `| ${cols.map((c) => String(x[c])).join(' | ')} |`)].join('\n');
  };
  const parts = [
    `# Training report: ${r.name} ${r.version} (${r.kind})`,
    '',
    r.reference_model ? '**Reference model**: trained on the synthetic reference portfolio, not on real defaults.' : '',
    '',
    `Data: ${r.data.label}, ${r.data.rows} rows, ${r.data.defaults} defaults; train ${r.data.train_rows}, validation ${r.data.validation_rows}, split seed ${r.data.seed}.`,
    '',
    '## Validation metrics',
    '',
    md(metricsRows(r.validation)),
    '',
    `Blend (fitted on validation): intercept ${r.blend.intercept}, weights ${JSON.stringify(r.blend.weights)} on component log-odds.`,
    '',
  ];
  for (const [k, m] of Object.entries(r.validation)) {
    parts.push(`### Calibration: ${k}`, '', md(calibrationRows(m)), '');
  }
  if (r.comparison) {
    const c = r.comparison;
    const before = c.validation.blend;
    const after = r.validation.blend;
    parts.push(
      `## Before and after: ${c.name} ${c.version} on the same validation split`,
      '',
      md(
        (['logistic', 'step', 'gbm', 'blend'] as const).flatMap((k) => {
          const b = c.validation[k];
          const a = r.validation[k];
          return b && a ? [{ component: k, auc_before: b.auc.toFixed(4), auc_after: a.auc.toFixed(4), brier_before: b.brier.toFixed(6), brier_after: a.brier.toFixed(6), calib_err_before: b.calibration_error.toFixed(5), calib_err_after: a.calibration_error.toFixed(5) }] : [];
        }),
      ),
      '',
    );
    if (before && after) {
      parts.push(
        '### Calibration of the blend by decile, before and after',
        '',
        md(
          after.calibration.map((a, i) => {
            const b = before.calibration[i];
            return {
              decile: a.bucket,
              mean_predicted_before: b ? (b.mean_predicted * 100).toFixed(3) + '%' : '-',
              observed_before: b ? (b.observed_rate * 100).toFixed(3) + '%' : '-',
              mean_predicted_after: (a.mean_predicted * 100).toFixed(3) + '%',
              observed_after: (a.observed_rate * 100).toFixed(3) + '%',
            };
          }),
        ),
        '',
      );
    }
  }
  parts.push('## Scorecard', '', md(r.binning.map((b) => ({ ...b, coefficient: r.logistic.coefficients[b.field] }))), '');
  if (r.curves.length > 0) {
    parts.push(
      '## Continuous WoE curves',
      '',
      'Each ratio contributes a WoE interpolated linearly between knots (medians of isotonic blocks) and held constant beyond the first and last knot; coverage is the share of training values at or below each end knot.',
      '',
      md(r.curves),
      '',
    );
  }
  return parts.join('\n');
}

function reportPathFor(out: string): string {
  return out.replace(/\.json$/i, '') + '-report.json';
}

function modelSummaryRow(a: ModelArtifact) {
  const vm = a.validation_metrics ?? {};
  return {
    kind: a.kind,
    name: a.name,
    version: a.version,
    reference: a.reference_model,
    trained_at: a.trained_at ?? '-',
    components: ['logistic', 'step', ...(a.gbm ? [`gbm(${a.gbm.source}, ${a.gbm.trees.length} trees)`] : [])].join(', '),
    blend: Object.entries(a.blend.weights)
      .map(([k, w]) => `${k}=${w}`)
      .join(' '),
    auc: vm.blend ? vm.blend.auc.toFixed(4) : '-',
    brier: vm.blend ? vm.blend.brier.toFixed(6) : '-',
  };
}

const fix4 = (v: number | null): string => (v === null || !Number.isFinite(v) ? '-' : v.toFixed(4));
const pct = (v: number | null): string => (v === null || !Number.isFinite(v) ? '-' : (v * 100).toFixed(1) + '%');

function driftText(run: DriftRun): string {
  const out = [`drift of recent predictions (last ${run.window_days} days, since ${run.since}) against each model's training data`, 'PSI: < 0.10 stable, 0.10-0.25 moderate, > 0.25 significant', ''];
  for (const r of run.reports) {
    const scope = r.scope === 'all' ? 'all tenants' : `tenant ${r.tenant_name ?? '(companies outside any organization)'}${r.tenant_id ? ` ${r.tenant_id}` : ''}`;
    out.push(`${r.kind} ${r.model.name} ${r.model.version}, ${scope}: ${r.rows} predictions (${r.pd_rows} by this version), max PSI ${fix4(r.max_psi)} ${r.status}`);
    if (r.rows === 0) {
      out.push('  no predictions in the window', '');
      continue;
    }
    out.push(
      formatTable([
        ...r.fields.map((f) => ({ input: f.field, psi: fix4(f.psi), status: f.status, missing_training: pct(f.missing_share_training), missing_recent: pct(f.missing_share_recent) })),
        ...(r.pd ? [{ input: 'PD (final probability)', psi: fix4(r.pd.psi), status: r.pd.status, missing_training: '-', missing_recent: '-' }] : []),
      ]),
      '',
    );
  }
  return out.join('\n');
}

function backtestText(kind: ModelKind, r: BacktestReport): string {
  const out = [
    `${kind} backtest as of ${r.as_of.slice(0, 10)}: predictions made 0-${r.horizon_months} months before a recorded default vs survivors of the same window`,
    `not counted: ${r.excluded.open_follow_up} with the year still open, ${r.excluded.outside_window} outside the defaults' window, ${r.excluded.after_default} made after the company's default`,
    '',
  ];
  if (r.versions.length === 0) out.push('no predictions by a known model version');
  for (const v of r.versions) {
    out.push(`${v.model_name} ${v.model_version}: ${v.predictions} predictions, ${v.defaults} defaults, AUC ${v.auc === null ? '-' : v.auc.toFixed(4)}, Brier ${v.brier === null ? '-' : v.brier.toFixed(6)}`);
    if (v.predictions === 0) {
      out.push('');
      continue;
    }
    const rows = (g: typeof v.by_risk_level, name: string) => g.map((x) => ({ [name]: x.group, predictions: x.predictions, defaults: x.defaults, observed: pct(x.observed_rate), mean_pd: pct(x.mean_pd) }));
    out.push(formatTable(rows(v.by_risk_level, 'risk_level')), '', formatTable(rows(v.by_implied_rating, 'implied_rating')), '');
    out.push(formatTable(v.calibration.map((c) => ({ bucket: c.bucket, rows: c.count, defaults: c.defaults, mean_predicted: pct(c.mean_predicted), observed: pct(c.observed_rate) }))), '');
  }
  return out.join('\n');
}

const pd4 = (x: number) => `${(x * 100).toFixed(4)} %`;

/** A run's report as an operator reads it. */
export function runReportText(id: number, r: ModelRunReport, scope: string): string {
  if (r.action === 'rescore') {
    const x = r as RescoreReport;
    return [
      `re-score run ${id}: ${x.kind} under ${x.model.name} ${x.model.version}, ${scope}`,
      formatTable([{ considered: x.considered, rescored: x.rescored, skipped_changed_meanwhile: x.skipped_changed_meanwhile, risk_level_changed: x.risk_level_changed, implied_rating_changed: x.implied_rating_changed }]),
      'old values are in the audit log (action rescore); alerts for watched companies go out at the workers\' next dispatch',
    ].join('\n');
  }
  const x = r as ShadowReport;
  const out = [
    `shadow run ${id}: ${x.kind} ${x.model.name} ${x.model.version} against the stored predictions of ${scope}`,
    formatTable([{ scored: x.scored, mean_pd_stored: pd4(x.mean_pd.stored), mean_pd_candidate: pd4(x.mean_pd.candidate), mean_abs_shift_pp: x.pd_shift_pp.mean_abs, risk_level_changed: x.risk_level.changed, implied_rating_changed: `${x.implied_rating.changed} (${x.implied_rating.upgrades} up, ${x.implied_rating.downgrades} down)` }]),
    '',
    'PD shift, candidate minus stored (percentage points)',
    x.pd_shift_pp.quantiles ? formatTable([{ mean: x.pd_shift_pp.mean, ...x.pd_shift_pp.quantiles, max_abs: x.pd_shift_pp.max_abs }]) : '(nothing scored)',
    formatTable(x.pd_shift_pp.histogram.map((h) => ({ shift_pp: h.range, predictions: h.count }))),
  ];
  if (x.risk_level.transitions.length > 0) out.push('', 'risk level changes', formatTable(x.risk_level.transitions));
  out.push('');
  if (x.labelled) {
    const l = x.labelled;
    out.push(`on ${l.predictions} labelled predictions (${l.defaults} followed by a default within 12 months)`, formatTable([
      { metric: 'AUC', stored: l.stored.auc ?? '-', candidate: l.candidate.auc ?? '-' },
      { metric: 'Brier', stored: l.stored.brier, candidate: l.candidate.brier },
    ]));
  }
  if (x.labelled_note) out.push(x.labelled_note);
  return out.join('\n');
}

export function registerModelCommands(program: Command, ctx?: CliContext): void {
  /** The owner connection for an operator's model command (drift, backtests, registry), closed afterwards. */
  async function withAdminSql<T>(fn: (sql: Sql, ctx: CliContext) => Promise<T>): Promise<T> {
    if (!ctx) throw new Error('model commands that read the database need the CLI context');
    const db = await ctx.database();
    try {
      return await fn(db.adminSql, ctx);
    } finally {
      await db.close();
    }
  }

  const model = program.command('model').description('risk models: reference data, training, evaluation, info, LightGBM import');

  model
    .command('reference-data')
    .description('generate the seeded synthetic reference portfolio (CSV: ratios, rating, defaulted)')
    .requiredOption('--kind <kind>', 'annual | quarterly', parseKind)
    .option('--rows <n>', 'number of companies', parseIntOpt('--rows'), 100000)
    .option('--seed <n>', 'random seed', parseIntOpt('--seed'), 1)
    .requiredOption('--out <file>', 'CSV file to write')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { kind: ModelKind; rows: number; seed: number; out: string; json?: boolean }) => {
        const ds = generateReferenceData(opts.kind, opts.rows, opts.seed);
        await writeOut(opts.out, datasetToCsv(ds));
        const rows = RATINGS.map((r, k) => {
          let n = 0;
          let d = 0;
          ds.rating!.forEach((x, i) => {
            if (x === r) {
              n++;
              d += ds.y[i]!;
            }
          });
          return { rating: r, rows: n, defaults: d, default_rate: n ? d / n : 0, target: TARGET_DEFAULT_RATES[k]! };
        });
        printResult(opts.json, { file: opts.out, kind: opts.kind, rows: opts.rows, seed: opts.seed, by_rating: rows }, () =>
          [
            `wrote ${opts.rows} ${opts.kind} rows to ${opts.out} (seed ${opts.seed})`,
            formatTable(rows.map((r) => ({ ...r, default_rate: (r.default_rate * 100).toFixed(3) + '%', target: (r.target * 100).toFixed(2) + '%' }))),
          ].join('\n'),
        );
      }),
    );

  model
    .command('train')
    .description('train a model family from a labelled CSV and write the artifact plus a report')
    .requiredOption('--kind <kind>', 'annual | quarterly', parseKind)
    .option('--data <file>', 'CSV with the ratio columns and defaulted (0/1)')
    .option('--from-database', 'train on the stored predictions labelled by recorded defaults (see models/README.md, Backtesting)')
    .option('--tenant <id>', 'with --from-database: only this tenant\'s history')
    .option('--out <file>', 'artifact file (default ./<kind>.json)')
    .option('--report <file>', 'report file (default <out>-report.json; a .md twin is written too)')
    .option('--seed <n>', 'train/validation split seed', parseIntOpt('--seed'), 42)
    .option('--name <name>', 'model name')
    .option('--model-version <version>', 'model version', '1.0.0')
    .option('--not-reference', 'mark as a production model rather than a reference model')
    .option('--no-timestamp', 'leave trained_at null so the artifact is byte-identical across runs')
    .option('--compare <file>', 'artifact to score on the same validation split for a before/after report (e.g. the shipped model)')
    .option('--json', 'print the report as JSON')
    .action(
      action(
        async (opts: {
          kind: ModelKind;
          data?: string;
          fromDatabase?: boolean;
          tenant?: string;
          out?: string;
          report?: string;
          seed: number;
          name?: string;
          modelVersion: string;
          notReference?: boolean;
          timestamp: boolean;
          compare?: string;
          json?: boolean;
        }) => {
          if (!opts.data === !opts.fromDatabase) throw new Error('give exactly one of --data FILE and --from-database');
          if (opts.tenant && !opts.fromDatabase) throw new Error('--tenant needs --from-database');
          if (opts.tenant && !/^[0-9a-f-]{36}$/i.test(opts.tenant)) throw new Error('--tenant must be a tenant id (uuid)');
          const ds = opts.data
            ? await readDataset(opts.kind, opts.data)
            : await withAdminSql(async (sql) => {
                const h = await labelledHistory(sql, opts.kind, opts.tenant ? { tenantId: opts.tenant } : {});
                let d = 0;
                for (const v of h.ds.y) d += v;
                if (d < 20) throw new Error(`the stored history has ${h.ds.y.length} labelled predictions with ${d} defaults; training needs at least 20 defaults (record defaults with POST /companies/{id}/defaults)`);
                return h.ds;
              });
          // Read before training: --compare may name the very file --out is about to overwrite.
          const compareWith = opts.compare ? validateArtifact(opts.kind, await readArtifact(opts.compare)) : undefined;
          const out = opts.out ?? `${opts.kind}.json`;
          const trainOpts: Parameters<typeof trainModel>[1] = {
            seed: opts.seed,
            version: opts.modelVersion,
            referenceModel: !opts.notReference,
            dataLabel: opts.data ? path.basename(opts.data) : `database history${opts.tenant ? ` of tenant ${opts.tenant}` : ''}`,
            trainedAt: opts.timestamp ? new Date().toISOString() : null,
          };
          if (opts.name) trainOpts.name = opts.name;
          if (compareWith) trainOpts.compareWith = compareWith;
          const { artifact, report } = trainModel(ds, trainOpts);
          const reportFile = opts.report ?? reportPathFor(out);
          await writeOut(out, JSON.stringify(artifact, null, 1) + '\n');
          await writeOut(reportFile, JSON.stringify(report, null, 2) + '\n');
          await writeOut(reportFile.replace(/\.json$/i, '') + '.md', reportMarkdown(report));
          printResult(opts.json, report, () =>
            [
              `trained ${artifact.name} ${artifact.version} on ${report.data.train_rows} rows; wrote ${out} and ${reportFile}`,
              `blend: intercept ${artifact.blend.intercept}, weights ${JSON.stringify(artifact.blend.weights)}`,
              '',
              metricsText('Validation metrics', report.validation),
              ...(report.comparison ? ['', metricsText(`Before: ${report.comparison.name} ${report.comparison.version} on the same validation split`, report.comparison.validation)] : []),
            ].join('\n'),
          );
        },
      ),
    );

  model
    .command('evaluate')
    .description('evaluate a model on a labelled CSV: AUC, KS, Brier, calibration')
    .requiredOption('--kind <kind>', 'annual | quarterly', parseKind)
    .requiredOption('--data <file>', 'CSV with the ratio columns and defaulted (0/1)')
    .option('--model <file>', 'artifact (default: the shipped model for the kind)')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { kind: ModelKind; data: string; model?: string; json?: boolean }) => {
        const file = opts.model ?? path.join(defaultModelsDir(), MODEL_FILES[opts.kind]);
        const m = compileModel(opts.kind, await readArtifact(file));
        const ds = await readDataset(opts.kind, opts.data);
        const res = evaluateModel(m, ds);
        printResult(opts.json, { model: m.ref, file, data: opts.data, metrics: res }, () =>
          metricsText(`${m.ref.name} ${m.ref.version} on ${opts.data}`, res),
        );
      }),
    );

  model
    .command('info')
    .description('show the installed models: name, version, components, blend weights, validation metrics')
    .option('--dir <dir>', 'models directory', defaultModelsDir())
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { dir: string; json?: boolean }) => {
        const arts: ModelArtifact[] = [];
        for (const kind of ['annual', 'quarterly'] as const) {
          const file = path.join(opts.dir, MODEL_FILES[kind]);
          arts.push(validateArtifact(kind, await readArtifact(file)));
        }
        printResult(
          opts.json,
          arts.map((a) => ({
            kind: a.kind,
            name: a.name,
            version: a.version,
            reference_model: a.reference_model,
            trained_at: a.trained_at,
            description: a.description,
            fields: a.fields,
            blend: a.blend,
            gbm: a.gbm ? { source: a.gbm.source, trees: a.gbm.trees.length } : null,
            validation_metrics: a.validation_metrics ?? null,
          })),
          () => [`models in ${opts.dir}`, formatTable(arts.map(modelSummaryRow))].join('\n'),
        );
      }),
    );

  model
    .command('monitor')
    .description('drift: population stability index of each ratio and of the PD, recent predictions vs training data, per kind (and per tenant)')
    .option('--days <n>', 'predictions made in the last N days', parseIntOpt('--days'), 90)
    .option('--by-tenant', 'also one report per tenant')
    .option('--store', 'store the run as the latest (what /metrics and the drift alarm read), as the weekly job does')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { days: number; byTenant?: boolean; store?: boolean; json?: boolean }) => {
        if (opts.days < 1 || opts.days > 3660) throw new Error('--days must be from 1 to 3660');
        const run = await withAdminSql(async (sql, c) => {
          // The models being served (the registry's champions, else the shipped files), as the weekly job uses.
          const r = await computeModelDrift(sql, await c.engine(sql), { days: opts.days, byTenant: !!opts.byTenant });
          if (opts.store) await storeModelDrift(sql, r);
          return r;
        });
        printResult(opts.json, run, () => driftText(run));
      }),
    );

  const who = (v?: string): string => v ?? process.env.USER ?? userInfo().username;
  const versionRow = (r: ModelVersionRow) => ({
    kind: r.kind,
    name: r.name,
    version: r.version,
    status: r.status,
    reference: r.reference_model,
    registered: `${new Date(r.registered_at).toISOString()} by ${r.registered_by}`,
    promoted: r.promoted_at ? new Date(r.promoted_at).toISOString() : '-',
    sha256: r.sha256.slice(0, 12),
  });

  model
    .command('register')
    .description('add an artifact to the model registry as a candidate (validated; a version is registered once)')
    .requiredOption('--kind <kind>', 'annual | quarterly', parseKind)
    .argument('<file>', 'model artifact (JSON)')
    .option('--by <name>', 'who registers it (default: the OS user)')
    .option('--json', 'print JSON')
    .action(
      action(async (file: string, opts: { kind: ModelKind; by?: string; json?: boolean }) => {
        const json = await readArtifact(file);
        const row = await withAdminSql((sql) => registerModel(sql, opts.kind, json, who(opts.by)));
        printResult(opts.json, row, () => `registered\n${formatTable([versionRow(row)])}`);
      }),
    );

  model
    .command('list')
    .description('model versions in the registry, with the champion of each kind')
    .option('--kind <kind>', 'annual | quarterly', parseKind)
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { kind?: ModelKind; json?: boolean }) => {
        const rows = await withAdminSql((sql) => listModels(sql, opts.kind));
        printResult(opts.json, rows, () => (rows.length === 0 ? 'the registry is empty: the shipped models/*.json apply (accunode model register)' : formatTable(rows.map(versionRow))));
      }),
    );

  model
    .command('show')
    .description('one registered version: status, validation metrics, history of registration, promotions and retirement')
    .requiredOption('--kind <kind>', 'annual | quarterly', parseKind)
    .argument('<version>', 'model version')
    .option('--name <name>', 'model name, when several models share the version')
    .option('--json', 'print JSON (includes the artifact)')
    .action(
      action(async (version: string, opts: { kind: ModelKind; name?: string; json?: boolean }) => {
        const m = await withAdminSql((sql) => showModel(sql, opts.kind, version, opts.name));
        printResult(opts.json, m, () =>
          [
            formatTable([versionRow(m)]),
            '',
            m.artifact.validation_metrics ? formatTable(Object.entries(m.artifact.validation_metrics).map(([k, v]) => ({ component: k, auc: v.auc, ks: v.ks, brier: v.brier }))) : 'no validation metrics in the artifact',
            '',
            formatTable(m.events.map((e) => ({ at: new Date(e.at).toISOString(), action: e.action, by: e.actor, reason: e.reason ?? '-' }))),
          ].join('\n'),
        );
      }),
    );

  for (const verb of ['promote', 'retire'] as const) {
    model
      .command(verb)
      .description(verb === 'promote' ? 'make a registered version the champion of its kind (the previous champion becomes a candidate); recorded with who and why' : 'retire a candidate (never the champion); recorded with who and why')
      .requiredOption('--kind <kind>', 'annual | quarterly', parseKind)
      .argument('<version>', 'model version')
      .option('--name <name>', 'model name, when several models share the version')
      .requiredOption('--reason <text>', 'why (kept in the registry history)')
      .option('--by <name>', 'who (default: the OS user)')
      .option('--json', 'print JSON')
      .action(
        action(async (version: string, opts: { kind: ModelKind; name?: string; reason: string; by?: string; json?: boolean }) => {
          const o = { reason: opts.reason, ...(opts.name ? { name: opts.name } : {}) };
          if (verb === 'promote') {
            const r = await withAdminSql((sql) => promoteModel(sql, opts.kind, version, who(opts.by), o));
            printResult(opts.json, r, () => `champion now\n${formatTable([versionRow(r.champion)])}${r.previous ? `\nprevious champion ${r.previous.name} ${r.previous.version} is a candidate again` : ''}`);
          } else {
            const r = await withAdminSql((sql) => retireModel(sql, opts.kind, version, who(opts.by), o));
            printResult(opts.json, r, () => `retired\n${formatTable([versionRow(r)])}`);
          }
        }),
      );
  }

  type RunOpts = { tenant?: string; organization?: string; queue?: boolean; by?: string; progress: boolean; json?: boolean };
  /** What shadow and rescore both take: the scope, where the run goes, and the output. */
  const runOptions = (cmd: Command) =>
    cmd
      .option('--tenant <id>', "only this tenant's predictions")
      .option('--organization <id>', "only this organization's predictions")
      .option('--queue', 'run it in a worker (prints the run id) instead of here')
      .option('--by <name>', 'who asks (default: the OS user)')
      .option('--no-progress', 'no progress bar')
      .option('--json', 'print JSON');
  const scopeOf = (o: { tenant?: string; organization?: string }): RunScope => ({ tenantId: o.tenant ?? null, organizationId: o.organization ?? null });
  const scopeText = (r: { tenant_id: string | null; organization_id: string | null }) =>
    r.organization_id ? `organization ${r.organization_id}` : r.tenant_id ? `tenant ${r.tenant_id}` : 'all tenants';

  /** Runs a requested run here with a progress bar, or (--queue) hands it to the workers. */
  async function startRun(sql: Sql, c: CliContext, run: ModelRunRow, opts: { queue?: boolean; progress: boolean; json?: boolean }): Promise<void> {
    if (opts.queue) {
      const r = await c.redis('accunode-model-run');
      const producers = createProducers(r.client, c.config.QUEUE_PREFIX);
      try {
        await producers.enqueue('model.run', { runId: run.id });
      } finally {
        await producers.close();
        await r.close();
      }
      printResult(opts.json, run, () => `queued model run ${run.id} (${run.action} ${run.kind} ${run.model_name} ${run.model_version}, ${scopeText(run)}); see accunode model run ${run.id}`);
      return;
    }
    const engine = await c.engine(sql);
    const cache = await c.redisIfUp('accunode-model-run');
    const bar = opts.progress && !opts.json && process.stderr.isTTY !== false
      ? new cliProgress.SingleBar({ format: `${run.action} {bar} {percentage}% | {value}/{total} predictions`, stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic)
      : null;
    bar?.start(1, 0);
    try {
      const report = await executeModelRun(
        {
          adminSql: sql,
          log: c.log,
          ...(cache ? { cacheRedis: cache.client } : {}),
          ratingScale: c.config.IMPLIED_RATING_SCALE,
          thresholds: engine.thresholds,
          onProgress: (p) => {
            bar?.setTotal(Math.max(1, p.total));
            bar?.update(p.done);
          },
        },
        run.id,
      );
      bar?.stop();
      printResult(opts.json, { run: run.id, ...report }, () => runReportText(run.id, report, scopeText(run)));
    } finally {
      bar?.stop();
      await cache?.close();
    }
  }

  const shadowCmd = model
    .command('shadow')
    .description('score the stored predictions of a scope with a registered candidate, changing nothing users see: PD shift distribution, risk level and implied rating changes, AUC and calibration where defaults are recorded')
    .requiredOption('--kind <kind>', 'annual | quarterly', parseKind)
    .argument('<version>', 'the registered version to shadow-score')
    .option('--name <name>', 'model name, when several models share the version');
  runOptions(shadowCmd)
    .action(
      action(async (version: string, opts: RunOpts & { kind: ModelKind; name?: string }) => {
        await withAdminSql(async (sql, c) => {
          const run = await requestModelRun(sql, { action: 'shadow', kind: opts.kind, version, ...(opts.name ? { name: opts.name } : {}), scope: scopeOf(opts), by: who(opts.by) });
          await startRun(sql, c, run, opts);
        });
      }),
    );

  const rescoreCmd = model
    .command('rescore')
    .description("re-score a scope's stored predictions that an earlier model made under the champion: old values kept in the audit log, watch-list alerts raised")
    .requiredOption('--kind <kind>', 'annual | quarterly', parseKind);
  runOptions(rescoreCmd)
    .action(
      action(async (opts: RunOpts & { kind: ModelKind }) => {
        await withAdminSql(async (sql, c) => {
          const run = await requestModelRun(sql, { action: 'rescore', kind: opts.kind, scope: scopeOf(opts), by: who(opts.by) });
          await startRun(sql, c, run, opts);
        });
      }),
    );

  model
    .command('runs')
    .description('recent shadow and re-score runs')
    .option('--kind <kind>', 'annual | quarterly', parseKind)
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { kind?: ModelKind; json?: boolean }) => {
        const rows = await withAdminSql((sql) => listRuns(sql, opts.kind));
        printResult(opts.json, rows, () =>
          rows.length === 0
            ? 'no model runs yet (accunode model shadow, accunode model rescore)'
            : formatTable(rows.map((r) => ({
                id: r.id, action: r.action, kind: r.kind, model: `${r.model_name} ${r.model_version}`, scope: scopeText(r), status: r.status,
                progress: r.progress.total ? `${r.progress.done ?? 0}/${r.progress.total}` : '-', by: r.requested_by,
                requested: new Date(r.created_at).toISOString(), finished: r.finished_at ? new Date(r.finished_at).toISOString() : '-',
              }))),
        );
      }),
    );

  model
    .command('run')
    .description("one run's status and report")
    .argument('<id>', 'run id (accunode model runs)', parseIntOpt('<id>'))
    .option('--json', 'print JSON')
    .action(
      action(async (id: number, opts: { json?: boolean }) => {
        const r = await withAdminSql((sql) => findRun(sql, id));
        if (!r) throw new Error(`no model run ${id} (accunode model runs lists them)`);
        printResult(opts.json, r, () =>
          r.report ? runReportText(r.id, r.report as ModelRunReport, scopeText(r)) : `model run ${r.id}: ${r.status}${r.progress.total ? ` (${r.progress.done ?? 0}/${r.progress.total})` : ''}${r.error ? `\nerror: ${r.error}` : ''}`,
        );
      }),
    );

  model
    .command('backtest')
    .description('backtest on recorded defaults: per model version AUC, Brier, calibration, observed default rate per risk level (predictions 0-12 months before each default)')
    .requiredOption('--kind <kind>', 'annual | quarterly', parseKind)
    .option('--as-of <date>', 'evaluate as of this date (YYYY-MM-DD, default today)')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { kind: ModelKind; asOf?: string; json?: boolean }) => {
        let asOf: Date | undefined;
        if (opts.asOf !== undefined) {
          asOf = new Date(`${opts.asOf}T00:00:00Z`);
          if (!/^\d{4}-\d{2}-\d{2}$/.test(opts.asOf) || Number.isNaN(asOf.getTime())) throw new Error('--as-of must be a date written YYYY-MM-DD');
        }
        const report = await withAdminSql((sql) => backtestOn(sql, opts.kind, asOf ? { asOf } : {}));
        printResult(opts.json, report, () => backtestText(opts.kind, report));
      }),
    );

  model
    .command('import-lightgbm')
    .description('import a LightGBM text model (model.txt) as the GBM component of a quarterly artifact')
    .argument('<file>', 'LightGBM model.txt (binary objective, numerical splits)')
    .option('--out <file>', 'artifact to write (default ./quarterly-lightgbm.json)')
    .option('--base <file>', 'quarterly artifact supplying scorecard and blend (default: shipped model)')
    .option('--data <file>', 'labelled quarterly CSV to refit the blend weights on (recommended)')
    .option('--name <name>', 'model name (default: base name)')
    .option('--model-version <version>', 'model version (default: <base version>+lightgbm)')
    .option('--json', 'print JSON')
    .action(
      action(async (file: string, opts: { out?: string; base?: string; data?: string; name?: string; modelVersion?: string; json?: boolean }) => {
        const text = await readFile(file, 'utf8').catch((e: Error) => {
          throw new Error(`cannot read ${file}: ${e.message}`);
        });
        const imported = importLightGbm(text);
        const baseFile = opts.base ?? path.join(defaultModelsDir(), MODEL_FILES.quarterly);
        const base = validateArtifact('quarterly', await readArtifact(baseFile));
        const replaceOpts: Parameters<typeof withReplacedGbm>[2] = { trainedAt: new Date().toISOString() };
        if (opts.name) replaceOpts.name = opts.name;
        if (opts.modelVersion) replaceOpts.version = opts.modelVersion;
        if (opts.data) replaceOpts.data = await readDataset('quarterly', opts.data);
        const { artifact, validation } = withReplacedGbm(base, imported.gbm, replaceOpts);
        const out = opts.out ?? 'quarterly-lightgbm.json';
        await writeOut(out, JSON.stringify(artifact, null, 1) + '\n');
        printResult(opts.json, { out, model: { name: artifact.name, version: artifact.version }, lightgbm: imported.summary, blend: artifact.blend, validation }, () =>
          [
            `imported ${file} -> ${out} (${artifact.name} ${artifact.version})`,
            formatTable([
              {
                lightgbm_version: imported.summary.version,
                objective: imported.summary.objective,
                trees: imported.summary.trees,
                leaves: imported.summary.leaves,
                average_output: imported.summary.average_output,
                features: imported.summary.features.join(' '),
              },
            ]),
            `blend: intercept ${artifact.blend.intercept}, weights ${JSON.stringify(artifact.blend.weights)} (${opts.data ? 'refitted on ' + opts.data : 'kept from base; pass --data to refit'})`,
            ...(validation ? ['', metricsText('Metrics on --data', validation)] : []),
          ].join('\n'),
        );
      }),
    );
}
