// Redis figures for monitor, diagnose, alarms and /metrics: INFO, SLOWLOG, CONFIG GET, and memory
// by key family sampled with SCAN + MEMORY USAGE (never KEYS, which blocks the server).
import type { Redis } from 'ioredis';

type RedisInfo = Record<string, string>;

export function parseInfo(raw: string): RedisInfo {
  const out: RedisInfo = {};
  for (const line of raw.split(/\r?\n/)) {
    if (!line || line.startsWith('#')) continue;
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

export function num(info: RedisInfo, key: string): number | null {
  const v = info[key];
  if (v === undefined || v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

export async function pingMs(redis: Redis): Promise<number> {
  const t = process.hrtime.bigint();
  await redis.ping();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

/** Total keys of every logical database (INFO keyspace: db0:keys=..,expires=..). */
export function totalKeys(info: RedisInfo): number {
  let n = 0;
  for (const [k, v] of Object.entries(info)) if (/^db\d+$/.test(k)) n += Number(/keys=(\d+)/.exec(v)?.[1] ?? 0);
  return n;
}

interface MemoryFigure {
  used: number;
  max: number | null;
  percent: number;
  /** What the percentage is of: maxmemory, or system memory when maxmemory is 0. */
  basis: string;
}

/** Used memory against maxmemory; with maxmemory 0 (no limit), against the host's memory, said so. */
export function memoryFigure(info: RedisInfo): MemoryFigure | null {
  const used = num(info, 'used_memory');
  if (used === null) return null;
  const max = num(info, 'maxmemory') ?? 0;
  if (max > 0) return { used, max, percent: round1((100 * used) / max), basis: 'of maxmemory' };
  const sys = num(info, 'total_system_memory');
  if (!sys) return null;
  return { used, max: null, percent: round1((100 * used) / sys), basis: 'maxmemory is 0 (no limit): percent of system memory (total_system_memory)' };
}

export function cpuSeconds(info: RedisInfo): number {
  return (num(info, 'used_cpu_sys') ?? 0) + (num(info, 'used_cpu_user') ?? 0);
}

export function hitRate(info: RedisInfo): number | null {
  const h = num(info, 'keyspace_hits') ?? 0;
  const m = num(info, 'keyspace_misses') ?? 0;
  return h + m > 0 ? round1((100 * h) / (h + m)) : null;
}

/** The architecture guide's key patterns, in the order a key is matched against them. */
const KEY_FAMILIES: ReadonlyArray<{ family: string; test: (k: string) => boolean }> = [
  { family: 'session:', test: (k) => k.startsWith('session:') },
  { family: 'rate_limit:', test: (k) => k.startsWith('rate_limit:') },
  { family: 'cache:prediction:', test: (k) => k.startsWith('cache:prediction:') },
  { family: 'cache:company:', test: (k) => k.startsWith('cache:company:') },
  { family: 'cache:user:', test: (k) => k.startsWith('cache:user:') },
  { family: 'cache:', test: (k) => k.startsWith('cache:') },
  { family: 'analytics:', test: (k) => k.startsWith('analytics:') },
  // BullMQ queues ({accunode} hash tag for cluster safety; bull: is BullMQ's default prefix).
  { family: 'queue', test: (k) => k.startsWith('{accunode}') || k.startsWith('bull:') || k.startsWith('celery:') },
];

export interface KeyFamilyRow {
  family: string;
  keys: number;
  sampled: number;
  sampled_bytes: number;
  /** sampled_bytes scaled to every key of the family seen by SCAN. */
  estimated_bytes: number;
  avg_bytes: number | null;
  with_ttl_percent: number | null;
}

export interface KeyFamilyReport {
  families: KeyFamilyRow[];
  scanned: number;
  /** false when SCAN stopped at maxKeys: the counts are of the keys visited. */
  complete: boolean;
  method: string;
}

/**
 * Memory by key family: one SCAN pass (COUNT 1000, non-blocking), MEMORY USAGE and TTL of up to
 * samplePerFamily keys of each family (pipelined), averages scaled to the family's key count.
 */
export async function keyFamilies(redis: Redis, opts: { maxKeys: number; samplePerFamily?: number }): Promise<KeyFamilyReport> {
  const per = opts.samplePerFamily ?? 200;
  const counts = new Map<string, number>();
  const samples = new Map<string, string[]>();
  let cursor = '0';
  let scanned = 0;
  let complete = true;
  do {
    const [next, keys] = await redis.scan(cursor, 'COUNT', 1000);
    cursor = next;
    for (const k of keys) {
      const fam = KEY_FAMILIES.find((f) => f.test(k))?.family ?? 'other';
      counts.set(fam, (counts.get(fam) ?? 0) + 1);
      const s = samples.get(fam) ?? [];
      if (s.length < per) s.push(k);
      samples.set(fam, s);
    }
    scanned += keys.length;
    if (scanned >= opts.maxKeys && cursor !== '0') {
      complete = false;
      break;
    }
  } while (cursor !== '0');

  const families: KeyFamilyRow[] = [];
  for (const fam of [...KEY_FAMILIES.map((f) => f.family), 'other']) {
    const keys = counts.get(fam) ?? 0;
    const sample = samples.get(fam) ?? [];
    let bytes = 0;
    let withTtl = 0;
    let measuredKeys = 0;
    if (sample.length > 0) {
      const p = redis.pipeline();
      for (const k of sample) {
        p.call('MEMORY', 'USAGE', k, 'SAMPLES', '5');
        p.pttl(k);
      }
      const res = (await p.exec()) ?? [];
      for (let i = 0; i < sample.length; i++) {
        const mem = res[2 * i]?.[1];
        const ttl = res[2 * i + 1]?.[1];
        if (typeof mem === 'number') {
          bytes += mem;
          measuredKeys++;
          if (typeof ttl === 'number' && ttl >= 0) withTtl++;
        }
      }
    }
    const avg = measuredKeys > 0 ? bytes / measuredKeys : null;
    families.push({
      family: fam,
      keys,
      sampled: measuredKeys,
      sampled_bytes: bytes,
      estimated_bytes: avg === null ? 0 : Math.round(avg * keys),
      avg_bytes: avg === null ? null : Math.round(avg),
      with_ttl_percent: measuredKeys > 0 ? round1((100 * withTtl) / measuredKeys) : null,
    });
  }
  return {
    families,
    scanned,
    complete,
    method: `SCAN COUNT 1000 over ${complete ? 'the whole keyspace' : `the first ${scanned} keys (OPS_REDIS_SCAN_MAX_KEYS)`}; MEMORY USAGE of up to ${per} keys per family`,
  };
}

export interface SlowlogRow {
  id: number;
  at: Date;
  duration_us: number;
  command: string;
  client: string;
}

export async function slowlog(redis: Redis, count = 10): Promise<SlowlogRow[]> {
  const raw = (await redis.call('SLOWLOG', 'GET', String(count))) as unknown[];
  return raw.map((e) => {
    const [id, ts, dur, args, client] = e as [number, number, number, string[], string?];
    return {
      id: Number(id),
      at: new Date(Number(ts) * 1000),
      duration_us: Number(dur),
      command: (args ?? []).map(String).join(' ').slice(0, 200),
      client: client ?? '',
    };
  });
}

/** All settings (CONFIG GET *) as a map. */
export async function configAll(redis: Redis): Promise<Record<string, string>> {
  const r = (await redis.call('CONFIG', 'GET', '*')) as string[];
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < r.length; i += 2) out[String(r[i])] = String(r[i + 1]);
  return out;
}

export function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
