// GET /metrics (Prometheus text format) and the HTTP latency histogram by route and status.
//
//   await app.register(metricsPlugin, { metrics, collector });
//
// Registered at the root (the plugin skips encapsulation), so its onResponse hook sees every
// route. The route label is the route pattern (/api/v1/companies/:id), never the raw URL, and
// unmatched requests share one label, so label cardinality stays bounded.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { metrics as defaultMetrics, type AppMetrics, type StatsCollector } from '../ops/metrics.js';

export interface MetricsPluginOptions {
  metrics?: AppMetrics;
  /** Database/Redis figures, refreshed at most every 15 s before a scrape is answered. */
  collector?: StatsCollector;
  /** Default /metrics. */
  path?: string;
}

const plugin: FastifyPluginAsync<MetricsPluginOptions> = async (app: FastifyInstance, opts) => {
  const m = opts.metrics ?? defaultMetrics;
  const path = opts.path ?? '/metrics';
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions?.url ?? '(unmatched)';
    if (route === path) return;
    m.httpDuration.observe({ method: req.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
  app.get(path, { schema: { hide: true } }, async (_req, reply) => {
    if (opts.collector) await opts.collector.maybeCollect();
    reply.header('content-type', m.registry.contentType);
    return m.registry.metrics();
  });
};

// Same effect as fastify-plugin: hooks apply to the whole application, not a child context.
(plugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
(plugin as unknown as Record<symbol, string>)[Symbol.for('fastify.display-name')] = 'accunode-metrics';

export const metricsPlugin = plugin;
