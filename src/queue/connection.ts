/**
 * Redis connections for BullMQ (the queue Redis: REDIS_URL). BullMQ needs
 * maxRetriesPerRequest: null (blocking commands must wait out a reconnect rather than fail),
 * and a hash-tagged prefix so all of a queue's keys land in one cluster slot.
 */
import type { Redis } from 'ioredis';
import { connectRedis } from '../redis/topology.js';

/** Queue key prefix; the {…} hash tag keeps every queue key in one Redis Cluster slot. */
export const DEFAULT_QUEUE_PREFIX = '{accunode}';

/**
 * The queue Redis follows the configured topology (REDIS_SENTINELS / REDIS_CLUSTER_NODES, TLS
 * CA): for REDIS_URL, prepareRedis registered it (src/redis/topology.ts). A Cluster client is
 * returned typed as Redis; BullMQ recognises and drives it as a Cluster.
 */
export function createQueueConnection(url: string, name = 'accunode-queue'): Redis {
  return connectRedis(url, {
    connectionName: name,
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
  });
}

export function checkPrefix(prefix: string): string {
  if (!/^\{[^{}]+\}/.test(prefix)) throw new Error(`queue prefix must start with a {hash tag} for Redis Cluster (got "${prefix}")`);
  return prefix;
}
