/**
 * The models a process scores with: each kind's registry champion (model_versions, migration
 * 0051; `accunode model promote`), or the shipped artifact in MODELS_DIR while the registry has
 * none. Every process checks the registry every REFRESH_MS and switches when the champion of a
 * kind changes, so a promotion reaches every api and worker process without a restart, and each
 * prediction records the version that made it (the engine's model reference). Polling, not
 * LISTEN, so it works through PgBouncer in transaction mode like every other query.
 */
import type { Sql } from '../db/pool.js';
import type { Logger } from '../logging.js';
import { createRiskEngine, type ModelKind, type RiskEngine, type RiskThresholds } from '../risk/index.js';
import { championArtifact } from './model-registry.js';
import { championIds } from '../repositories/model-versions.js';
import { readModelFiles } from './model-store.js';

const REFRESH_MS = 30_000;
const KINDS: readonly ModelKind[] = ['annual', 'quarterly'];

export class ServingModels {
  private current: RiskEngine;
  /** Which champion (model_versions id) each kind is serving; null: the shipped file. */
  private serving: Record<ModelKind, number | null> = { annual: null, quarterly: null };
  private timer: NodeJS.Timeout | null = null;
  private refreshing: Promise<boolean> | null = null;

  /** Delegates to the models of the moment: services keep this one object for their lifetime. */
  readonly engine: RiskEngine;

  private constructor(
    private readonly files: Record<ModelKind, unknown>,
    private readonly thresholds: Partial<RiskThresholds> | undefined,
    private readonly log: Logger | undefined,
  ) {
    this.current = this.build({ annual: files.annual, quarterly: files.quarterly });
    const now = () => this.current;
    this.engine = {
      get thresholds() {
        return now().thresholds;
      },
      get models() {
        return now().models;
      },
      predictAnnual: (r, o) => now().predictAnnual(r, o),
      predictQuarterly: (r, o) => now().predictQuarterly(r, o),
      predictAnnualBatch: (rows, o) => now().predictAnnualBatch(rows, o),
      predictQuarterlyBatch: (rows, o) => now().predictQuarterlyBatch(rows, o),
      artifact: (k) => now().artifact(k),
      compiled: (k) => now().compiled(k),
    };
  }

  /** The shipped artifacts (validated here: a broken file stops start-up). */
  static async fromFiles(dir?: string, thresholds?: Partial<RiskThresholds>, log?: Logger): Promise<ServingModels> {
    return new ServingModels(await readModelFiles(dir), thresholds, log);
  }

  private build(a: Record<ModelKind, unknown>): RiskEngine {
    return createRiskEngine({ annual: a.annual, quarterly: a.quarterly, ...(this.thresholds ? { thresholds: this.thresholds } : {}) });
  }

  /** Switches to the registry's champions if they changed; true when it switched. */
  refresh(sql: Sql): Promise<boolean> {
    this.refreshing ??= this.doRefresh(sql).finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async doRefresh(sql: Sql): Promise<boolean> {
    const rows = await championIds(sql);
    const want: Record<ModelKind, number | null> = { annual: null, quarterly: null };
    for (const r of rows) want[r.kind] = r.id;
    if (KINDS.every((k) => want[k] === this.serving[k])) return false;
    const artifacts: Record<ModelKind, unknown> = { annual: this.files.annual, quarterly: this.files.quarterly };
    for (const k of KINDS) if (want[k] !== null) artifacts[k] = (await championArtifact(sql, k)) ?? this.files[k];
    const next = this.build(artifacts);
    this.current = next;
    this.serving = want;
    this.log?.info({ models: next.models, from: { annual: want.annual === null ? 'file' : 'registry', quarterly: want.quarterly === null ? 'file' : 'registry' } }, 'risk models now serving');
    return true;
  }

  /** Checks the registry every REFRESH_MS (a failed check is logged and tried again). */
  start(sql: () => Sql, intervalMs = REFRESH_MS): this {
    this.timer ??= setInterval(() => {
      this.refresh(sql()).catch((err: unknown) => this.log?.warn({ err: (err as Error).message }, 'could not check the model registry; serving the models loaded'));
    }, intervalMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
