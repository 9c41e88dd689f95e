// A load client in a process of its own (never the API's event loop), for what wrk cannot do:
//  - 'rate': an open-loop load at a fixed rate; each latency runs from the moment the request was
//    due, not when it could be sent, so a stalled server is not hidden (no coordinated omission);
//  - 'sequence': steps run one after another per iteration (a write, then the read that must see
//    it), each step's latency recorded on its own.
// Usage (from bench code): runClient(config) spawns `node --import tsx bench/client.ts FILE`.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface Step {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** Path (with query) under the base URL; `{i}` is the iteration number. */
  path: string;
  headers?: Record<string, string>;
  /** One body per iteration (index i % bodies.length), or none. */
  bodies?: string[];
  /** Expected status (default: any 2xx). */
  status?: number;
}

export type ClientConfig =
  /**
   * `warmupSeconds` (default 1) run first at the same rate and are not counted: the client opens
   * its connections then, as a long-running client would have long before; the bodies must cover
   * (warmupSeconds + seconds) * rate requests.
   */
  | { mode: 'rate'; base: string; rate: number; seconds: number; warmupSeconds?: number; maxInFlight?: number; step: Step }
  | { mode: 'sequence'; base: string; iterations: number; steps: Step[] };

export interface StepFigures {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
  failures: number;
  firstFailure: string | null;
}

export interface ClientResult {
  seconds: number;
  /** Per step (one entry in rate mode). */
  steps: StepFigures[];
  /** Requests actually completed per second. */
  rps: number;
}

const pct = (s: number[], p: number) => (s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]! : NaN);

function figures(lat: number[], failures: number, firstFailure: string | null): StepFigures {
  const s = [...lat].sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 100) / 100;
  return { n: s.length, p50: r(pct(s, 50)), p95: r(pct(s, 95)), p99: r(pct(s, 99)), max: r(s[s.length - 1] ?? NaN), mean: r(s.reduce((a, b) => a + b, 0) / (s.length || 1)), failures, firstFailure };
}

async function send(base: string, step: Step, i: number): Promise<{ ok: boolean; detail: string }> {
  const body = step.bodies ? step.bodies[i % step.bodies.length] : undefined;
  const res = await fetch(base + step.path.replaceAll('{i}', String(i)), {
    method: step.method,
    headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...(step.headers ?? {}) },
    ...(body ? { body } : {}),
  });
  const text = await res.text();
  const ok = step.status ? res.status === step.status : res.status >= 200 && res.status < 300;
  return { ok, detail: ok ? '' : `${res.status} ${text.slice(0, 300)}` };
}

async function main(config: ClientConfig): Promise<ClientResult> {
  const t0 = performance.now();
  if (config.mode === 'sequence') {
    const lat = config.steps.map(() => [] as number[]);
    const fails = config.steps.map(() => ({ n: 0, first: null as string | null }));
    for (let i = 0; i < config.iterations; i++) {
      for (const [k, step] of config.steps.entries()) {
        const s = performance.now();
        const r = await send(config.base, step, i);
        lat[k]!.push(performance.now() - s);
        if (!r.ok) {
          fails[k]!.n++;
          fails[k]!.first ??= r.detail;
        }
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    return { seconds, steps: lat.map((l, k) => figures(l, fails[k]!.n, fails[k]!.first)), rps: (config.iterations * config.steps.length) / seconds };
  }
  // Open loop: request i is due at t0 + i / rate, whether or not earlier ones have answered.
  // Requests due in the warm-up are sent on the same schedule but not counted.
  const lat: number[] = [];
  let failures = 0;
  let first: string | null = null;
  let inFlight = 0;
  const warm = Math.round(config.rate * (config.warmupSeconds ?? 1));
  const total = warm + Math.round(config.rate * config.seconds);
  const max = config.maxInFlight ?? 512;
  const pending: Promise<void>[] = [];
  let tm = t0;
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / config.rate;
    if (i === warm) tm = due;
    const counted = i >= warm;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    if (inFlight >= max) {
      failures++;
      first ??= `more than ${max} requests in flight: the server fell behind`;
      continue;
    }
    inFlight++;
    pending.push(
      send(config.base, config.step, i).then(
        (r) => {
          inFlight--;
          if (counted) lat.push(performance.now() - due);
          if (!r.ok) {
            failures++;
            first ??= r.detail;
          }
        },
        (err: Error) => {
          inFlight--;
          failures++;
          first ??= err.message;
        },
      ),
    );
  }
  await Promise.all(pending);
  const seconds = (performance.now() - tm) / 1000;
  return { seconds, steps: [figures(lat, failures, first)], rps: lat.length / seconds };
}

/** Runs the client in a child process and returns its figures. */
export async function runClient(config: ClientConfig): Promise<ClientResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'accunode-client-'));
  const file = path.join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(config));
  try {
    const out = await new Promise<string>((resolve, reject) => {
      const p = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), file], { stdio: ['ignore', 'pipe', 'inherit'] });
      let s = '';
      p.stdout.on('data', (d) => (s += d));
      p.on('error', reject);
      p.on('close', (code) => (code === 0 ? resolve(s) : reject(new Error(`bench client exited ${code}`))));
    });
    return JSON.parse(out.trim().split('\n').pop()!) as ClientResult;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const config = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as ClientConfig;
  process.stdout.write(JSON.stringify(await main(config)) + '\n');
}
