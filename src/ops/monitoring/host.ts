// Database host CPU: from /proc when PostgreSQL runs on this machine, else from a Prometheus
// server (DB_CPU_PROMETHEUS_URL), else unavailable with the reason. Never guessed.
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import type { Sql } from '../../db/pool.js';
import { errMessage, measured, unavailable, type CpuSource } from '../types.js';

const CLK_TCK = 100; // USER_HZ on Linux x86-64/arm64

interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  /** utime + stime (+ cutime + cstime when asked), in ticks. */
  ticks: number;
}

function readStat(procRoot: string, pid: number | string, withChildren: boolean): ProcStat | null {
  let raw: string;
  try {
    raw = readFileSync(`${procRoot}/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // comm is in parentheses and may hold spaces: split after the last ')'.
  const close = raw.lastIndexOf(')');
  const comm = raw.slice(raw.indexOf('(') + 1, close);
  const f = raw.slice(close + 2).split(' ');
  // f[0] = state (field 3); utime = field 14 -> f[11], stime f[12], cutime f[13], cstime f[14]
  const n = (i: number) => Number(f[i] ?? 0);
  return { pid: Number(pid), comm, ppid: n(1), ticks: n(11) + n(12) + (withChildren ? n(13) + n(14) : 0) };
}

function isLocalHost(host: string): boolean {
  return ['localhost', '127.0.0.1', '::1', '[::1]', ''].includes(host) || host.startsWith('/');
}

interface ProcSnapshot {
  postmaster: number;
  ticks: number;
  at: number;
}

/**
 * CPU of the PostgreSQL process tree on this machine: the postmaster (with the CPU of its exited
 * children, cutime/cstime) plus its live children, over wall time times the number of cores.
 */
export function procCpuSource(sql: Sql, dbHost: string, opts: { procRoot?: string; cores?: number; nowMs?: () => number } = {}): CpuSource {
  const procRoot = opts.procRoot ?? '/proc';
  const cores = opts.cores ?? os.availableParallelism();
  const nowMs = opts.nowMs ?? (() => Date.now());
  return {
    async sample(previous) {
      if (!isLocalHost(dbHost)) return { result: unavailable(`the database host (${dbHost}) is not this machine and DB_CPU_PROMETHEUS_URL is not set`) };
      const [r] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
      const me = r ? readStat(procRoot, r.pid, false) : null;
      if (!me || !me.comm.startsWith('postgres')) {
        return { result: unavailable('the database backend is not a process of this machine (container or remote host): set DB_CPU_PROMETHEUS_URL') };
      }
      const pm = readStat(procRoot, me.ppid, true);
      if (!pm) return { result: unavailable('cannot read the postmaster in /proc') };
      let ticks = pm.ticks;
      for (const entry of readdirSync(procRoot)) {
        if (!/^\d+$/.test(entry)) continue;
        const st = readStat(procRoot, entry, false);
        if (st && st.ppid === pm.pid) ticks += st.ticks;
      }
      const snap: ProcSnapshot = { postmaster: pm.pid, ticks, at: nowMs() };
      const prev = previous as ProcSnapshot | null;
      const source = `/proc: PostgreSQL process tree (postmaster ${pm.pid}) over ${cores} cores`;
      if (!prev || prev.postmaster !== pm.pid || !(snap.at > prev.at)) {
        return { result: unavailable('first reading: CPU over a period is known from the next evaluation', source), snapshot: snap };
      }
      const pct = (100 * (snap.ticks - prev.ticks)) / CLK_TCK / ((snap.at - prev.at) / 1000) / cores;
      return { result: measured(Math.max(0, Math.round(pct * 10) / 10), source), snapshot: snap };
    },
  };
}

/** CPU percent from a Prometheus server's instant-query API. */
function prometheusCpuSource(baseUrl: string, query: string, fetchImpl: typeof fetch = fetch): CpuSource {
  return {
    async sample() {
      const u = new URL('/api/v1/query', baseUrl);
      u.searchParams.set('query', query);
      const source = `Prometheus ${u.origin}: ${query}`;
      try {
        const res = await fetchImpl(u, { signal: AbortSignal.timeout(5000) });
        if (!res.ok) return { result: unavailable(`Prometheus answered HTTP ${res.status}`, source) };
        const body = (await res.json()) as { data?: { result?: Array<{ value?: [number, string] }> } };
        const v = body.data?.result?.[0]?.value?.[1];
        if (v === undefined || !Number.isFinite(Number(v))) return { result: unavailable('the query returned no sample', source) };
        return { result: measured(Math.round(Number(v) * 10) / 10, source) };
      } catch (err) {
        return { result: unavailable(`Prometheus unreachable: ${errMessage(err)}`, source) };
      }
    },
  };
}

/** The default database CPU source for a deployment. */
export function defaultCpuSource(sql: Sql, dbUrl: string, promUrl: string | undefined, promQuery: string): CpuSource {
  let host = '';
  try {
    host = new URL(dbUrl).hostname;
  } catch {
    host = '?';
  }
  if (!isLocalHost(host) && promUrl) return prometheusCpuSource(promUrl, promQuery);
  const proc = procCpuSource(sql, host);
  if (!promUrl) return proc;
  const prom = prometheusCpuSource(promUrl, promQuery);
  // Local but /proc cannot see it (a container): fall back to Prometheus.
  return {
    async sample(previous) {
      const r = await proc.sample(previous);
      if (r.result.value === null && !r.snapshot) return prom.sample(null);
      return r;
    },
  };
}

