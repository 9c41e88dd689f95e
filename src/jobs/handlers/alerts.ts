// Alerts of watched companies (issue 17): one dispatch of the outbox, and one signed webhook
// delivery, retried by BullMQ with the catalogue's back-off.
import { UnrecoverableError } from 'bullmq';
import type { AlertJobs } from '../alerts.js';
import type { JobDeps, JobHandler } from '../context.js';

function alertsOf(deps: JobDeps): AlertJobs {
  if (!deps.alerts) throw new UnrecoverableError('alerts are not configured in this worker');
  return deps.alerts;
}

export const dispatchAlerts: JobHandler<'alerts.dispatch'> = (deps) => alertsOf(deps).dispatch();

export const deliverWebhook: JobHandler<'webhooks.deliver'> = (deps, { job }) => alertsOf(deps).deliver(job);
