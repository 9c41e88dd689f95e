/**
 * Redis connections for BullMQ (the queue Redis: REDIS_URL). BullMQ needs
 * maxRetriesPerRequest: null (blocking commands must wait out a reconnect rather than fail),
 * and a hash-tagged prefix so all of a queue's keys land in one cluster slot.
 */
import { Redis } from 'ioredis';

/** Queue key prefix; the {…} hash tag keeps every queue key in one Redis Cluster slot. */
export const DEFAULT_QUEUE_PREFIX = '{accunode}';

export function createQueueConnection(url: string, name = 'accunode-queue'): Redis {
  return new Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
  });
}

export function checkPrefix(prefix: string): string {
  if (!/^\{[^{}]+\}/.test(prefix)) throw new Error(`queue prefix must start with a {hash tag} for Redis Cluster (got "${prefix}")`);
  return prefix;
}
