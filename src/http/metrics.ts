// GET /metrics (Prometheus text format) and the HTTP latency histogram by route and status.
//
//   await app.register(metricsPlugin, { metrics, collector, token: config.METRICS_TOKEN ?? null });
//
// Registered at the root (the plugin skips encapsulation), so its onResponse hook sees every
// route. The route label is the route pattern (/api/v1/companies/:id), never the raw URL, and
// unmatched requests share one label, so label cardinality stays bounded.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { metrics as defaultMetrics, type AppMetrics, type StatsCollector } from '../ops/monitoring/metrics.js';

interface MetricsPluginOptions {
  metrics?: AppMetrics;
  /** Database/Redis figures, refreshed at most every 15 s before a scrape is answered. */
  collector?: StatsCollector;
  /** Default /metrics. */
  path?: string;
  /**
   * Bearer token a scrape must carry (METRICS_TOKEN). null: /metrics is refused (no token
   * configured); undefined: open (a listener of its own that only Prometheus reaches).
   */
  token?: string | null;
}

const plugin: FastifyPluginAsync<MetricsPluginOptions> = async (app: FastifyInstance, opts) => {
  const m = opts.metrics ?? defaultMetrics;
  const path = opts.path ?? '/metrics';
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions?.url ?? '(unmatched)';
    if (route === path) return;
    m.httpDuration.observe({ method: req.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
  // Metrics name routes, tenants' traffic shape, queue depths and database figures: not for the
  // public internet the api listens on. Hashes make the comparison constant-time whatever the
  // length of what was sent.
  const want = opts.token ? createHash('sha256').update(opts.token).digest() : null;
  app.get(path, { schema: { hide: true } }, async (req, reply) => {
    if (opts.token !== undefined) {
      const error = (message: string) => ({ error: { code: 'unauthorized', message } });
      if (!want) return reply.status(403).send({ error: { code: 'forbidden', message: 'metrics are off: set METRICS_TOKEN and scrape with Authorization: Bearer <token>' } });
      const m = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''));
      if (!m) return reply.status(401).header('www-authenticate', 'Bearer realm="metrics"').send(error('metrics need Authorization: Bearer <METRICS_TOKEN>'));
      if (!timingSafeEqual(createHash('sha256').update(m[1]!).digest(), want)) return reply.status(401).send(error('wrong metrics token'));
    }
    if (opts.collector) await opts.collector.maybeCollect();
    reply.header('content-type', m.registry.contentType);
    return m.registry.metrics();
  });
};

// Same effect as fastify-plugin: hooks apply to the whole application, not a child context.
(plugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
(plugin as unknown as Record<symbol, string>)[Symbol.for('fastify.display-name')] = 'accunode-metrics';

export const metricsPlugin = plugin;
