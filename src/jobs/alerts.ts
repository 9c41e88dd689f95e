/**
 * The alert jobs (migration 0070, services/alerts.ts): `alerts.dispatch` turns the outbox of
 * changed predictions into alerts and queues one `webhooks.deliver` per delivery; each delivery
 * is retried by the queue with exponential back-off (catalogue) and marked failed after its last
 * attempt. Both run as the owner: the outbox and the webhook secrets are closed to app_user.
 */
import type { Job } from 'bullmq';
import type { Sql } from '../db/pool.js';
import { deliverWebhook, dispatchAlerts } from '../services/alerts.js';
import type { JobPayloads } from './catalogue.js';
import type { RatingGrade } from '../risk/implied-rating.js';

interface AlertJobDeps {
  adminSql: Sql;
  /** Queues one delivery (producers.enqueue('webhooks.deliver', …)). */
  enqueueDelivery: (deliveryId: string) => Promise<unknown>;
  /** Per-attempt timeout of a webhook request. */
  timeoutMs?: number;
  /** Deliveries may go to private and loopback addresses (WEBHOOK_ALLOW_PRIVATE_TARGETS). */
  allowPrivateTargets?: boolean;
  /** IMPLIED_RATING_SCALE (default: the reference calibration). */
  ratingScale?: readonly RatingGrade[];
}

export interface AlertJobs {
  dispatch(): Promise<unknown>;
  deliver(job: Job<JobPayloads['webhooks.deliver']>): Promise<unknown>;
}

export function alertJobs(deps: AlertJobDeps): AlertJobs {
  return {
    async dispatch() {
      let total = { changes: 0, alerts: 0, deliveries: 0 };
      // Drain the outbox in batches; each batch commits before its deliveries are queued.
      for (;;) {
        const r = await dispatchAlerts(deps.adminSql, undefined, deps.ratingScale);
        for (const id of r.deliveries) await deps.enqueueDelivery(id);
        total = { changes: total.changes + r.changes, alerts: total.alerts + r.alerts, deliveries: total.deliveries + r.deliveries.length };
        if (r.changes === 0) return total;
      }
    },
    async deliver(job) {
      const final = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      return { outcome: await deliverWebhook(deps.adminSql, job.data.deliveryId, { final, allowPrivateTargets: deps.allowPrivateTargets ?? false, ...(deps.timeoutMs ? { timeoutMs: deps.timeoutMs } : {}) }) };
    },
  };
}

/**
 * Runs the dispatch every `intervalMs` in a worker process (as RollupCompactor folds rollups),
 * so an alert from a single create goes out within that interval without a cron tick per
 * minute in the schedule. Dispatchers in several workers do not collide (the outbox is read
 * with SKIP LOCKED).
 */
export class AlertDispatcher {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;

  constructor(private readonly jobs: AlertJobs, private readonly onError: (err: Error) => void, private readonly intervalMs = 10_000) {}

  start(): this {
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.jobs.dispatch().catch((err: Error) => this.onError(err)).finally(() => (this.running = null));
    }, this.intervalMs);
    this.timer.unref();
    return this;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
