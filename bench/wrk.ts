// wrk (Debian's package) as the load generator, in its own process: the API's event loop never
// runs a line of the load. A Lua script builds each request; the results come back as JSON from
// the script's done() (requests, errors, non-2xx, latency percentiles in ms).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface WrkResult {
  requests: number;
  seconds: number;
  rps: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
  errors: number;
  non2xx: number;
  /** The first non-2xx response body seen (a hint when a run fails). */
  firstFailure: string | null;
}

export function wrkAvailable(): boolean {
  return spawnSync('wrk', ['--version'], { encoding: 'utf8' }).error === undefined;
}

/**
 * Lua pieces: `init` runs once per thread (after `thread_id` is set), `request` returns
 * wrk.format(...). The script counts non-2xx responses, keeps the first failing body, and
 * prints the summary as one JSON line prefixed with WRK_JSON.
 */
export interface WrkScript {
  /** Lua run in every thread before its first request (locals: thread_id, threads). */
  init?: string;
  /** Lua body of request(): must return wrk.format(method, path, headers, body). */
  request: string;
}

const LUA_PRELUDE = `
local thread_counter = 0
local threads_list = {}
function setup(thread)
  thread:set("thread_id", thread_counter)
  thread_counter = thread_counter + 1
  table.insert(threads_list, thread)
end
non2xx = 0
first_failure = nil
function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_failure == nil then first_failure = tostring(status) .. " " .. string.sub(body or "", 1, 300) end
  end
end
`;

const LUA_DONE = `
function done(summary, latency, requests)
  local non = 0
  local fail = nil
  for _, t in ipairs(threads_list) do
    non = non + (t:get("non2xx") or 0)
    fail = fail or t:get("first_failure")
  end
  local e = summary.errors
  local function esc(s) return (string.gsub(s or "", '[%c"\\\\]', ' ')) end
  io.write(string.format('WRK_JSON{"requests":%d,"us":%d,"p50":%.3f,"p90":%.3f,"p95":%.3f,"p99":%.3f,"max":%.3f,"errors":%d,"non2xx":%d,"first":"%s"}\\n',
    summary.requests, summary.duration, latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, e.connect + e.read + e.write + e.timeout, non, esc(fail)))
end
`;

export async function runWrk(url: string, opts: { connections: number; threads?: number; seconds: number; script: WrkScript; timeoutSeconds?: number }): Promise<WrkResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'accunode-wrk-'));
  const file = path.join(dir, 'script.lua');
  const threads = Math.max(1, Math.min(opts.threads ?? 2, opts.connections));
  writeFileSync(file, `${LUA_PRELUDE}
threads = ${threads}
local initialized = false
function request()
  if not initialized then
    initialized = true
    ${opts.script.init ?? ''}
  end
  ${opts.script.request}
end
${LUA_DONE}`);
  try {
    const out = await new Promise<string>((resolve, reject) => {
      const p = spawn('wrk', ['-t', String(threads), '-c', String(opts.connections), '-d', `${opts.seconds}s`, '--timeout', `${opts.timeoutSeconds ?? 10}s`, '-s', file, url], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      p.on('error', reject);
      p.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`wrk exited ${code}: ${stderr || stdout}`))));
    });
    const line = out.split('\n').find((l) => l.startsWith('WRK_JSON'));
    if (!line) throw new Error(`wrk printed no summary:\n${out}`);
    const j = JSON.parse(line.slice('WRK_JSON'.length)) as { requests: number; us: number; p50: number; p90: number; p95: number; p99: number; max: number; errors: number; non2xx: number; first: string };
    const seconds = j.us / 1e6;
    return {
      requests: j.requests,
      seconds,
      rps: (j.requests - j.non2xx) / seconds,
      p50: j.p50,
      p90: j.p90,
      p95: j.p95,
      p99: j.p99,
      max: j.max,
      errors: j.errors,
      non2xx: j.non2xx,
      firstFailure: j.first || null,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A Lua string literal. */
export const lua = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;

/** A Lua table of strings. */
export const luaList = (xs: readonly string[]) => `{${xs.map(lua).join(',')}}`;
