// Folds the rollup deltas that writes append (migration 0040) into the rollup tables, so readers
// add a few recent deltas to compact rows rather than an ever-growing log. Every api and worker
// process runs one; rollup_compact() lets one at a time work (an advisory lock) and the others
// skip. Answers are exact either way: this only keeps them fast.
import type { Sql } from '../db/pool.js';
import type { Logger } from '../logging.js';
import { compactRollups } from '../repositories/rollups.js';

interface RollupCompactorOptions {
  intervalMs?: number;
  batch?: number;
}

export class RollupCompactor {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  /** Deltas folded since start (for logs and tests). */
  folded = 0;

  constructor(
    private readonly sql: () => Sql,
    private readonly log: Logger,
    private readonly opts: RollupCompactorOptions = {},
  ) {}

  start(): this {
    this.stopped = false;
    this.timer = setInterval(() => void this.tick(), this.opts.intervalMs ?? 1000);
    this.timer.unref();
    return this;
  }

  /** One pass: folds batches until the log is short or another process holds the lock. */
  tick(): Promise<void> {
    if (this.running || this.stopped) return this.running ?? Promise.resolve();
    const batch = this.opts.batch ?? 20_000;
    this.running = (async () => {
      try {
        for (let i = 0; i < 50 && !this.stopped; i++) {
          const n = await compactRollups(this.sql(), batch);
          if (n > 0) this.folded += n;
          if (n < batch) break;
        }
      } catch (err) {
        // The database restarting or failing over: the next tick tries again.
        this.log.warn({ err: (err as Error).message }, 'rollup compaction failed; retrying on the next tick');
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
