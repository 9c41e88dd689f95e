/**
 * Redis Cluster refuses a command whose keys hash to different slots (CROSSSLOT). The request
 * path issues a few such commands on purpose (dropping many sessions' or predictions' cached
 * copies at once, reading or bumping several analytics generation counters), which on one server
 * are single round trips. On a Cluster client this splits them by slot:
 * - DEL / UNLINK / EXISTS / MGET with keys in several slots run once per slot (counts are
 *   summed, MGET values come back in the caller's order);
 * - MULTI … EXEC whose commands touch several slots runs one MULTI per slot. Each slot's part is
 *   still atomic; the whole is not (nothing on the request path needs it to be: these are cache
 *   invalidations, each safe on its own).
 * Everything else (sessions, rate limits: one key per command or Lua script) goes through as is.
 */
import type { Cluster } from 'ioredis';

// CRC16-XMODEM, as Redis Cluster uses (key slot = crc16(hash tag or key) mod 16384).
const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let j = 0; j < 8; j++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

export function keySlot(key: string): number {
  let k = key;
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) k = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const b of Buffer.from(k)) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ b) & 0xff]!;
  return crc % 16384;
}

const MULTI_KEY = new Set(['del', 'unlink', 'exists', 'mget']);

type Fn = (...args: unknown[]) => Promise<unknown>;
type Reply = [Error | null, unknown];

function bySlot(keys: string[]): Map<number, Array<{ key: string; at: number }>> {
  const groups = new Map<number, Array<{ key: string; at: number }>>();
  keys.forEach((key, at) => {
    const s = keySlot(key);
    let g = groups.get(s);
    if (!g) groups.set(s, (g = []));
    g.push({ key, at });
  });
  return groups;
}

function combine(cmd: string, parts: Array<{ at: number[]; value: unknown }>, n: number): unknown {
  if (cmd === 'mget') {
    const out = new Array<unknown>(n).fill(null);
    for (const p of parts) (p.value as unknown[]).forEach((v, i) => (out[p.at[i]!] = v));
    return out;
  }
  return parts.reduce((sum, p) => sum + Number(p.value), 0);
}

export function clusterSafe(cluster: Cluster): Cluster {
  const c = cluster as unknown as Record<string, Fn> & { multi: (...a: unknown[]) => unknown };
  for (const cmd of MULTI_KEY) {
    const original = c[cmd]!.bind(cluster);
    c[cmd] = async (...args: unknown[]) => {
      const keys = (args.flat() as unknown[]).map(String);
      const groups = bySlot(keys);
      if (groups.size <= 1) return original(...keys);
      const parts = await Promise.all([...groups.values()].map(async (g) => ({ at: g.map((x) => x.at), value: await original(...g.map((x) => x.key)) })));
      return combine(cmd, parts, keys.length);
    };
  }
  const realMulti = cluster.multi.bind(cluster) as unknown as () => { exec(): Promise<Reply[] | null> } & Record<string, (...a: unknown[]) => unknown>;
  c.multi = (...margs: unknown[]) => {
    if (margs.length > 0) return (realMulti as (...a: unknown[]) => unknown)(...margs);
    const queued: Array<{ cmd: string; args: unknown[] }> = [];
    const recorder: Record<string, unknown> = new Proxy(
      {},
      {
        get(_t, prop) {
          if (prop === 'exec') return () => execSplit(queued);
          if (prop === 'then') return undefined;
          return (...args: unknown[]) => {
            queued.push({ cmd: String(prop).toLowerCase(), args: args.flat() });
            return recorder;
          };
        },
      },
    );
    return recorder;
  };

  async function execSplit(queued: Array<{ cmd: string; args: unknown[] }>): Promise<Reply[] | null> {
    // Split each command into per-slot pieces, then one MULTI per slot.
    const pieces: Array<{ index: number; slot: number; cmd: string; args: unknown[]; at: number[] }> = [];
    queued.forEach((q, index) => {
      if (MULTI_KEY.has(q.cmd)) {
        const keys = q.args.map(String);
        for (const [slot, g] of bySlot(keys)) pieces.push({ index, slot, cmd: q.cmd, args: g.map((x) => x.key), at: g.map((x) => x.at) });
      } else {
        pieces.push({ index, slot: keySlot(String(q.args[0] ?? '')), cmd: q.cmd, args: q.args, at: [] });
      }
    });
    const slots = [...new Set(pieces.map((p) => p.slot))];
    const results = new Map<(typeof pieces)[number], Reply>();
    await Promise.all(
      slots.map(async (slot) => {
        const mine = pieces.filter((p) => p.slot === slot);
        const m = realMulti();
        for (const p of mine) (m[p.cmd] as (...a: unknown[]) => unknown)(...p.args);
        const replies = await m.exec().catch((err: Error) => mine.map((): Reply => [err, null]));
        mine.forEach((p, i) => results.set(p, replies?.[i] ?? [new Error('transaction aborted'), null]));
      }),
    );
    return queued.map((q, index) => {
      const mine = pieces.filter((p) => p.index === index);
      const failed = mine.map((p) => results.get(p)![0]).find(Boolean);
      if (failed) return [failed, null];
      if (!MULTI_KEY.has(q.cmd)) return [null, results.get(mine[0]!)![1]];
      return [null, combine(q.cmd, mine.map((p) => ({ at: p.at, value: results.get(p)![1] })), q.args.length)];
    });
  }
  return cluster;
}
