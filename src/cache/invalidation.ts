import type { Redis } from 'ioredis';
import type { Logger } from '../logging.js';
import { analyticsGensFor, keys } from './keys.js';

/**
 * For write paths outside the API's services (bulk uploads, maintenance): drop the cached copies
 * of predictions they replaced or removed and make the affected scopes' analytics stale. Best
 * effort: a cache Redis that is down is logged, and the TTLs (30 min, 6 h) bound what is left.
 */
export async function invalidatePredictionWrites(
  redis: Redis | undefined,
  log: Logger | undefined,
  ids: readonly string[],
  scopes: ReadonlyArray<{ access_level: string; organization_id: string | null; created_by: string | null }>,
): Promise<void> {
  if (!redis || (ids.length === 0 && scopes.length === 0)) return;
  const gens = new Set<string>();
  for (const s of scopes) for (const g of analyticsGensFor(s)) gens.add(g);
  try {
    const m = redis.multi();
    for (let i = 0; i < ids.length; i += 1000) m.del(...ids.slice(i, i + 1000).map((id) => keys.prediction(id)));
    for (const g of gens) m.incr(g);
    await m.exec();
  } catch (err) {
    log?.warn({ err: (err as Error).message, predictions: ids.length }, 'cache invalidation after a bulk/maintenance write failed');
  }
}
