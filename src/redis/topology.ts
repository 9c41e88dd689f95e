/**
 * How the queue/session Redis (REDIS_URL) is reached: one server (the URL), a replication group
 * behind Sentinel (REDIS_SENTINELS + REDIS_SENTINEL_NAME: the client asks the Sentinels for the
 * current primary and follows failovers without a restart), or a Redis Cluster
 * (REDIS_CLUSTER_NODES). The URL still carries the credentials (redis://user:password@…, /db)
 * and TLS (rediss://, with the CA from REDIS_TLS_CA_FILE). createRedis and createQueueConnection
 * build every client through connectRedis, so each role follows the same configuration.
 */
import { readFileSync } from 'node:fs';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { clusterSafe } from './cluster-safe.js';
import type { HostPort } from '../config/index.js';


interface RedisTopology {
  /** Sentinels of the replication group; empty: no Sentinel. */
  sentinels: HostPort[];
  sentinelName: string;
  sentinelPassword?: string;
  /** Seed nodes of a Redis Cluster; empty: no Cluster. */
  clusterNodes: HostPort[];
  /** PEM file of the CA that signed the Redis servers' certificates (rediss:// URLs). */
  tlsCaFile?: string;
}

export function topologyOf(config: {
  REDIS_SENTINELS: HostPort[];
  REDIS_SENTINEL_NAME: string;
  REDIS_SENTINEL_PASSWORD?: string | undefined;
  REDIS_CLUSTER_NODES: HostPort[];
  REDIS_TLS_CA_FILE?: string | undefined;
}): RedisTopology {
  return {
    sentinels: config.REDIS_SENTINELS,
    sentinelName: config.REDIS_SENTINEL_NAME,
    ...(config.REDIS_SENTINEL_PASSWORD ? { sentinelPassword: config.REDIS_SENTINEL_PASSWORD } : {}),
    clusterNodes: config.REDIS_CLUSTER_NODES,
    ...(config.REDIS_TLS_CA_FILE ? { tlsCaFile: config.REDIS_TLS_CA_FILE } : {}),
  };
}

export function isDistributed(t: RedisTopology): boolean {
  return t.sentinels.length > 0 || t.clusterNodes.length > 0;
}

/** The URL a topology's clients are named by when REDIS_URL is not set (credentials-free). */
export function placeholderUrl(t: RedisTopology): string {
  const n = t.sentinels[0] ?? t.clusterNodes[0];
  return n ? `redis://${n.host}:${n.port}` : 'redis://127.0.0.1:6379';
}

// The process's queue/session Redis (set once at start-up by prepareRedis). Clients asked for
// that URL get its topology; any other URL (CACHE_REDIS_URL) is a single server.
let registered: { url: string; topology: RedisTopology } | null = null;
// The CA applies to every rediss:// URL of the process (cache included).
let tlsCa: { file: string; pem: string } | null = null;

export function useRedisTopology(url: string, topology: RedisTopology): void {
  registered = { url, topology };
  if (topology.tlsCaFile) tlsCa = { file: topology.tlsCaFile, pem: readFileSync(topology.tlsCaFile, 'utf8') };
}

function registeredTopology(url: string): RedisTopology | null {
  return registered && registered.url === url ? registered.topology : null;
}

function tlsOptions(url: string, topology: RedisTopology | null): RedisOptions['tls'] | undefined {
  if (!url.startsWith('rediss://')) return undefined;
  const file = topology?.tlsCaFile ?? tlsCa?.file;
  if (!file) return {};
  const pem = tlsCa?.file === file ? tlsCa.pem : readFileSync(file, 'utf8');
  return { ca: pem };
}

/** Credentials and database of a redis(s):// URL, for Sentinel and Cluster clients. */
function credentialsOf(url: string): Pick<RedisOptions, 'username' | 'password' | 'db'> {
  const u = new URL(url);
  return {
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
  };
}

/**
 * A client for `url` following its topology. `requestPath` clients of a Cluster get multi-key
 * commands (DEL/MGET of keys in different slots, MULTI across slots) split by slot.
 * The result is typed Redis: a Cluster client answers the same commands.
 */
export function connectRedis(url: string, options: RedisOptions, opts: { topology?: RedisTopology | null; requestPath?: boolean } = {}): Redis {
  const topology = opts.topology === undefined ? registeredTopology(url) : opts.topology;
  const tls = tlsOptions(url, topology);
  if (topology && topology.clusterNodes.length > 0) {
    const { enableAutoPipelining, lazyConnect, enableReadyCheck, ...redisOptions } = options;
    const clusterOptions: ClusterOptions = {
      redisOptions: { ...redisOptions, ...credentialsOf(url), ...(tls ? { tls } : {}) },
      ...(enableAutoPipelining !== undefined ? { enableAutoPipelining } : {}),
      ...(lazyConnect !== undefined ? { lazyConnect } : {}),
      ...(enableReadyCheck !== undefined ? { enableReadyCheck } : {}),
      // Follow MOVED/ASK and failovers of a master to its replica.
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 300,
      // TLS certificates name the nodes' addresses: connect to what the cluster announces.
      ...(tls ? { dnsLookup: (address: string, cb: (err: Error | null, addr: string) => void) => cb(null, address) } : {}),
    };
    const cluster = new Cluster(topology.clusterNodes, clusterOptions);
    return (opts.requestPath ? clusterSafe(cluster) : cluster) as unknown as Redis;
  }
  if (topology && topology.sentinels.length > 0) {
    return new Redis({
      ...options,
      ...credentialsOf(url),
      sentinels: topology.sentinels,
      name: topology.sentinelName,
      ...(topology.sentinelPassword ? { sentinelPassword: topology.sentinelPassword } : {}),
      // Sentinels publish +switch-master: reconnect to the new primary at once rather than
      // when the old one's connection times out.
      failoverDetector: true,
      // A primary demoted to replica answers READONLY: reconnect to find the new one.
      reconnectOnError: (err) => /READONLY/.test(err.message),
      ...(tls ? { tls, enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
    });
  }
  return new Redis(url, { ...options, ...(tls ? { tls } : {}) });
}
